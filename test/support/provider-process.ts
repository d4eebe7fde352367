/**
 * Starts the real provider as a separate process (the installed bin, after `npm run build`) and speaks to it as the
 * driver does. The child gets a clean environment: PATH and HOME plus what the test passes, never the runner's own
 * variables, so a stray AZURE_CLIENT_ID on a developer machine cannot change what the tests exercise.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDriverClient, repoRoot, type DriverClient } from './driver-client';
import { freePorts } from './ports';

export interface StartProviderOptions {
  /** Added to PATH and HOME; typically `standIns.providerEnv()`. */
  env?: Record<string, string>;
  /** Extra command-line flags. --healthz-port / --prometheus-port get free ports unless given here. */
  args?: string[];
  /** Directory for azure.sock; a fresh temp dir (removed on stop) when omitted. */
  socketDir?: string;
  /** How long to wait for the first answered Version RPC; default 15 s. */
  startTimeoutMs?: number;
  /**
   * Runs the provider through another command: gets [node, script, ...flags] and returns the argv to spawn, which must
   * end by exec'ing that one (so signals reach the provider), e.g. unshare to give it a pod's mounts.
   */
  wrapCommand?: (argv: string[]) => string[];
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ProviderProcess {
  socketPath: string;
  client: DriverClient;
  pid: number;
  healthzPort: number | undefined;
  prometheusPort: number | undefined;
  /** Everything the process wrote to stdout and stderr so far. */
  logs(): string;
  /** Resolves when the log contains `pattern` (rejects after timeoutMs, with the logs). */
  waitForLog(pattern: string | RegExp, timeoutMs?: number): Promise<void>;
  /** Set once the process has exited. */
  exitInfo(): ExitInfo | undefined;
  /** Sends `signal` and waits for exit; SIGKILL after `timeoutMs` (default 30 s). Idempotent. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<ExitInfo>;
  /** Resident set size from /proc/<pid>/status (Linux). */
  rssBytes(): number;
}

const running = new Set<{ child: ChildProcess; cleanup: () => void }>();

