/**
 * Single-flight for Key Vault reads: mounts that ask for the same thing while a request for it is in flight wait for
 * that request instead of sending their own. When fifty pods of a Deployment start (or rotate) together, the vault
 * sees one read per object, not fifty.
 *
 * There is one SharedReads per vault reader, and a reader belongs to one (vault, identity): reads are never shared
 * between identities, so a mount only ever receives what its own identity was allowed to read. Nothing is cached:
 * a read is shared only while it is in flight, and the next mount after it reads afresh (rotation sees new versions).
 */
import { abortError } from '../util/abort';

export interface SharedRead<T> {
  /** Runs the read; its signal aborts only when every mount waiting for it has given up. */
  run: (signal: AbortSignal) => Promise<T>;
  /**
   * The error a mount that gives up gets (e.g. "still retrying after 5 attempts: throttled"); its abort reason if
   * undefined.
   */
  whyWaiting?: () => Error | undefined;
}

interface Flight {
  promise: Promise<unknown>;
  controller: AbortController;
  waiters: number;
  whyWaiting: (() => Error | undefined) | undefined;
}

export class SharedReads {
  private readonly flights = new Map<string, Flight>();

  /**
   * The result of the read in flight under `key`, or of a new one started with `read`. `signal` is this mount's:
   * when it aborts, this mount stops waiting at once; the read itself goes on for the mounts still waiting.
   */
  read<T>(key: string, signal: AbortSignal, create: () => SharedRead<T>, onShared?: (shared: boolean) => void): Promise<T> {
    if (signal.aborted) return Promise.reject(abortError(signal));
    let flight = this.flights.get(key);
    onShared?.(flight !== undefined);
    if (!flight) {
      const { run, whyWaiting } = create();
      const controller = new AbortController();
      const started: Flight = { promise: Promise.resolve(), controller, waiters: 0, whyWaiting };
      started.promise = run(controller.signal).finally(() => {
        if (this.flights.get(key) === started) this.flights.delete(key);
      });
      // Every waiter may have gone; the read's own rejection must not surface as unhandled.
      started.promise.catch(() => undefined);
      this.flights.set(key, started);
      flight = started;
    }
    return this.wait(flight, key, signal) as Promise<T>;
  }

  /** Reads in flight, for tests. */
  get size(): number {
    return this.flights.size;
  }

  private wait(flight: Flight, key: string, signal: AbortSignal): Promise<unknown> {
    flight.waiters++;
    return new Promise((resolve, reject) => {
      let settled = false;
      const leave = (): void => {
        settled = true;
        signal.removeEventListener('abort', onAbort);
      };
      const onAbort = (): void => {
        if (settled) return;
        leave();
        reject(flight.whyWaiting?.() ?? abortError(signal));
        if (--flight.waiters === 0) {
          // Nobody wants the answer any more: stop the request, and let the next mount start a fresh one.
          if (this.flights.get(key) === flight) this.flights.delete(key);
          flight.controller.abort(signal.reason);
        }
      };
      signal.addEventListener('abort', onAbort, { once: true });
      flight.promise.then(
        (value) => {
          if (settled) return;
          leave();
          flight.waiters--;
          resolve(value);
        },
        (err: unknown) => {
          if (settled) return;
          leave();
          flight.waiters--;
          reject(err);
        },
      );
    });
  }
}
