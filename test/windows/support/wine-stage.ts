/**
 * An application tree laid out as in the Windows image (bin/, dist/, proto/, package.json, node_modules/, and the addon
 * at native/build/win32-x64/), compiled for the test from the working tree: src/ plus the fixtures that node.exe runs.
 * node_modules is a symlink to the repository's (Wine follows it through the Z: drive).
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../../support/driver-client';
import { buildAddon } from './addon-build';

export interface Stage {
  root: string;
  /** The product build (AF_UNIX) and the loopback-TCP test build, both for win32-x64. */
  addons: { unix: string; tcp: string };
}

export function buildStage(): Stage {
  const repo = repoRoot();
  const root = mkdtempSync(join(tmpdir(), 'csi-wine-stage-'));
  const tsconfig = join(root, 'tsconfig.json');
  writeFileSync(
    tsconfig,
    JSON.stringify({
      extends: join(repo, 'tsconfig.build.json'),
      compilerOptions: { outDir: join(root, 'dist'), rootDir: repo, sourceMap: false, incremental: false },
      include: [join(repo, 'src'), join(repo, 'test', 'support'), join(repo, 'test', 'windows', 'support'), join(repo, 'test', 'windows', 'fixtures')],
    }),
  );
  // First: tsc finds @types through the stage's node_modules.
  symlinkSync(join(repo, 'node_modules'), join(root, 'node_modules'), 'dir');
  execFileSync(process.execPath, [join(repo, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', tsconfig], { stdio: 'pipe' });
  cpSync(join(repo, 'proto'), join(root, 'proto'), { recursive: true });
  cpSync(join(repo, 'bin'), join(root, 'bin'), { recursive: true });
  copyFileSync(join(repo, 'package.json'), join(root, 'package.json'));
  const buildDir = join(root, 'native', 'build');
  return {
    root,
    addons: { unix: buildAddon('win32-x64', buildDir), tcp: buildAddon('win32-x64-tcptest', buildDir) },
  };
}

/**
 * A copy of the stage whose default addon (native/build/win32-x64) is the loopback-TCP build: the unchanged product
 * code then serves --endpoint=unix://C:\…\azure.sock over loopback TCP under Wine, with no switch in the product.
 */
export function tcpImage(stage: Stage): string {
  const root = mkdtempSync(join(tmpdir(), 'csi-wine-image-'));
  for (const entry of ['bin', 'dist', 'proto', 'package.json', 'node_modules']) {
    cpSync(join(stage.root, entry), join(root, entry), { recursive: true, verbatimSymlinks: true });
  }
  mkdirSync(join(root, 'native', 'build', 'win32-x64'), { recursive: true });
  copyFileSync(stage.addons.tcp, join(root, 'native', 'build', 'win32-x64', 'af_unix_listener.node'));
  return root;
}
