/**
 * Loads the libraries that start-up defers, in the background once the socket serves, so the first mount does not
 * pay for them (under a 50m CPU quota, ~100 ms of CPU is two seconds of the first pod's wait).
 *
 * Loading a library blocks the event loop for as long as it compiles, so the loading keeps out of the way: it starts
 * only a while after the socket serves, loads one library at a time with a pause between, in which a /healthz probe or
 * a Mount that arrived meanwhile is served, and loads nothing while the process is busy (the driver's and the
 * kubelet's first exchanges take several turns of the loop each, and under a CPU quota far longer than a pause). A
 * mount that needs a library not loaded yet simply loads it itself (require is synchronous and cached). A library that
 * fails to load is left to the mount that needs it, which then fails with the real error.
 */

export interface PreloadTiming {
  /** Wait before the first library. */
  startAfterMs: number;
  /** Wait between two libraries, and before trying again when the process was busy. */
  gapMs: number;
  /** Whether the process was busy since the last call; the event loop's utilization when absent. */
  busy?: () => boolean;
}

/**
 * The share of the time since the last call the event loop spent running code rather than waiting, above which it is
 * busy.
 */
const BUSY_UTILIZATION = 0.2;

function eventLoopBusy(): () => boolean {
  let last = performance.eventLoopUtilization();
  return () => {
    const now = performance.eventLoopUtilization();
    const since = performance.eventLoopUtilization(now, last);
    last = now;
    return since.utilization > BUSY_UTILIZATION;
  };
}

export function preloadInBackground(
  load: ReadonlyArray<() => unknown>,
  timing: PreloadTiming,
  onFailure: (err: unknown) => void,
): void {
  let next = 0;
  const busy = timing.busy ?? eventLoopBusy();
  const step = (): void => {
    // A mount or probe is being served: it goes first (and a mount loads what it needs itself).
    if (busy()) return schedule(timing.gapMs);
    const loadOne = load[next++];
    if (!loadOne) return;
    try {
      loadOne();
    } catch (err) {
      onFailure(err);
    }
    // The library's own loading is not a sign of a busy process.
    busy();
    schedule(timing.gapMs);
  };
  // Unreferenced: loading never keeps a stopping process alive.
  const schedule = (delayMs: number): void => {
    if (next < load.length) setTimeout(step, delayMs).unref();
  };
  schedule(timing.startAfterMs);
}
