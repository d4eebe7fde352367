/**
 * Builds the af_unix_listener addon for a test, with native/build.sh exactly as CI and the Windows image do, into a
 * directory of the test's own: test files may run in parallel, and each then loads its own copy of the library.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../../support/driver-client';

export type AddonTarget = 'native' | 'native-tcptest' | 'win32-x64' | 'win32-x64-tcptest';

export const BUILD_SCRIPT = join(repoRoot(), 'native', 'build.sh');

function outputDirName(target: AddonTarget): string {
  const native = `${process.platform}-${process.arch}`;
  switch (target) {
    case 'native':
      return native;
    case 'native-tcptest':
      return `${native}-tcptest`;
    default:
      return target;
  }
}

const temporaryDirs: string[] = [];

/** Removes the directories buildAddon made for itself (a loaded library stays mapped: Linux allows that). */
export function removeAddonBuilds(): void {
  for (const dir of temporaryDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}

/** Builds with warnings as errors into `outDir` (default: a temporary directory); returns the .node file's path. */
export function buildAddon(target: AddonTarget, outDir?: string): string {
  if (outDir === undefined) {
    outDir = mkdtempSync(join(tmpdir(), 'af-unix-addon-'));
    temporaryDirs.push(outDir);
  }
  execFileSync('bash', [BUILD_SCRIPT, target], {
    env: { ...process.env, ADDON_STRICT: '1', ADDON_OUT_DIR: outDir },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return join(outDir, outputDirName(target), 'af_unix_listener.node');
}
