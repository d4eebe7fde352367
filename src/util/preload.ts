/**
 * Loads the libraries that start-up defers, in the background once the socket serves, so the first mount does not
 * pay for them (under a 50m CPU quota, ~100 ms of CPU is two seconds of the first pod's wait).
 *
 * Loading a library blocks the event loop for as long as it compiles, so the loading keeps out of the way: it starts
 * only a while after the socket serves (the driver's and the kubelet's first exchanges, several turns of the loop
 * each, go first), and loads one library at a time with a pause between, in which a /healthz probe or a Mount that
 * arrived meanwhile is served. A mount that needs a library not loaded yet simply loads it itself (require is
 * synchronous and cached). A library that fails to load is left to the mount that needs it, which then fails with the
 * real error.
 */

export interface PreloadTiming {
  /** Wait before the first library. */
  startAfterMs: number;
  /** Wait between two libraries. */
  gapMs: number;
}

export function preloadInBackground(
  load: ReadonlyArray<() => unknown>,
  timing: PreloadTiming,
  onFailure: (err: unknown) => void,
): void {
  let next = 0;
  const step = (): void => {
    const loadOne = load[next++];
    if (!loadOne) return;
    try {
      loadOne();
    } catch (err) {
      onFailure(err);
    }
    schedule(timing.gapMs);
  };
  // Unreferenced: loading never keeps a stopping process alive.
  const schedule = (delayMs: number): void => {
    if (next < load.length) setTimeout(step, delayMs).unref();
  };
  schedule(timing.startAfterMs);
}
