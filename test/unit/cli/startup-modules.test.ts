import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from '../../support/driver-client';

// What loads before the socket answers is CPU spent under the container's quota before the provider can serve (under
// 50m, every 100 ms of it is 2 s): the libraries that only a mount needs load on the first mount.
it('loads neither the Azure SDK pipeline, nor the Key Vault SDKs, nor Entra ID, nor the YAML library at start', () => {
  const main = join(repoRoot(), 'dist', 'src', 'main.js');
  const out = execFileSync(
    process.execPath,
    ['-e', `require(${JSON.stringify(main)}); process.stdout.write(JSON.stringify(Object.keys(require.cache)))`],
    { encoding: 'utf8' },
  );
  const loaded = (JSON.parse(out) as string[]).map((path) => /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(path)?.[1]).filter(Boolean);
  const lazy = [
    '@azure/core-rest-pipeline',
    '@azure/keyvault-secrets',
    '@azure/keyvault-keys',
    '@azure/keyvault-certificates',
    '@azure/identity',
    'yaml',
    're2js',
  ];
  for (const name of lazy) expect(loaded).not.toContain(name);
  // The proof that the check sees the libraries that do load at start.
  expect(loaded).toContain('@grpc/grpc-js');
});
