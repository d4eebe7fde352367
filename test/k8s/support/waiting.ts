/** Waiting helpers the real-stack tests share: the driver, kubelet and API server act on their own schedules. */
import type { DriverVersion } from './components';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A driver version as a name part: v1.6.0 -> "1-6-0". */
export const shortVersion = (version: DriverVersion): string => version.replace(/\./g, '-').slice(1);

/**
 * Polls `probe` until it returns a value; a throw counts as "not yet". On timeout the error names what was awaited
 * and the probe's last error, if any.
 */
export async function eventually<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000, pollMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${timeoutMs} ms${last ? ` (${String(last)})` : ''}`);
    await sleep(pollMs);
  }
}
