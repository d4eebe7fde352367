/**
 * The two log layouts Kubernetes operators' tools expect from a node component, produced from pino's records:
 *
 *  text (klog):  E1202 01:16:37.473000    1 mount/mount-service.js:64] "mount failed" err="…" pod="shop-0"
 *                severity letter (I, W, E, F), month and day, local time to microseconds, pid, caller, then the
 *                quoted message and key=value pairs; one line per event (newlines in values are escaped), so
 *                `kubectl logs … | grep ^E` finds the failures.
 *  json (Kubernetes component JSON, k8s.io/component-base/logs/json):
 *                {"ts":<epoch milliseconds, fractional>,"caller":"…","msg":"…","v":<verbosity>,…}; error records
 *                carry "err" (the error's text) and no "v".
 *
 * Pure functions over a record; logger.ts wires them into pino.
 */

/** pino's numeric levels. */
export const LEVEL = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 } as const;

/** The klog verbosity a pino level stands for: debug is what -v=2 shows, trace what -v=5 shows. */
export function verbosityOfLevel(level: number): number {
  if (level <= LEVEL.trace) return 5;
  if (level <= LEVEL.debug) return 2;
  return 0;
}

export function severityLetter(level: number): 'I' | 'W' | 'E' | 'F' {
  if (level >= LEVEL.fatal) return 'F';
  if (level >= LEVEL.error) return 'E';
  if (level >= LEVEL.warn) return 'W';
  return 'I';
}

/** Fields every record has, named as they leave pino (see logger.ts); the rest are the call's key/values. */
export interface LogRecord {
  level: number;
  /** Epoch milliseconds, fractional. */
  ts: number;
  msg?: string;
  caller?: string;
  [key: string]: unknown;
}

const pad = (n: number, width = 2): string => String(n).padStart(width, '0');

/** klog's header: Lmmdd hh:mm:ss.uuuuuu threadid file:line] */
export function klogHeader(level: number, ts: number, pid: number, caller: string): string {
  const date = new Date(Math.floor(ts));
  const micros = Math.floor((ts % 1000) * 1000);
  const time = `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.${pad(micros, 6)}`;
  // klog pads the thread id to 7 columns.
  return `${severityLetter(level)}${pad(date.getMonth() + 1)}${pad(date.getDate())} ${time} ${String(pid).padStart(7)} ${caller}]`;
}

/** A value as klog's text logger writes it: strings quoted and escaped, numbers and booleans bare, the rest as JSON. */
export function klogValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return String(value);
  if (value === undefined) return '<nil>';
  // JSON keeps structured values on one line (JSON.stringify escapes newlines).
  return JSON.stringify(value);
}

/**
 * One klog text line (with its newline) for a pino record. `err` comes right after the message, as klog.ErrorS puts it.
 */
export function formatKlogText(record: LogRecord, pid: number): string {
  const { level, ts, msg, caller, err, ...rest } = record;
  const parts = [klogHeader(level, ts, pid, caller ?? '???:0'), JSON.stringify(msg ?? '')];
  if (err !== undefined) parts.push(`err=${klogValue(err)}`);
  for (const [key, value] of Object.entries(rest)) {
    if (value === undefined) continue;
    parts.push(`${key}=${klogValue(value)}`);
  }
  return `${parts.join(' ')}\n`;
}

/** The record in the Kubernetes JSON shape: ts, caller, msg, v (not on errors), err, then the key/values. */
export function toKubernetesJson(record: LogRecord): Record<string, unknown> {
  const { level, ts, msg, caller, err, ...rest } = record;
  const out: Record<string, unknown> = { ts, caller, msg: msg ?? '' };
  if (level < LEVEL.error) out['v'] = verbosityOfLevel(level);
  if (err !== undefined) out['err'] = err;
  return Object.assign(out, rest);
}
