/** Durations in Go's syntax, which the reference's flags and parameters take. */
const DURATION_UNITS: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60000, h: 3600000 };

/** A Go duration ("5s", "1m30s", "250ms") in milliseconds. */
export function parseDuration(value: string): number {
  if (value === '0') return 0;
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0;
  let consumed = 0;
  for (let m = re.exec(value); m; m = re.exec(value)) {
    total += Number(m[1]) * DURATION_UNITS[m[2]!]!;
    consumed = re.lastIndex;
  }
  if (consumed === 0 || consumed !== value.length) throw new Error('expected a duration such as 5s or 500ms');
  return total;
}