export async function startProvider(options: StartProviderOptions = {}): Promise<ProviderProcess> {
  const root = repoRoot();
  const bin = join(root, 'bin', 'csi-provider-azure.js');
  if (!existsSync(join(root, 'dist', 'src', 'main.js'))) {
    throw new Error(`${join(root, 'dist', 'src', 'main.js')} is missing: run "npm run build" before the e2e tests`);
  }
  const ownDir = options.socketDir === undefined;
  const socketDir = options.socketDir ?? mkdtempSync(join(tmpdir(), 'csi-provider-'));
  const socketPath = join(socketDir, 'azure.sock');
  const args = [...(options.args ?? [])];
  const hasFlag = (name: string): boolean => args.some((a) => a === `--${name}` || a.startsWith(`--${name}=`) || a === `-${name}` || a.startsWith(`-${name}=`));
  const flagValue = (name: string): number | undefined => {
    const i = args.findIndex((a) => a === `--${name}` || a === `-${name}`);
    if (i >= 0) return Number(args[i + 1]);
    const eq = args.find((a) => a.startsWith(`--${name}=`) || a.startsWith(`-${name}=`));
    return eq ? Number(eq.split('=')[1]) : undefined;
  };
  // Fixed default ports would collide between parallel test files; both are reserved together so they differ.
  const [freeHealthz, freePrometheus] = await freePorts(2);
  const healthzPort = hasFlag('healthz-port') ? flagValue('healthz-port') : freeHealthz;
  const prometheusPort = hasFlag('prometheus-port') ? flagValue('prometheus-port') : freePrometheus;
  if (!hasFlag('healthz-port')) args.push('--healthz-port', String(healthzPort));
  if (!hasFlag('prometheus-port')) args.push('--prometheus-port', String(prometheusPort));

  const env: Record<string, string> = {
    PATH: process.env['PATH'] ?? '/usr/local/bin:/usr/bin:/bin',
    HOME: process.env['HOME'] ?? tmpdir(),
    ...options.env,
  };
  const argv = [process.execPath, bin, '--endpoint', `unix://${socketPath}`, ...args];
  const [command, ...commandArgs] = options.wrapCommand ? options.wrapCommand(argv) : argv;
  const child = spawn(command!, commandArgs, {
    env,
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const onData = (chunk: Buffer): void => {
    output += chunk.toString('utf8');
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  let exit: ExitInfo | undefined;
  const exited = new Promise<ExitInfo>((resolve) => {
    child.once('exit', (code, signal) => {
      exit = { code, signal };
      resolve(exit);
    });
  });
  const entry = {
    child,
    cleanup: () => {
      if (ownDir) rmSync(socketDir, { recursive: true, force: true });
    },
  };
  running.add(entry);
  void exited.then(() => running.delete(entry));

  const fail = async (why: string): Promise<never> => {
    if (!exit) child.kill('SIGKILL');
    await exited;
    entry.cleanup();
    throw new Error(`${why}\n--- provider output ---\n${output}--- end of provider output ---`);
  };

  // Poll with a fresh client each time: a channel that failed once backs off for seconds before retrying.
  const deadline = Date.now() + (options.startTimeoutMs ?? 15_000);
  for (;;) {
    if (exit) return fail(`the provider exited during start-up (code ${exit.code}, signal ${exit.signal})`);
    if (Date.now() > deadline) return fail(`the provider did not answer Version on ${socketPath} within ${options.startTimeoutMs ?? 15_000} ms`);
    if (existsSync(socketPath)) {
      const probe = createDriverClient(socketPath);
      const ok = await probe.version({ deadlineMs: 1000 }).then(
        () => true,
        () => false,
      );
      probe.close();
      if (ok) break;
    }
    await sleep(100);
  }

  const client = createDriverClient(socketPath);
  let stopping: Promise<ExitInfo> | undefined;
  return {
    socketPath,
    client,
    pid: child.pid!,
    healthzPort,
    prometheusPort,
    logs: () => output,
    async waitForLog(pattern, timeoutMs = 10_000) {
      const until = Date.now() + timeoutMs;
      // klog's text layout quotes the message and escapes its quotes: match the text as written before quoting.
      const text = (): string => output.replace(/\\"/g, '"');
      const matches = (): boolean => (typeof pattern === 'string' ? text().includes(pattern) : pattern.test(output) || pattern.test(text()));
      while (!matches()) {
        if (Date.now() > until) throw new Error(`provider log did not show ${String(pattern)} within ${timeoutMs} ms:\n${output}`);
        await sleep(50);
      }
    },
    exitInfo: () => exit,
    stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 30_000) {
      stopping ??= (async () => {
        client.close();
        if (!exit) {
          child.kill(signal);
          const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
          await exited;
          clearTimeout(timer);
        }
        entry.cleanup();
        return exit!;
      })();
      return stopping;
    },
    rssBytes() {
      const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
      const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
      if (!m) throw new Error(`no VmRSS in /proc/${child.pid}/status (has the process exited?)`);
      return Number(m[1]) * 1024;
    },
  };
}

/** Kills every provider this process started that is still running (SIGKILL) and removes their temp dirs. */
export function killLeftoverProviders(): number {
  let n = 0;
  for (const entry of running) {
    if (entry.child.exitCode === null && entry.child.signalCode === null) {
      entry.child.kill('SIGKILL');
      n++;
    }
    entry.cleanup();
  }
  running.clear();
  return n;
}

/**
 * Call at the top of a test file: kills leftover providers after the file's tests (a failed test may not reach its
 * own stop()). Also covers an abrupt exit of the test process.
 */
export function registerProviderCleanup(): void {
  const g = globalThis as { afterAll?: (fn: () => void) => void };
  if (typeof g.afterAll === 'function') g.afterAll(() => void killLeftoverProviders());
}

process.once('exit', () => {
  killLeftoverProviders();
});

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
