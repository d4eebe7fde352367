/**
 * Retrying Key Vault reads, in place of the SDK's fixed three retries (which give up under sustained throttling and
 * know nothing of the mount's deadline):
 *  - 429 (throttled), and 503 that carries Retry-After, wait as long as the vault asks (at most MAX_WAIT_MS) and retry
 *    until the mount's deadline; a 429 also pauses the whole vault's gate for that long, so queued reads do not hit the
 *    vault meanwhile;
 *  - other 5xx, 408, connection resets, network errors and attempts that get no answer in time retry a few times
 *    with jittered exponential backoff, then fail with the last error;
 *  - everything else (404, 403, 401, bad requests, token failures) fails at once.
 * Each attempt holds a slot of the vault's gate only while it is on the wire, never while it waits to retry.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { HttpHeaders } from '@azure/core-rest-pipeline';
import { restPipeline } from '../util/rest-pipeline';
import { abortError, untilAborted } from '../util/abort';
import { isTransientNetworkErrorCode } from '../util/network-errors';
import type { VaultGate } from './vault-gate';

export type FailureKind = 'throttled' | 'unavailable' | 'transient' | 'final';

export interface Failure {
  kind: FailureKind;
  /** What the service asked for (Retry-After and its millisecond variants), when it did. */
  retryAfterMs: number | undefined;
}

export interface RetryPolicy {
  /**
   * Retries of failures that came without Retry-After (5xx, resets, timeouts). Throttling retries until the deadline.
   */
  maxTransientRetries: number;
  /** First backoff; doubles with each retry, up to maxBackoffMs, and is jittered down to half. */
  baseBackoffMs: number;
  maxBackoffMs: number;
  /** An attempt without an answer after this long is abandoned (its connection too) and retried. */
  attemptTimeoutMs: number;
  /** 0 ≤ random() < 1; injectable so tests can pin the jitter. */
  random: () => number;
}

export const DEFAULT_RETRY_POLICY: Readonly<RetryPolicy> = Object.freeze({
  maxTransientRetries: 3,
  baseBackoffMs: 500,
  maxBackoffMs: 8_000,
  // Key Vault answers reads in tens of milliseconds; a request silent for this long sits on a dead connection.
  attemptTimeoutMs: 15_000,
  random: Math.random,
});

const MIN_ASKED_WAIT_MS = 100;
/**
 * The longest wait before the next attempt, whatever the vault asked. One "Retry-After: 3600" (a proxy's or a broken
 * gateway's as much as the vault's) must not hold the read, and every mount that joins it, for an hour after the vault
 * recovered: after this the read probes again, and a vault still throttling simply says so again.
 */
export const MAX_WAIT_MS = 10_000;

/** How a shared read is doing, for the message when the mount's deadline passes while it is still retrying. */
export interface RetryProgress {
  attempts: number;
  /** True while waiting for a slot of the vault's gate. */
  queued: boolean;
  lastFailure: { kind: Exclude<FailureKind, 'final'>; error: unknown } | undefined;
}

export interface RetryContext {
  /** Aborts the read (all its waiters gave up: the mounts' deadlines passed or the driver cancelled). */
  signal: AbortSignal;
  gate: VaultGate;
  policy: Readonly<RetryPolicy>;
  progress: RetryProgress;
  /** Told about every retry before its wait, e.g. for metrics and logs. */
  onRetry?: (failure: Failure, delayMs: number) => void;
}

/** An attempt that got no answer within the attempt timeout. */
export class AttemptTimeoutError extends Error {
  override readonly name = 'AttemptTimeoutError';
  constructor(readonly timeoutMs: number) {
    super(`no answer within ${timeoutMs / 1000}s`);
  }
}

