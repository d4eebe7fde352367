/** Small helpers for unit tests of asynchronous mechanisms (gates, shared reads, retries) under fake timers. */

/** A signal that never aborts. */
export const live = (): AbortSignal => new AbortController().signal;

/** Follows a promise so a test can ask whether it has settled, without awaiting it. */
export function track<T>(promise: Promise<T>): { settled: boolean; value: T | undefined; error: unknown } {
  const state = { settled: false, value: undefined as T | undefined, error: undefined as unknown };
  promise.then(
    (value) => Object.assign(state, { settled: true, value }),
    (error: unknown) => Object.assign(state, { settled: true, error }),
  );
  return state;
}

/** Lets every promise callback that is ready run (no timers move). */
export async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}
