/**
 * `npm run bench` (objects): the Key Vault requests one mount of each kind of objects entry makes, counted at the Key
 * Vault stand-in, for the first mount (new client: the 401 challenge and the token come with it) and for a warm one
 * (what every rotation costs with the value cache off), with the provider's CPU per warm mount beside them.
 */
import { startAzureStandIns } from '../test/support/azure-standins';
import { startProvider } from '../test/support/provider-process';
import { cpuMs } from './support/cgroup';

const WARM_MOUNTS = Number(process.env['BENCH_MOUNTS'] ?? 50);
/** Secrets in the vault the selection lists (25 per page, as the SDK asks for), of which 3 match. */
const VAULT_SECRETS = Number(process.env['BENCH_VAULT_SECRETS'] ?? 60);

const entry = (yaml: string): string => `  - |\n${yaml.trim().split('\n').map((l) => `    ${l}`).join('\n')}\n`;
const objects = (...entries: string[]): string => `array:\n${entries.map(entry).join('')}`;

const KINDS: Record<string, string> = {
  'one secret (as the reference)': objects('objectName: plain\nobjectType: secret'),
  'jsonPaths: 2 fields of one JSON secret': objects(
    'objectName: db\nobjectType: secret\nwriteObject: "false"\njsonPaths:\n  - path: username\n    objectAlias: db-user\n  - path: credentials.password\n    objectAlias: db-pass',
  ),
  'optional: one present, one missing (404)': objects('objectName: plain\nobjectType: secret', 'objectName: absent\nobjectType: secret\noptional: "true"'),
  'per-object keyvaultName: one secret in each of two vaults': objects(
    'objectName: plain\nobjectType: secret',
    'objectName: shared\nobjectType: secret\nkeyvaultName: bench-shared',
  ),
  'writeTags + writeAttributes: one secret': objects('objectName: tagged\nobjectType: secret\nwriteTags: "true"\nwriteAttributes: "true"'),
  [`objectNamePrefix: 3 of ${VAULT_SECRETS} secrets`]: objects('objectNamePrefix: shop-\nobjectAlias: shop'),
  [`objectTags: 3 of ${VAULT_SECRETS} secrets`]: objects('objectTags:\n  team: payments\nobjectAlias: payments'),
};

async function main(): Promise<void> {
  const azure = await startAzureStandIns({ identities: { systemAssigned: { id: 'node' } } });
  azure.keyVault.addVault('bench-kv', { allow: ['node'] });
  azure.keyVault.addVault('bench-shared', { allow: ['node'] });
  azure.keyVault.setSecret('bench-kv', 'plain', 'x'.repeat(64));
  azure.keyVault.setSecret('bench-kv', 'db', JSON.stringify({ username: 'app', credentials: { password: 'p'.repeat(24) } }));
  azure.keyVault.setSecret('bench-kv', 'tagged', 'y'.repeat(64), { tags: { owner: 'team-a' } });
  azure.keyVault.setSecret('bench-shared', 'shared', 'z'.repeat(64));
  for (let i = 0; i < VAULT_SECRETS - 4; i++) {
    const name = i < 3 ? `shop-${i}` : `other-${i}`;
    azure.keyVault.setSecret('bench-kv', name, `v${i}`, { tags: i >= 3 && i < 6 ? { team: 'payments' } : {} });
  }

  const rows: Record<string, Record<string, string | number>> = {};
  for (const [kind, objectsText] of Object.entries(KINDS)) {
    // A provider per kind, so the first mount is a cold one for each.
    const provider = await startProvider({ env: azure.providerEnv() });
    const attributes = {
      'csi.storage.k8s.io/pod.name': 'bench-0',
      'csi.storage.k8s.io/pod.namespace': 'bench',
      useVMManagedIdentity: 'true',
      keyvaultName: 'bench-kv',
      tenantID: azure.tenantId,
      objects: objectsText,
    };
    const before = azure.keyVault.requests.length;
    const first = await provider.client.mount({ attributes });
    const firstRequests = azure.keyVault.requests.length - before;
    const warmStart = azure.keyVault.requests.length;
    const cpuStart = cpuMs(provider.pid);
    for (let i = 0; i < WARM_MOUNTS; i++) await provider.client.mount({ attributes });
    const cpuPerMount = (cpuMs(provider.pid) - cpuStart) / WARM_MOUNTS;
    const warmRequests = (azure.keyVault.requests.length - warmStart) / WARM_MOUNTS;
    rows[kind] = {
      files: first.files.length,
      'KV requests, first mount': firstRequests,
      'KV requests, warm mount': warmRequests,
      'CPU per warm mount (ms)': cpuPerMount.toFixed(2),
    };
    await provider.stop();
  }
  await azure.close();
  console.log(`Key Vault requests per mount by kind of objects entry (stand-ins, ${WARM_MOUNTS} warm mounts each)`);
  console.table(rows);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
