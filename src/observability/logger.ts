import pino, { type Logger, type DestinationStream } from 'pino';
import pretty from 'pino-pretty';

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
  json: boolean;
  /** klog-style verbosity: 0-1 info, 2-4 debug, 5+ trace. */
  verbosity: number;
  destination?: DestinationStream;
}

export function levelForVerbosity(verbosity: number): pino.Level {
  if (verbosity >= 5) return 'trace';
  if (verbosity >= 2) return 'debug';
  return 'info';
}

export function createLogger(options: LoggerOptions): Logger {
  const base = {
    level: levelForVerbosity(options.verbosity),
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
  };
  if (options.json) return pino(base, options.destination ?? pino.destination({ fd: 2, sync: true }));
  // Readable text for people at a terminal; synchronous so nothing is lost when the process exits on a signal.
  const stream =
    options.destination ??
    pretty({ destination: 2, sync: true, colorize: false, singleLine: true, translateTime: 'SYS:standard', ignore: 'pid,hostname' });
  return pino(base, stream);
}