/** Runs `attempt` until it succeeds, fails for good, or the context's signal aborts. */
export async function runWithRetries<T>(attempt: (signal: AbortSignal) => Promise<T>, ctx: RetryContext): Promise<T> {
  const { signal, gate, policy, progress } = ctx;
  let transientRetries = 0;
  for (;;) {
    progress.queued = true;
    const leave = await gate.enter(signal);
    progress.queued = false;
    // One controller per attempt, aborted by the read's signal or the attempt's timeout. Not AbortSignal.any: a
    // composite signal is tracked by weak references and a finalizer, which at one per request showed in the CPU
    // profile (creation and garbage collection), and nothing here needs more than a forwarded abort.
    const attemptAbort = new AbortController();
    const forward = (): void => attemptAbort.abort(signal.reason);
    if (signal.aborted) forward();
    else signal.addEventListener('abort', forward, { once: true });
    const timer = setTimeout(() => attemptAbort.abort(new AttemptTimeoutError(policy.attemptTimeoutMs)), policy.attemptTimeoutMs);
    let error: unknown;
    try {
      progress.attempts++;
      return await untilAborted(attempt(attemptAbort.signal), attemptAbort.signal);
    } catch (err) {
      error = attemptAbort.signal.reason instanceof AttemptTimeoutError && !signal.aborted ? attemptAbort.signal.reason : err;
    } finally {
      clearTimeout(timer);
      signal.removeEventListener('abort', forward);
      leave();
    }
    if (signal.aborted) throw abortError(signal);

    const failure = classifyFailure(error);
    if (failure.kind === 'final') throw error;
    // Only throttled and unavailable failures carry a Retry-After; only transient ones count against the budget.
    const askedToWait = failure.retryAfterMs !== undefined;
    if (failure.kind === 'transient') {
      if (transientRetries >= policy.maxTransientRetries) throw error;
      transientRetries++;
    }
    progress.lastFailure = { kind: failure.kind, error };
    const wantedMs = askedToWait
      ? // At least what the vault asked (and never a busy loop on "0"), plus up to 10% so that the reads it throttled
        // together do not all return at the same moment.
        Math.max(MIN_ASKED_WAIT_MS, failure.retryAfterMs!) * (1 + 0.1 * policy.random())
      : backoffMs(policy, failure.kind === 'throttled' ? progress.attempts - 1 : transientRetries - 1);
    const delayMs = Math.min(MAX_WAIT_MS, wantedMs);
    if (failure.kind === 'throttled') gate.pauseFor(delayMs);
    ctx.onRetry?.(failure, delayMs);
    try {
      await sleep(delayMs, undefined, { signal });
    } catch {
      throw abortError(signal);
    }
  }
}

/** Exponential backoff with "equal jitter": between half and all of base × 2^retry, capped. */
export function backoffMs(policy: Readonly<RetryPolicy>, retry: number): number {
  const ceiling = Math.min(policy.maxBackoffMs, policy.baseBackoffMs * 2 ** Math.max(0, retry));
  return ceiling / 2 + (ceiling / 2) * policy.random();
}

/** Which failures are worth another attempt, from what the SDK threw. */
export function classifyFailure(err: unknown): Failure {
  const none = { retryAfterMs: undefined };
  if (err instanceof AttemptTimeoutError) return { kind: 'transient', ...none };
  // Token failures, our own errors and aborts are not the vault's to retry.
  if (!restPipeline().isRestError(err)) return { kind: 'final', ...none };
  const status = err.statusCode;
  if (status === undefined) return { kind: isTransientNetworkErrorCode(err.code) ? 'transient' : 'final', ...none };
  if (status === 429) return { kind: 'throttled', retryAfterMs: retryAfterMs(err.response?.headers) };
  if (status === 503) {
    const asked = retryAfterMs(err.response?.headers);
    return asked === undefined ? { kind: 'transient', ...none } : { kind: 'unavailable', retryAfterMs: asked };
  }
  if (status === 408 || status === 500 || status === 502 || status === 504) return { kind: 'transient', ...none };
  return { kind: 'final', ...none };
}

/**
 * The wait a response asks for: Azure's `retry-after-ms` / `x-ms-retry-after-ms` (milliseconds), else the standard
 * `Retry-After` (seconds, or an HTTP date). Undefined when absent or unreadable.
 */
export function retryAfterMs(headers: HttpHeaders | undefined, now: number = Date.now()): number | undefined {
  if (!headers) return undefined;
  for (const name of ['retry-after-ms', 'x-ms-retry-after-ms']) {
    const value = headers.get(name);
    if (value !== undefined && /^\d+(\.\d+)?$/.test(value.trim())) return Number(value.trim());
  }
  const value = headers.get('retry-after')?.trim();
  if (!value) return undefined;
  if (/^\d+$/.test(value)) return Number(value) * 1000;
  // An HTTP date names its day and month ("Wed, 21 Oct 2015 07:28:00 GMT"); Date.parse would also take "1.5" or "-1".
  if (!/[a-z]{3}/i.test(value)) return undefined;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}
