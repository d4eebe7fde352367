/**
 * Runs the provider as a child process with the heap cap, for where the entry point cannot re-execute itself (no
 * process.execve: Windows). The parent holds nothing but the child: its output is the child's (inherited), its exit
 * code is the child's.
 *
 * Stopping: a Windows console event (Ctrl+C, Ctrl+Break, the container's shutdown) reaches every process attached to
 * the console, the child too, so the parent only keeps itself alive until the child has drained and exited; killing
 * the child from here would end it at once (TerminateProcess) and cut its drain. On POSIX a signal sent to the
 * parent's PID does not reach its child, so there it is passed on.
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:os';

const STOP_SIGNALS: NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGBREAK'];

export function runCapped(argv: readonly string[]): void {
  const [command, ...args] = argv;
  const child = spawn(command!, args, { stdio: 'inherit', windowsHide: true });
  const onSignal = (signal: NodeJS.Signals): void => {
    if (process.platform !== 'win32') child.kill(signal);
  };
  for (const signal of STOP_SIGNALS) {
    // SIGBREAK exists only on Windows; registering it elsewhere is harmless but pointless.
    if (signal === 'SIGBREAK' && process.platform !== 'win32') continue;
    process.on(signal, onSignal);
  }
  child.once('error', (err) => {
    process.stderr.write(`csi-provider-azure: could not start the provider with its heap cap: ${err.message}\n`);
    process.exit(1);
  });
  child.once('exit', (code, signal) => {
    // A child ended by a signal exits as a shell reports it (128 + number), so supervisors see it was not clean.
    process.exit(code ?? 128 + (signal ? (signalNumber(signal) ?? 0) : 0));
  });
}

function signalNumber(signal: NodeJS.Signals): number | undefined {
  return constants.signals[signal];
}
