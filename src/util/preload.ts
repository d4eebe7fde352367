/**
 * Loads the libraries that start-up defers, in the background once the socket serves, so the first mount does not
 * pay for them (under a 50m CPU quota, ~100 ms of CPU is two seconds of the first pod's wait).
 *
 * One library per turn of the event loop: loading one blocks the loop for as long as it compiles, so a /healthz probe
 * or a Mount that arrives meanwhile waits for at most that one library, never the whole list. A mount that needs a
 * library still loading simply loads it itself (require is synchronous and cached). A library that fails to load is
 * left to the mount that needs it, which then fails with the real error.
 */

export function preloadInBackground(load: ReadonlyArray<() => unknown>, onFailure: (err: unknown) => void): void {
  let next = 0;
  const step = (): void => {
    const loadOne = load[next++];
    if (!loadOne) return;
    try {
      loadOne();
    } catch (err) {
      onFailure(err);
    }
    schedule();
  };
  // setImmediate runs after the pending I/O of this turn: whatever arrived while a library loaded is served first.
  // Unreferenced, so loading never keeps a stopping process alive.
  const schedule = (): void => {
    if (next < load.length) setImmediate(step).unref();
  };
  schedule();
}
