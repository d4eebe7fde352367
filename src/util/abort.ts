/**
 * Racing a promise against a mount's AbortSignal. The Azure SDK does not stop every operation on abort (MSAL's IMDS
 * retries, paged listings after the first page), and a mount must end at its deadline, not when the SDK is done.
 */

/** The part of an AbortSignal we need; the SDK's AbortSignalLike has no `reason` in its type, real signals do. */
type SignalLike = Pick<AbortSignal, 'aborted' | 'addEventListener' | 'removeEventListener'>;

/** Settles with `work`, or rejects as soon as the signal aborts (`work` then settles unobserved). */
export function untilAborted<T>(work: Promise<T>, signal: SignalLike | undefined): Promise<T> {
  if (!signal) return work;
  if (signal.aborted) return Promise.reject(abortError(signal));
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(abortError(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}

/**
 * The mount's own reason when it carries one (a ProviderError: deadline, driver cancel), so the pod sees why;
 * otherwise an AbortError like the SDK's.
 */
export function abortError(signal: object): Error {
  const reason = (signal as { reason?: unknown }).reason;
  if (reason instanceof Error && reason.name === 'ProviderError') return reason;
  return newAbortError('the operation was aborted', { cause: reason });
}

/** An Error named AbortError, as the SDK's and fetch's are: the layers above class it as cancelled. */
export function newAbortError(message: string, options?: ErrorOptions): Error {
  const error = new Error(message, options);
  error.name = 'AbortError';
  return error;
}
