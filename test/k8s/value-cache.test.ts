/**
 * The Key Vault value cache through the real driver, both generations, as rotation really drives it: v1.6.0's
 * kubelet republish and v1.5.6's rotation reconciler. A pod's first mount reads Key Vault; its rotation mounts are
 * answered from the cache (no Key Vault request) and leave the very same files on the tmpfs (tags file included);
 * another pod's first mount on the same node reads Key Vault again.
 */
import { registerProviderCleanup } from '../support/provider-process';
import { objects } from '../support/spc';
import { DRIVER_VERSIONS, type DriverVersion } from './support/components';
import { startStack, type Stack } from './support/stack';
import { eventually, sleep, shortVersion } from './support/waiting';

registerProviderCleanup();

const SYSTEM = 'node-system-identity';
const NAMESPACE = 'value-cache';
const POLL = 2;

let stack: Stack;
const vaultOf = (version: DriverVersion): string => `k8s-cache-${shortVersion(version)}`;

beforeAll(async () => {
  stack = await startStack({
    identities: { systemAssigned: { id: SYSTEM } },
    rotationPollInterval: `${POLL}s`,
    providerArgs: ['--keyvault-cache-max-ttl=5m', '-v=2'],
  });
  const kv = stack.azure.keyVault;
  for (const version of DRIVER_VERSIONS) {
    kv.addVault(vaultOf(version), { allow: [SYSTEM] });
    kv.setSecret(vaultOf(version), 'db', 'db-value', { tags: { team: 'payments' } });
    kv.setSecret(vaultOf(version), 'api-key', 'api-key-value');
    await stack.secretProviderClass(NAMESPACE, `cached-${shortVersion(version)}`, {
      useVMManagedIdentity: 'true',
      keyvaultName: vaultOf(version),
      tenantID: stack.azure.tenantId,
      cacheTTL: '5m',
      objects: objects(['objectName: db\nobjectType: secret\nwriteTags: "true"', 'objectName: api-key\nobjectType: secret']),
    });
  }
}, 300_000);

afterAll(async () => {
  await stack?.stop();
});

describe.each(DRIVER_VERSIONS)('driver %s', (version) => {
  const pod = `cached-${shortVersion(version)}`;
  const gets = (): number =>
    stack.azure.keyVault.count((r) => r.vault === vaultOf(version) && r.method === 'GET' && r.status !== 401);
  const mountsOf = (name: string, since: number): number =>
    stack.nodes[version].provider
      .logs()
      .slice(since)
      .split('\n')
      .filter((l) => l.includes('mount succeeded') && l.includes(name)).length;

  beforeAll(async () => {
    await stack.pod(version, NAMESPACE, pod, { spc: pod });
    await stack.nodes[version].kubelet.publish(NAMESPACE, pod);
  });

  it("the first mount reads Key Vault; rotation mounts are answered from the cache with the same files", async () => {
    const first = await stack.readVolume(version, NAMESPACE, pod);
    expect(first.get('db')!.contents.toString()).toBe('db-value');
    expect(first.get('db.tags.json')!.contents.toString()).toBe('{"team":"payments"}\n');
    expect(gets()).toBe(2);
    const logsBefore = stack.nodes[version].provider.logs().length;
    if (version === 'v1.6.0') {
      // kubelet's republish, twice; the driver mounts afresh once the poll interval since the last mount has passed.
      for (let i = 0; i < 2; i++) {
        await sleep(POLL * 1000 + 500);
        await stack.nodes[version].kubelet.publish(NAMESPACE, pod);
      }
    }
    await eventually('two rotation mounts', async () => (mountsOf(pod, logsBefore) >= 2 ? true : undefined));
    expect(gets()).toBe(2);
    expect(await stack.readVolume(version, NAMESPACE, pod)).toEqual(first);
  });

  it("another pod's first mount on the node reads Key Vault", async () => {
    const other = `${pod}-second`;
    const before = gets();
    await stack.pod(version, NAMESPACE, other, { spc: pod });
    await stack.nodes[version].kubelet.publish(NAMESPACE, other);
    expect((await stack.readVolume(version, NAMESPACE, other)).get('api-key')!.contents.toString()).toBe('api-key-value');
    expect(gets()).toBe(before + 2);
  });
});
