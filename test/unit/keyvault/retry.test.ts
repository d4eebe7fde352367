import { RestError, createHttpHeaders, createPipelineRequest } from '@azure/core-rest-pipeline';
import { ProviderError } from '../../../src/errors';
import {
  AttemptTimeoutError,
  MAX_WAIT_MS,
  backoffMs,
  classifyFailure,
  retryAfterMs,
  runWithRetries,
  type RetryContext,
  type RetryPolicy,
  type RetryProgress,
} from '../../../src/keyvault/retry';
import { VaultGate } from '../../../src/keyvault/vault-gate';
import { settle, track } from '../../support/promises';

// runWithRetries waits with `setTimeout` from node:timers/promises, which Jest's fake timers (@sinonjs/fake-timers 10)
// do not replace. Route it through the global setTimeout, which they do, keeping its abort behaviour.
jest.mock('node:timers/promises', () => ({
  setTimeout: <T>(ms: number, value?: T, options?: { signal?: AbortSignal }): Promise<T | undefined> =>
    new Promise((resolve, reject) => {
      const signal = options?.signal;
      const aborted = (): Error => Object.assign(new Error('The operation was aborted'), { name: 'AbortError' });
      if (signal?.aborted) return reject(aborted());
      const onAbort = (): void => {
        clearTimeout(timer);
        reject(aborted());
      };
      const timer = setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve(value);
      }, ms);
      signal?.addEventListener('abort', onAbort, { once: true });
    }),
}));

const VAULT_URL = 'https://shop-kv.vault.azure.net/secrets/db-password';

/** A RestError shaped like the ones the Azure SDK throws for an HTTP answer (status, headers, request). */
function httpError(statusCode: number, headers: Record<string, string> = {}, code?: string): RestError {
  const request = createPipelineRequest({ url: VAULT_URL });
  return new RestError(`the vault answered ${statusCode}`, {
    statusCode,
    code,
    request,
    response: { headers: createHttpHeaders(headers), status: statusCode, request },
  });
}

/** A RestError shaped like the SDK's when the request got no HTTP answer. */
function networkError(code: string): RestError {
  return new RestError(`connect ${code}`, { code, request: createPipelineRequest({ url: VAULT_URL }) });
}

const POLICY: RetryPolicy = {
  maxTransientRetries: 2,
  baseBackoffMs: 100,
  maxBackoffMs: 1000,
  attemptTimeoutMs: 5000,
  random: () => 0.5,
};

/** Stands, in a script, for an attempt that never answers. */
const NO_ANSWER = Symbol('no answer');

/** An attempt that answers with each outcome in turn (an Error is thrown), then keeps answering the last one. */
function scripted<T>(...outcomes: Array<T | Error | typeof NO_ANSWER>): jest.Mock<Promise<T>, [AbortSignal]> {
  let call = 0;
  return jest.fn(async (_signal: AbortSignal) => {
    const outcome = outcomes[Math.min(call++, outcomes.length - 1)];
    if (outcome === NO_ANSWER) return new Promise<T>(() => undefined);
    if (outcome instanceof Error) throw outcome;
    return outcome as T;
  });
}

/** An attempt that never answers. */
const silent = (): jest.Mock<Promise<string>, [AbortSignal]> => scripted<string>(NO_ANSWER);

function setup(policy: Partial<RetryPolicy> = {}, gate = new VaultGate(1)) {
  const controller = new AbortController();
  const progress: RetryProgress = { attempts: 0, queued: false, lastFailure: undefined };
  const onRetry = jest.fn();
  const ctx: RetryContext = { signal: controller.signal, gate, policy: { ...POLICY, ...policy }, progress, onRetry };
  return { controller, gate, progress, onRetry, ctx };
}

