/**
 * A node-wide request rate per vault, beside the in-flight bound of VaultGate: a token bucket (`ratePerSecond` tokens
 * a second, at most one second's worth saved up), taken after a slot is admitted, so every request to the vault,
 * retries included, is counted. Key Vault's limits are per vault and per 10 s window, shared by every node; a rate
 * keeps one node from spending the cluster's share in a burst even when each request is quick. Hand-written: the
 * bucket is a dozen lines and must share the gate's abort and queue semantics, which no rate-limit library offers.
 */
import { abortError } from '../util/abort';
import { VaultGate } from './vault-gate';

export class RateLimitedGate extends VaultGate {
  private tokens: number;
  private refilledAt: number;
  /** Requests waiting for a token, in arrival order. */
  private readonly tokenQueue: Array<{ resolve: () => void }> = [];
  private refillTimer: NodeJS.Timeout | undefined;

  constructor(
    limit: number,
    readonly ratePerSecond: number,
    private readonly clock: () => number = Date.now,
  ) {
    super(limit, clock);
    if (!(ratePerSecond > 0)) throw new Error(`a rate-limited gate needs a positive rate, not ${ratePerSecond}`);
    this.tokens = this.burst;
    this.refilledAt = clock();
  }

  override async enter(signal: AbortSignal): Promise<() => void> {
    const leave = await super.enter(signal);
    try {
      await this.takeToken(signal);
    } catch (err) {
      leave();
      throw err;
    }
    return leave;
  }

  private get burst(): number {
    return Math.max(1, this.ratePerSecond);
  }

  private refill(): void {
    const now = this.clock();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.refilledAt) / 1000) * this.ratePerSecond);
    this.refilledAt = now;
  }

  private takeToken(signal: AbortSignal): Promise<void> {
    if (signal.aborted) return Promise.reject(abortError(signal));
    this.refill();
    if (this.tokenQueue.length === 0 && this.tokens >= 1) {
      this.tokens -= 1;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const waiter = {
        resolve: () => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      const onAbort = (): void => {
        const i = this.tokenQueue.indexOf(waiter);
        if (i >= 0) this.tokenQueue.splice(i, 1);
        reject(abortError(signal));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.tokenQueue.push(waiter);
      this.schedule();
    });
  }

  /** Hands out tokens to the waiting requests as they accrue. */
  private schedule(): void {
    if (this.refillTimer || this.tokenQueue.length === 0) return;
    const wait = Math.max(1, Math.ceil(((1 - this.tokens) / this.ratePerSecond) * 1000));
    this.refillTimer = setTimeout(() => {
      this.refillTimer = undefined;
      this.refill();
      while (this.tokens >= 1 && this.tokenQueue.length > 0) {
        this.tokens -= 1;
        this.tokenQueue.shift()!.resolve();
      }
      this.schedule();
    }, wait);
    this.refillTimer.unref();
  }
}
