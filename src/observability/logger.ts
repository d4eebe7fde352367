import { writeSync } from 'node:fs';
import { sep } from 'node:path';
import pino, { type Logger, type DestinationStream } from 'pino';
import { formatKlogText, toKubernetesJson, type LogRecord } from './klog-format';

export type { Logger };

/**
 * Field names that must never reach a log line with their value, whatever a future caller passes in. The code never
 * logs secret material on purpose (logs carry names, versions, counts); this is the second line of defence.
 */
const REDACTED_PATHS = [
  'value',
  'token',
  'accessToken',
  'access_token',
  'clientSecret',
  'clientsecret',
  'secrets',
  'password',
  'authorization',
  'headers.authorization',
  'req.headers.authorization',
  '*.value',
  '*.token',
  '*.accessToken',
  '*.clientSecret',
  '*.secrets',
  '*.authorization',
  'attributes["csi.storage.k8s.io/serviceAccount.tokens"]',
];

export interface LoggerOptions {
  /** --log-format-json: the Kubernetes component JSON shape; otherwise klog's text layout. */
  json: boolean;
  /** klog-style verbosity: 0-1 info, 2-4 debug, 5+ trace. */
  verbosity: number;
  /** Where the formatted lines go; default standard error, written synchronously (nothing lost on exit). */
  destination?: DestinationStream;
}

export function levelForVerbosity(verbosity: number): pino.Level {
  if (verbosity >= 5) return 'trace';
  if (verbosity >= 2) return 'debug';
  return 'info';
}

/**
 * One pino logger; its records (level number, ts, caller, the call's fields, msg) are rewritten line by line into
 * klog text or Kubernetes JSON (klog-format.ts) on their way to the destination.
 */
export function createLogger(options: LoggerOptions): Logger {
  const out = options.destination ?? { write: (line: string) => void writeSync(2, line) };
  const format = options.json
    ? (record: LogRecord): string => `${JSON.stringify(toKubernetesJson(record))}\n`
    : (record: LogRecord): string => formatKlogText(record, process.pid);
  const stream: DestinationStream = {
    write(line: string): void {
      let record: LogRecord;
      try {
        record = JSON.parse(line) as LogRecord;
      } catch {
        out.write(line);
        return;
      }
      out.write(format(record));
    },
  };
  return pino(
    {
      level: levelForVerbosity(options.verbosity),
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      base: null,
      // Epoch milliseconds with a fraction, as Kubernetes writes "ts"; klog's header prints it to microseconds.
      timestamp: () => `,"ts":${performance.timeOrigin + performance.now()}`,
      formatters: { level: (_label: string, number: number) => ({ level: number }) },
      mixin: () => ({ caller: callerOf() }),
      // Kubernetes logs an error as its text ("err"); a secret never travels in an error message (see errors.ts).
      serializers: { err: errorText },
    },
    stream,
  );
}

function errorText(err: unknown): string {
  if (err instanceof Error) return err.message;
  return typeof err === 'string' ? err : String(err);
}

const PINO_DIR = `${sep}node_modules${sep}pino${sep}`;

/** "folder/file.js:line" of the code that called the logger (what klog prints as file:line). */
function callerOf(): string {
  const { prepareStackTrace, stackTraceLimit } = Error;
  try {
    Error.stackTraceLimit = 12;
    Error.prepareStackTrace = (_err, sites) => sites;
    const holder: { stack?: NodeJS.CallSite[] } = {};
    Error.captureStackTrace(holder, callerOf);
    for (const site of holder.stack ?? []) {
      const file = site.getFileName();
      if (!file || file === __filename || file.includes(PINO_DIR) || file.startsWith('node:')) continue;
      return `${file.split(sep).slice(-2).join('/')}:${site.getLineNumber() ?? 0}`;
    }
    return '???:0';
  } finally {
    Error.prepareStackTrace = prepareStackTrace;
    Error.stackTraceLimit = stackTraceLimit;
  }
}
