import { abortError } from '../util/abort';

/**
 * The longest node-wide pause one answer can cause. The pause stops every mount of the node from reaching the vault,
 * so it is kept short (a vault that still throttles after it says so again); reads wait at most as long (retry.ts).
 */
export const MAX_PAUSE_MS = 10_000;

/**
 * Admission to one vault, shared by every mount and identity on the node: at most `limit` requests in flight, later
 * ones wait in arrival order. Key Vault's throttling limits are per vault (and shared by every node of the cluster),
 * so when the vault answers 429 the gate also pauses: no new request goes out until the vault's Retry-After has
 * passed, instead of every queued read trying once more and being throttled again.
 */
export class VaultGate {
  private inFlight = 0;
  private readonly waiting: Array<() => void> = [];
  private pausedUntil = 0;
  private pauseTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly limit: number,
    private readonly now: () => number = Date.now,
  ) {
    if (!(limit >= 1)) throw new Error(`a vault gate needs a limit of at least 1, not ${limit}`);
  }

  /** Waits for a slot (and for any pause to end); the returned function gives the slot back (once). */
  async enter(signal: AbortSignal): Promise<() => void> {
    if (signal.aborted) throw abortError(signal);
    if (this.inFlight >= this.limit || this.waiting.length > 0 || this.paused()) {
      await new Promise<void>((resolve, reject) => {
        const admit = (): void => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        };
        const onAbort = (): void => {
          const i = this.waiting.indexOf(admit);
          if (i >= 0) this.waiting.splice(i, 1);
          reject(abortError(signal));
        };
        signal.addEventListener('abort', onAbort, { once: true });
        this.waiting.push(admit);
      });
    } else {
      this.inFlight++;
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.inFlight--;
      this.admitWaiting();
    };
  }

  /** Holds new requests back for `ms` (requests already in flight finish). A longer pause wins over a shorter one. */
  pauseFor(ms: number): void {
    const until = this.now() + Math.min(ms, MAX_PAUSE_MS);
    if (until <= this.pausedUntil) return;
    this.pausedUntil = until;
    this.armPauseTimer(until - this.now());
  }

  /** Requests in flight and waiting, for tests and metrics. */
  load(): { inFlight: number; waiting: number } {
    return { inFlight: this.inFlight, waiting: this.waiting.length };
  }

  private armPauseTimer(ms: number): void {
    clearTimeout(this.pauseTimer);
    this.pauseTimer = setTimeout(() => {
      this.pauseTimer = undefined;
      // Timers may fire a millisecond early by the clock: wait out the rest rather than strand the queue.
      const left = this.pausedUntil - this.now();
      if (left > 0) this.armPauseTimer(left);
      else this.admitWaiting();
    }, ms);
    // A pause must not keep a stopping process alive.
    this.pauseTimer.unref();
  }

  private paused(): boolean {
    return this.now() < this.pausedUntil;
  }

  private admitWaiting(): void {
    while (this.inFlight < this.limit && this.waiting.length > 0 && !this.paused()) {
      this.inFlight++;
      this.waiting.shift()!();
    }
  }
}