describe('classifyFailure', () => {
  it('classifies 429 as throttled, with the wait the vault asked for', () => {
    expect(classifyFailure(httpError(429, { 'Retry-After': '7' }))).toEqual({ kind: 'throttled', retryAfterMs: 7000 });
  });

  it('classifies 429 without Retry-After as throttled all the same', () => {
    expect(classifyFailure(httpError(429))).toEqual({ kind: 'throttled', retryAfterMs: undefined });
  });

  it('classifies 503 with Retry-After as unavailable, with the wait asked for', () => {
    expect(classifyFailure(httpError(503, { 'retry-after-ms': '1500' }))).toEqual({ kind: 'unavailable', retryAfterMs: 1500 });
  });

  it('classifies 503 without Retry-After as transient', () => {
    expect(classifyFailure(httpError(503))).toEqual({ kind: 'transient', retryAfterMs: undefined });
  });

  it.each([500, 502, 504, 408])('classifies HTTP %d as transient', (status) => {
    expect(classifyFailure(httpError(status))).toEqual({ kind: 'transient', retryAfterMs: undefined });
  });

  it.each([400, 401, 403, 404, 409, 501])('classifies HTTP %d as final', (status) => {
    expect(classifyFailure(httpError(status, { 'Retry-After': '1' })).kind).toBe('final');
  });

  it.each(['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EAI_AGAIN', 'EPIPE', 'EHOSTUNREACH', 'REQUEST_SEND_ERROR', 'UND_ERR_SOCKET'])(
    'classifies a request that failed with %s as transient',
    (code) => {
      expect(classifyFailure(networkError(code)).kind).toBe('transient');
    },
  );

  it('classifies ENOTFOUND (the vault name does not resolve) as final', () => {
    expect(classifyFailure(networkError('ENOTFOUND')).kind).toBe('final');
  });

  it('classifies a RestError without status or known code as final', () => {
    expect(classifyFailure(new RestError('could not parse', { code: RestError.PARSE_ERROR })).kind).toBe('final');
    expect(classifyFailure(new RestError('what')).kind).toBe('final');
  });

  it('classifies an attempt that got no answer in time as transient', () => {
    expect(classifyFailure(new AttemptTimeoutError(5000))).toEqual({ kind: 'transient', retryAfterMs: undefined });
  });

  it.each([
    ['a plain Error', new Error('boom')],
    ['an abort error', Object.assign(new Error('aborted'), { name: 'AbortError' })],
    ['a ProviderError', new ProviderError('Unauthenticated', 'no token')],
    ['a string', 'ECONNRESET'],
    ['undefined', undefined],
  ])('classifies %s as final', (_what, err) => {
    expect(classifyFailure(err)).toEqual({ kind: 'final', retryAfterMs: undefined });
  });
});

describe('retryAfterMs', () => {
  const headers = (values: Record<string, string>) => createHttpHeaders(values);

  it('is undefined without headers or without any retry header', () => {
    expect(retryAfterMs(undefined)).toBeUndefined();
    expect(retryAfterMs(headers({ 'content-type': 'application/json' }))).toBeUndefined();
  });

  it('reads retry-after-ms as milliseconds', () => {
    expect(retryAfterMs(headers({ 'retry-after-ms': '1500' }))).toBe(1500);
  });

  it('reads x-ms-retry-after-ms as milliseconds', () => {
    expect(retryAfterMs(headers({ 'x-ms-retry-after-ms': '250' }))).toBe(250);
  });

  it('accepts fractional milliseconds and surrounding spaces', () => {
    expect(retryAfterMs(headers({ 'retry-after-ms': ' 12.5 ' }))).toBe(12.5);
  });

  it('prefers the millisecond headers over Retry-After', () => {
    expect(retryAfterMs(headers({ 'Retry-After': '30', 'x-ms-retry-after-ms': '400' }))).toBe(400);
    expect(retryAfterMs(headers({ 'retry-after-ms': '100', 'x-ms-retry-after-ms': '400' }))).toBe(100);
  });

  it('falls back to Retry-After when a millisecond header is unreadable', () => {
    expect(retryAfterMs(headers({ 'retry-after-ms': 'soon', 'Retry-After': '2' }))).toBe(2000);
  });

  it('reads Retry-After as seconds', () => {
    expect(retryAfterMs(headers({ 'Retry-After': '3' }))).toBe(3000);
    expect(retryAfterMs(headers({ 'retry-after': ' 0 ' }))).toBe(0);
  });

  it('reads Retry-After as an HTTP date, relative to now', () => {
    const now = Date.parse('Wed, 21 Oct 2015 07:28:00 GMT');
    expect(retryAfterMs(headers({ 'Retry-After': 'Wed, 21 Oct 2015 07:28:05 GMT' }), now)).toBe(5000);
  });

  it('reads an HTTP date already past as no wait', () => {
    const now = Date.parse('Wed, 21 Oct 2015 07:28:00 GMT');
    expect(retryAfterMs(headers({ 'Retry-After': 'Wed, 21 Oct 2015 07:27:00 GMT' }), now)).toBe(0);
  });

  // "1.5" and "-1" are neither whole seconds nor an HTTP date, though V8's lenient Date.parse reads them as dates in
  // 2001.
  it.each(['', 'later', '10 seconds', '2.0', '1.5', '-1'])('is undefined for an unreadable Retry-After %p', (value) => {
    expect(retryAfterMs(headers({ 'Retry-After': value }))).toBeUndefined();
  });
});

