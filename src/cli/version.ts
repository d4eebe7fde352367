import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../util/package-root';

/** The names the driver and `kubectl get secretproviderclasspodstatus` show for this provider. */
export const RUNTIME_NAME = 'secrets-store-csi-driver-provider-azure';
export const PROTOCOL_VERSION = 'v1alpha1';

let cached: string | undefined;

/** Our semver, from the package.json the process was installed with (at the package root, in dist/ and the image). */
export function providerVersion(): string {
  if (cached) return cached;
  try {
    const pkg = JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { name?: string; version?: string };
    if (pkg.name === 'csi-provider-azure' && pkg.version) return (cached = pkg.version);
  } catch {
    // no package.json there: the version is unknown
  }
  return (cached = '0.0.0-unknown');
}

/** What `--version` prints: the reference's JSON fields plus the runtime, one line. */
export function versionJson(): string {
  return JSON.stringify({
    version: providerVersion(),
    runtime: RUNTIME_NAME,
    nodeVersion: process.version,
    platform: `${process.platform}/${process.arch}`,
  });
}
