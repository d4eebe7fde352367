/** A long-running child process of the real stack (etcd, kube-apiserver, the driver): its log, readiness, stop. */
import { spawn, type ChildProcess } from 'node:child_process';

export interface Daemon {
  name: string;
  pid: number;
  logs(): string;
  /** Resolves when the log matches `pattern`; rejects with the log's tail after timeoutMs or if the process exits. */
  waitForLog(pattern: RegExp, timeoutMs?: number): Promise<void>;
  exited(): boolean;
  /** SIGTERM, then SIGKILL after timeoutMs. Idempotent. */
  stop(timeoutMs?: number): Promise<void>;
}

const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/** Keeps the last 4 MiB of a daemon's output: enough for any assertion, bounded for hour-long runs. */
const LOG_LIMIT = 4 * 1024 * 1024;

export function startDaemon(name: string, binary: string, args: string[], env: Record<string, string> = {}): Daemon {
  const child = spawn(binary, args, {
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: process.env['HOME'] ?? '/tmp', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  let output = '';
  const waiters = new Set<() => void>();
  const onData = (chunk: Buffer): void => {
    output += chunk.toString('utf8');
    if (output.length > LOG_LIMIT) output = output.slice(-LOG_LIMIT / 2);
    for (const w of waiters) w();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  let exit: string | undefined;
  const exitedPromise = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exit = `exited with ${signal ?? code}`;
      running.delete(child);
      for (const w of waiters) w();
      resolve();
    });
  });
  const tail = (): string => output.slice(-4000);
  return {
    name,
    pid: child.pid!,
    logs: () => output,
    exited: () => exit !== undefined,
    waitForLog(pattern, timeoutMs = 60_000) {
      return new Promise<void>((resolve, reject) => {
        const check = (): void => {
          if (pattern.test(output)) done(null);
          else if (exit) done(new Error(`${name} ${exit} before logging ${pattern}:\n${tail()}`));
        };
        const timer = setTimeout(() => done(new Error(`${name} did not log ${pattern} within ${timeoutMs} ms:\n${tail()}`)), timeoutMs);
        const done = (err: Error | null): void => {
          clearTimeout(timer);
          waiters.delete(check);
          if (err) reject(err);
          else resolve();
        };
        waiters.add(check);
        check();
      });
    },
    async stop(timeoutMs = 10_000) {
      if (exit) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      await exitedPromise;
      clearTimeout(timer);
    },
  };
}