describe('backoffMs', () => {
  const policy = (random: number): RetryPolicy => ({ ...POLICY, baseBackoffMs: 100, maxBackoffMs: 1000, random: () => random });

  it('waits between half and all of the base on the first retry (equal jitter)', () => {
    expect(backoffMs(policy(0), 0)).toBe(50);
    expect(backoffMs(policy(0.5), 0)).toBe(75);
    expect(backoffMs(policy(0.999), 0)).toBeCloseTo(99.95);
  });

  it('doubles with each retry', () => {
    expect([0, 1, 2, 3].map((retry) => backoffMs(policy(1), retry))).toEqual([100, 200, 400, 800]);
  });

  it('never goes over maxBackoffMs', () => {
    expect(backoffMs(policy(1), 4)).toBe(1000);
    expect(backoffMs(policy(1), 50)).toBe(1000);
    expect(backoffMs(policy(0), 50)).toBe(500);
  });

  it('treats a negative retry as the first', () => {
    expect(backoffMs(policy(1), -1)).toBe(100);
  });
});

describe('AttemptTimeoutError', () => {
  it('names itself and says how long the attempt waited', () => {
    const err = new AttemptTimeoutError(15_000);
    expect(err).toBeInstanceOf(Error);
    expect(err.name).toBe('AttemptTimeoutError');
    expect(err.message).toBe('no answer within 15s');
    expect(err.timeoutMs).toBe(15_000);
  });
});

describe('runWithRetries', () => {
  beforeEach(() => {
    jest.useFakeTimers();
  });

  afterEach(() => {
    jest.useRealTimers();
  });

  it('returns the answer of a first attempt that succeeds', async () => {
    const { ctx, progress, gate, onRetry } = setup();
    const attempt = scripted<string>('s3cret');
    await expect(runWithRetries(attempt, ctx)).resolves.toBe('s3cret');
    expect(attempt).toHaveBeenCalledTimes(1);
    expect(progress).toEqual({ attempts: 1, queued: false, lastFailure: undefined });
    expect(onRetry).not.toHaveBeenCalled();
    expect(gate.load()).toEqual({ inFlight: 0, waiting: 0 });
  });

  describe('throttling (429)', () => {
    it('waits as long as Retry-After asks, plus the jitter, before the next attempt', async () => {
      const { ctx } = setup({ random: () => 0.5 });
      const attempt = scripted<string>(httpError(429, { 'Retry-After': '2' }), 'value');
      const result = track(runWithRetries(attempt, ctx));

      await jest.advanceTimersByTimeAsync(2099); // 2000 ms + 5% jitter = 2100 ms
      expect(attempt).toHaveBeenCalledTimes(1);
      await jest.advanceTimersByTimeAsync(1);
      expect(attempt).toHaveBeenCalledTimes(2);
      expect(result.value).toBe('value');
    });

    it.each([
      [0, 2000],
      [0.5, 2100],
      [0.999, 2199.8],
    ])('adds at most 10%% to the wait asked for (random %p → %p ms)', async (random, expected) => {
      const { ctx, onRetry } = setup({ random: () => random });
      const done = runWithRetries(scripted<string>(httpError(429, { 'retry-after-ms': '2000' }), 'value'), ctx);
      await jest.advanceTimersByTimeAsync(2200);
      await expect(done).resolves.toBe('value');
      expect(onRetry).toHaveBeenCalledTimes(1);
      expect(onRetry.mock.calls[0][1]).toBeCloseTo(expected);
    });

    it.each([
      ['Retry-After: 0', { 'Retry-After': '0' }],
      ['retry-after-ms: 20', { 'retry-after-ms': '20' }],
    ])('waits at least 100 ms even when asked for less (%s)', async (_what, headers) => {
      const { ctx, onRetry } = setup({ random: () => 0 });
      const attempt = scripted<string>(httpError(429, headers), 'value');
      const result = track(runWithRetries(attempt, ctx));

      await jest.advanceTimersByTimeAsync(99);
      expect(attempt).toHaveBeenCalledTimes(1);
      await jest.advanceTimersByTimeAsync(1);
      expect(result.value).toBe('value');
      expect(onRetry.mock.calls[0][1]).toBe(100);
    });

    it('pauses the vault gate for the wait, so other reads do not go out meanwhile', async () => {
      const { ctx, gate } = setup({ random: () => 0 }, new VaultGate(4));
      track(runWithRetries(scripted<string>(httpError(429, { 'Retry-After': '1' }), NO_ANSWER), ctx));
      await settle();

      const other = track(gate.enter(new AbortController().signal));
      await jest.advanceTimersByTimeAsync(999);
      expect(other.settled).toBe(false);
      await jest.advanceTimersByTimeAsync(1);
      expect(other.settled).toBe(true);
    });

    it('pauses the gate for at most MAX_WAIT_MS, however long Retry-After asks for', async () => {
      const { ctx, gate } = setup({ random: () => 0 }, new VaultGate(4));
      track(runWithRetries(scripted<string>(httpError(429, { 'Retry-After': String(30 * 24 * 60 * 60) }), NO_ANSWER), ctx));
      await settle();

      const other = track(gate.enter(new AbortController().signal));
      await jest.advanceTimersByTimeAsync(MAX_WAIT_MS - 1);
      expect(other.settled).toBe(false);
      await jest.advanceTimersByTimeAsync(1);
      expect(other.settled).toBe(true);
    });

    it('retries past maxTransientRetries, for as long as the vault throttles', async () => {
      const throttled = httpError(429, { 'Retry-After': '1' });
      const { ctx, progress } = setup({ maxTransientRetries: 1, random: () => 0 });
      const attempt = scripted<string>(...Array<Error>(10).fill(throttled), 'value');
      const result = track(runWithRetries(attempt, ctx));

      await jest.advanceTimersByTimeAsync(10 * 1000);
      expect(result.value).toBe('value');
      expect(attempt).toHaveBeenCalledTimes(11);
      expect(progress.attempts).toBe(11);
    });

    it('keeps retrying until the signal aborts, then fails with the abort error at once', async () => {
      const { ctx, controller } = setup({ random: () => 0 });
      const attempt = scripted<string>(httpError(429, { 'Retry-After': '60' }));
      const result = track(runWithRetries(attempt, ctx));

      // Retry-After 60 is cut to MAX_WAIT_MS: six attempts, then half way through a wait.
      await jest.advanceTimersByTimeAsync(5 * MAX_WAIT_MS + MAX_WAIT_MS / 2);
      expect(attempt).toHaveBeenCalledTimes(6);
      expect(result.settled).toBe(false);

      const deadline = new ProviderError('DeadlineExceeded', 'the mount took too long');
      controller.abort(deadline);
      await settle();
      expect(result.error).toBe(deadline);
    });

    it('backs off exponentially, without limit on retries, when the vault gives no Retry-After', async () => {
      const { ctx, onRetry } = setup({ maxTransientRetries: 1, random: () => 1 });
      const attempt = scripted<string>(...Array<Error>(6).fill(httpError(429)), 'value');
      const done = runWithRetries(attempt, ctx);
      await jest.advanceTimersByTimeAsync(10_000);
      await expect(done).resolves.toBe('value');
      expect(onRetry.mock.calls.map(([, delay]) => delay)).toEqual([100, 200, 400, 800, 1000, 1000]);
    });

    it('pauses the gate for the backoff when the vault gives no Retry-After', async () => {
      const { ctx, gate } = setup({ random: () => 1 }, new VaultGate(4));
      track(runWithRetries(scripted<string>(httpError(429), NO_ANSWER), ctx));
      await settle();

      const other = track(gate.enter(new AbortController().signal));
      await jest.advanceTimersByTimeAsync(99);
      expect(other.settled).toBe(false);
      await jest.advanceTimersByTimeAsync(1);
      expect(other.settled).toBe(true);
    });

    it('tells onRetry what failed and how long it will wait', async () => {
      const { ctx, onRetry } = setup({ random: () => 0 });
      const done = runWithRetries(scripted<string>(httpError(429, { 'Retry-After': '3' }), 'value'), ctx);
      await jest.advanceTimersByTimeAsync(3000);
      await done;
      expect(onRetry).toHaveBeenCalledWith({ kind: 'throttled', retryAfterMs: 3000 }, 3000);
    });
  });

  describe('unavailable (503)', () => {
    it('waits as long as Retry-After asks, and retries past maxTransientRetries', async () => {
      const unavailable = httpError(503, { 'Retry-After': '5' });
      const { ctx, onRetry } = setup({ maxTransientRetries: 1, random: () => 0 });
      const attempt = scripted<string>(unavailable, unavailable, unavailable, 'value');
      const result = track(runWithRetries(attempt, ctx));

      await jest.advanceTimersByTimeAsync(4999);
      expect(attempt).toHaveBeenCalledTimes(1);
      await jest.advanceTimersByTimeAsync(1);
      expect(attempt).toHaveBeenCalledTimes(2);
      await jest.advanceTimersByTimeAsync(10_000);
      expect(result.value).toBe('value');
      expect(onRetry).toHaveBeenCalledWith({ kind: 'unavailable', retryAfterMs: 5000 }, 5000);
    });

    it('keeps retrying until the signal aborts', async () => {
      const { ctx, controller } = setup({ random: () => 0 });
      const attempt = scripted<string>(httpError(503, { 'Retry-After': '1' }));
      const result = track(runWithRetries(attempt, ctx));
      await jest.advanceTimersByTimeAsync(20_500);
      expect(attempt).toHaveBeenCalledTimes(21);
      controller.abort();
      await settle();
      expect(result.error).toMatchObject({ name: 'AbortError' });
    });

    // Node's timers fire after 1 ms for a delay over 2^31-1 ms (~24.8 days): the wait is capped, not passed on.
    it('waits at most MAX_WAIT_MS, however long Retry-After asks for', async () => {
      const { ctx, onRetry } = setup({ random: () => 0 });
      const attempt = scripted<string>(httpError(503, { 'Retry-After': String(30 * 24 * 60 * 60) })); // 30 days
      track(runWithRetries(attempt, ctx));

      await jest.advanceTimersByTimeAsync(MAX_WAIT_MS - 1);
      expect(attempt).toHaveBeenCalledTimes(1);
      expect(onRetry.mock.calls[0][1]).toBe(MAX_WAIT_MS);
      await jest.advanceTimersByTimeAsync(1);
      expect(attempt).toHaveBeenCalledTimes(2);
    });

    it('is retried as a transient failure when it carries no Retry-After', async () => {
      const unavailable = httpError(503);
      const { ctx } = setup({ maxTransientRetries: 2 });
      const attempt = scripted<string>(unavailable);
      const done = runWithRetries(attempt, ctx);
      const failed = expect(done).rejects.toBe(unavailable);
      await jest.advanceTimersByTimeAsync(10_000);
      await failed;
      expect(attempt).toHaveBeenCalledTimes(3);
    });
  });

  describe('transient failures', () => {
    it.each([
      ['HTTP 500', () => httpError(500)],
      ['HTTP 502', () => httpError(502)],
      ['HTTP 504', () => httpError(504)],
      ['HTTP 408', () => httpError(408)],
      ['a connection reset', () => networkError('ECONNRESET')],
      ['a refused connection', () => networkError('ECONNREFUSED')],
      ['a DNS "try again"', () => networkError('EAI_AGAIN')],
    ])('retries %s maxTransientRetries times, then throws the last error', async (_what, makeError) => {
      const errors = [makeError(), makeError(), makeError()];
      const { ctx, progress } = setup({ maxTransientRetries: 2 });
      const attempt = scripted<string>(...errors);
      const done = runWithRetries(attempt, ctx);
      const failed = expect(done).rejects.toBe(errors[2]);
      await jest.advanceTimersByTimeAsync(10_000);
      await failed;
      expect(attempt).toHaveBeenCalledTimes(3);
      expect(progress.attempts).toBe(3);
    });

    it('returns the answer of a retry that succeeds', async () => {
      const { ctx } = setup();
      const done = runWithRetries(scripted<string>(httpError(500), networkError('ECONNRESET'), 'value'), ctx);
      await jest.advanceTimersByTimeAsync(10_000);
      await expect(done).resolves.toBe('value');
    });

    it('backs off with jittered exponential delays between retries', async () => {
      const { ctx, onRetry } = setup({ maxTransientRetries: 3, random: () => 0.5 });
      const attempt = scripted<string>(httpError(500));
      const done = runWithRetries(attempt, ctx);
      const failed = expect(done).rejects.toMatchObject({ statusCode: 500 });

      await jest.advanceTimersByTimeAsync(74); // first backoff: 100 ms × (½ + ½ × 0.5) = 75 ms
      expect(attempt).toHaveBeenCalledTimes(1);
      await jest.advanceTimersByTimeAsync(1);
      expect(attempt).toHaveBeenCalledTimes(2);
      await jest.advanceTimersByTimeAsync(10_000);
      await failed;
      expect(onRetry.mock.calls.map(([, delay]) => delay)).toEqual([75, 150, 300]);
      expect(onRetry.mock.calls.map(([failure]) => failure.kind)).toEqual(['transient', 'transient', 'transient']);
    });

    it('does not retry at all when maxTransientRetries is 0', async () => {
      const reset = networkError('ECONNRESET');
      const { ctx } = setup({ maxTransientRetries: 0 });
      const attempt = scripted<string>(reset);
      await expect(runWithRetries(attempt, ctx)).rejects.toBe(reset);
      expect(attempt).toHaveBeenCalledTimes(1);
    });

    it('does not spend transient retries on throttling', async () => {
      const { ctx } = setup({ maxTransientRetries: 2, random: () => 0 });
      const throttled = httpError(429, { 'Retry-After': '1' });
      const attempt = scripted<string>(httpError(500), throttled, throttled, throttled, httpError(502), 'value');
      const done = runWithRetries(attempt, ctx);
      await jest.advanceTimersByTimeAsync(10_000);
      await expect(done).resolves.toBe('value');
      expect(attempt).toHaveBeenCalledTimes(6);
    });

    it('does not renew the transient retries after throttling', async () => {
      const { ctx } = setup({ maxTransientRetries: 1, random: () => 0 });
      const last = httpError(502);
      const attempt = scripted<string>(httpError(500), httpError(429, { 'Retry-After': '1' }), last);
      const done = runWithRetries(attempt, ctx);
      const failed = expect(done).rejects.toBe(last);
      await jest.advanceTimersByTimeAsync(10_000);
      await failed;
      expect(attempt).toHaveBeenCalledTimes(3);
    });
  });

  describe('failures that are not retried', () => {
    it.each([
      ['HTTP 404', () => httpError(404, {}, 'SecretNotFound')],
      ['HTTP 403', () => httpError(403, {}, 'Forbidden')],
      ['HTTP 401', () => httpError(401)],
      ['HTTP 400', () => httpError(400, {}, 'BadParameter')],
      ['ENOTFOUND', () => networkError('ENOTFOUND')],
      ['a token failure (not a RestError)', () => new ProviderError('Unauthenticated', 'could not get a token')],
      ['a plain Error', () => new Error('bug')],
    ])('fails at once on %s, with that error', async (_what, makeError) => {
      const error = makeError();
      const { ctx, progress, onRetry, gate } = setup();
      const attempt = scripted<string>(error);
      await expect(runWithRetries(attempt, ctx)).rejects.toBe(error);
      expect(attempt).toHaveBeenCalledTimes(1);
      expect(progress.attempts).toBe(1);
      expect(progress.lastFailure).toBeUndefined();
      expect(onRetry).not.toHaveBeenCalled();
      expect(gate.load()).toEqual({ inFlight: 0, waiting: 0 });
    });

    it('fails at once on an error thrown synchronously by the attempt', async () => {
      const { ctx, gate } = setup();
      const error = new Error('thrown before any promise');
      const attempt = jest.fn((): Promise<string> => {
        throw error;
      });
      await expect(runWithRetries(attempt, ctx)).rejects.toBe(error);
      expect(gate.load().inFlight).toBe(0);
    });
  });

  describe('attempt timeout', () => {
    it('abandons an attempt that gets no answer in time, aborting its signal with AttemptTimeoutError', async () => {
      const { ctx } = setup({ attemptTimeoutMs: 5000 });
      const attempt = jest.fn((_signal: AbortSignal) => new Promise<string>(() => undefined));
      attempt.mockImplementationOnce(() => new Promise<string>(() => undefined)).mockResolvedValueOnce('value');
      const result = track(runWithRetries(attempt, ctx));

      await jest.advanceTimersByTimeAsync(4999);
      const firstSignal = attempt.mock.calls[0][0];
      expect(firstSignal.aborted).toBe(false);
      await jest.advanceTimersByTimeAsync(1);
      expect(firstSignal.aborted).toBe(true);
      expect(firstSignal.reason).toBeInstanceOf(AttemptTimeoutError);

      await jest.advanceTimersByTimeAsync(1000);
      expect(attempt).toHaveBeenCalledTimes(2);
      expect(result.value).toBe('value');
    });

    it('retries timeouts as transient failures, then throws AttemptTimeoutError', async () => {
      const { ctx, progress } = setup({ attemptTimeoutMs: 5000, maxTransientRetries: 2 });
      const attempt = silent();
      const done = runWithRetries(attempt, ctx);
      const failed = expect(done).rejects.toBeInstanceOf(AttemptTimeoutError);
      await jest.advanceTimersByTimeAsync(60_000);
      await failed;
      expect(attempt).toHaveBeenCalledTimes(3);
      expect(progress.lastFailure?.kind).toBe('transient');
      expect(progress.lastFailure?.error).toBeInstanceOf(AttemptTimeoutError);
    });

    it('does not abort an attempt that answers in time', async () => {
      const { ctx } = setup({ attemptTimeoutMs: 5000 });
      const attempt = jest.fn(async (_signal: AbortSignal) => 'value');
      await expect(runWithRetries(attempt, ctx)).resolves.toBe('value');
      await jest.advanceTimersByTimeAsync(10_000);
      expect(attempt.mock.calls[0][0].aborted).toBe(false);
      expect(jest.getTimerCount()).toBe(0);
    });
  });

  describe('the vault gate', () => {
    it('holds a slot while the attempt is on the wire', async () => {
      const { ctx, gate } = setup();
      let inFlightDuringAttempt: number | undefined;
      await runWithRetries(async () => {
        inFlightDuringAttempt = gate.load().inFlight;
        return 'value';
      }, ctx);
      expect(inFlightDuringAttempt).toBe(1);
      expect(gate.load().inFlight).toBe(0);
    });

    it('gives the slot back while it waits to retry, so others can use it', async () => {
      const { ctx, gate } = setup({}, new VaultGate(1));
      const attempt = scripted<string>(httpError(500), 'value');
      const result = track(runWithRetries(attempt, ctx));
      await settle();

      expect(gate.load()).toEqual({ inFlight: 0, waiting: 0 });
      const other = track(gate.enter(new AbortController().signal));
      await settle();
      expect(other.settled).toBe(true);

      // Its retry now waits for the slot the other request holds.
      await jest.advanceTimersByTimeAsync(1000);
      expect(attempt).toHaveBeenCalledTimes(1);
      expect(ctx.progress.queued).toBe(true);
      other.value!();
      await settle();
      expect(result.value).toBe('value');
      expect(ctx.progress.queued).toBe(false);
    });

    it('does not start an attempt until the gate admits it', async () => {
      const gate = new VaultGate(1);
      const release = await gate.enter(new AbortController().signal);
      const { ctx, progress } = setup({}, gate);
      const attempt = scripted<string>('value');
      const result = track(runWithRetries(attempt, ctx));

      await jest.advanceTimersByTimeAsync(60_000);
      expect(attempt).not.toHaveBeenCalled();
      expect(progress.queued).toBe(true);
      release();
      await settle();
      expect(result.value).toBe('value');
    });

    it('does not count the time waiting for the gate against the attempt timeout', async () => {
      const gate = new VaultGate(1);
      const release = await gate.enter(new AbortController().signal);
      const { ctx } = setup({ attemptTimeoutMs: 5000 }, gate);
      const attempt = jest.fn((_signal: AbortSignal) => new Promise<string>(() => undefined));
      track(runWithRetries(attempt, ctx));

      await jest.advanceTimersByTimeAsync(60_000);
      release();
      await jest.advanceTimersByTimeAsync(4999);
      expect(attempt).toHaveBeenCalledTimes(1);
      expect(attempt.mock.calls[0][0].aborted).toBe(false);
    });
  });

  describe('progress', () => {
    it('counts attempts and remembers the last failure', async () => {
      const first = httpError(500);
      const second = httpError(429, { 'Retry-After': '1' });
      const { ctx, progress } = setup({ random: () => 0 });
      track(runWithRetries(scripted<string>(first, second, NO_ANSWER), ctx));

      await settle();
      expect(progress.attempts).toBe(1);
      expect(progress.lastFailure).toEqual({ kind: 'transient', error: first });

      await jest.advanceTimersByTimeAsync(50); // backoff: 100 × ½
      expect(progress.attempts).toBe(2);
      expect(progress.lastFailure).toEqual({ kind: 'throttled', error: second });
    });
  });

  describe('aborting', () => {
    it('fails at once, without an attempt, when the signal is already aborted', async () => {
      const { ctx, controller } = setup();
      controller.abort();
      const attempt = scripted<string>('value');
      await expect(runWithRetries(attempt, ctx)).rejects.toMatchObject({ name: 'AbortError' });
      expect(attempt).not.toHaveBeenCalled();
    });

    it('stops waiting to retry as soon as the signal aborts, with its abort error', async () => {
      const { ctx, controller } = setup({ random: () => 0 });
      const attempt = scripted<string>(httpError(429, { 'Retry-After': '120' }));
      const result = track(runWithRetries(attempt, ctx));
      await jest.advanceTimersByTimeAsync(1000);

      const reason = new Error('driver cancelled');
      controller.abort(reason);
      await settle();
      expect(result.error).toMatchObject({ name: 'AbortError', cause: reason });
      expect(attempt).toHaveBeenCalledTimes(1);
    });

    it("rejects with the signal's ProviderError itself when it carries one", async () => {
      const { ctx, controller } = setup();
      const result = track(runWithRetries(scripted<string>(httpError(500)), ctx));
      await settle();
      const deadline = new ProviderError('DeadlineExceeded', 'mount deadline passed');
      controller.abort(deadline);
      await settle();
      expect(result.error).toBe(deadline);
    });

    it('abandons an attempt in flight at once, aborts its signal and gives the slot back', async () => {
      const { ctx, controller, gate } = setup();
      const attempt = silent();
      const result = track(runWithRetries(attempt, ctx));
      await settle();
      expect(gate.load().inFlight).toBe(1);

      controller.abort();
      await settle();
      expect(result.error).toMatchObject({ name: 'AbortError' });
      expect(attempt.mock.calls[0][0].aborted).toBe(true);
      expect(gate.load().inFlight).toBe(0);
    });

    it('does not retry an attempt that failed because the signal aborted', async () => {
      const { ctx, controller, onRetry } = setup();
      const attempt = jest.fn(
        (signal: AbortSignal) =>
          new Promise<string>((_resolve, reject) => signal.addEventListener('abort', () => reject(networkError('ECONNRESET')))),
      );
      const result = track(runWithRetries(attempt, ctx));
      await settle();
      controller.abort();
      await jest.advanceTimersByTimeAsync(10_000);
      expect(result.error).toMatchObject({ name: 'AbortError' });
      expect(attempt).toHaveBeenCalledTimes(1);
      expect(onRetry).not.toHaveBeenCalled();
    });

    it('stops waiting for the gate when the signal aborts', async () => {
      const gate = new VaultGate(1);
      await gate.enter(new AbortController().signal);
      const { ctx, controller } = setup({}, gate);
      const attempt = scripted<string>('value');
      const result = track(runWithRetries(attempt, ctx));
      await settle();

      controller.abort();
      await settle();
      expect(result.error).toMatchObject({ name: 'AbortError' });
      expect(attempt).not.toHaveBeenCalled();
      expect(gate.load()).toEqual({ inFlight: 1, waiting: 0 });
    });
  });
});
