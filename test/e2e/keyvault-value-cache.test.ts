/**
 * End to end: the opt-in Key Vault value cache in the real provider process, over gRPC on its unix socket, against
 * the Key Vault and IMDS stand-ins (which decide access per request, as Key Vault does). It proves what the README's
 * security review claims: two identities overlapping in time never share an answer; a role revoked mid-run, and a
 * secret disabled mid-run, are enforced once the TTL has passed; a pod's first mount always reads Key Vault; stale
 * answers stand in only after throttling and only within the grace window; without cacheTTL nothing is cached.
 */
import { status as grpcStatus } from '@grpc/grpc-js';
import { startAzureStandIns, type AzureStandIns } from '../support/azure-standins';
import type { MountRequestInput } from '../support/driver-client';
import { registerProviderCleanup, startProvider, type ProviderProcess } from '../support/provider-process';
import { rejectionOf } from '../support/spc';

registerProviderCleanup();

const READER = { id: 'vc-reader', clientId: '7c7c7c7c-0000-4000-8000-00000000007c', resourceId: '/subscriptions/s/resourceGroups/r/providers/Microsoft.ManagedIdentity/userAssignedIdentities/vc-reader' };
const OTHER = { id: 'vc-other', clientId: '7d7d7d7d-0000-4000-8000-00000000007d', resourceId: '/subscriptions/s/resourceGroups/r/providers/Microsoft.ManagedIdentity/userAssignedIdentities/vc-other' };
const TTL_MS = 1500;

let azure: AzureStandIns;
let provider: ProviderProcess;

function request(
  vault: string,
  uid: string,
  clientId: string,
  cacheTTL: string | undefined = `${TTL_MS}ms`,
  object: string | string[] = 'db',
): MountRequestInput {
  const entries = typeof object === 'string' ? [`objectName: ${object}\nobjectType: secret`] : object;
  return {
    attributes: {
      'csi.storage.k8s.io/pod.name': `pod-${uid}`,
      'csi.storage.k8s.io/pod.namespace': 'vc',
      'csi.storage.k8s.io/pod.uid': uid,
      secretProviderClass: 'vc-class',
      useVMManagedIdentity: 'true',
      userAssignedIdentityID: clientId,
      keyvaultName: vault,
      tenantID: azure.tenantId,
      ...(cacheTTL ? { cacheTTL } : {}),
      objects: `array:\n${entries.map((e) => `  - |\n${e.split('\n').map((l) => `    ${l}\n`).join('')}`).join('')}`,
    },
  };
}

const gets = (vault: string, identityId: string, path?: string): number =>
  azure.keyVault.count(
    (r) => r.vault === vault && r.identityId === identityId && r.method === 'GET' && r.status !== 401 && (path === undefined || r.path.startsWith(path)),
  );
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const content = async (req: MountRequestInput): Promise<string> => (await provider.client.mount(req)).files[0]!.contents.toString();

beforeAll(async () => {
  azure = await startAzureStandIns({ identities: { systemAssigned: { id: 'vc-system' }, userAssigned: [READER, OTHER] } });
  for (const vault of ['vc-kv', 'vc-revoke', 'vc-disable', 'vc-stale', 'vc-off', 'vc-first', 'vc-meta', 'vc-second']) {
    azure.keyVault.addVault(vault, { allow: [READER.id] });
    azure.keyVault.setSecret(vault, 'db', `${vault}-value`);
  }
  provider = await startProvider({
    env: azure.providerEnv(),
    args: ['--keyvault-cache-max-ttl=10s', '--keyvault-cache-stale-grace=1m', '-v=2'],
  });
});

afterAll(async () => {
  await provider?.stop();
  await azure?.close();
});

describe('Key Vault value cache in the provider process', () => {
  it('two identities, one denied, overlapping in time: every mount of the denied one reaches Key Vault and is refused', async () => {
    const pods = Array.from({ length: 10 }, (_, i) => i);
    for (let round = 0; round < 3; round++) {
      const results = await Promise.allSettled(
        pods.flatMap((i) => [content(request('vc-kv', `r${i}`, READER.clientId)), content(request('vc-kv', `o${i}`, OTHER.clientId))]),
      );
      results.forEach((result, j) => {
        if (j % 2 === 0) expect(result).toEqual({ status: 'fulfilled', value: 'vc-kv-value' });
        else expect(result.status === 'rejected' && (result.reason as { code: number }).code).toBe(grpcStatus.PERMISSION_DENIED);
      });
    }
    // The allowed identity: its first mounts read Key Vault (shared while in flight), its republishes were served.
    expect(gets('vc-kv', READER.id)).toBeLessThanOrEqual(pods.length);
    // The denied identity: asked Key Vault on every mount of every round.
    expect(gets('vc-kv', OTHER.id)).toBeGreaterThanOrEqual(3);
    expect(azure.keyVault.count((r) => r.vault === 'vc-kv' && r.identityId === OTHER.id && r.status === 200)).toBe(0);
  });

  it("a pod's first mount always reads Key Vault; its republish is served", async () => {
    const before = gets('vc-kv', READER.id);
    await content(request('vc-kv', 'fresh-1', READER.clientId));
    expect(gets('vc-kv', READER.id)).toBe(before + 1);
    await content(request('vc-kv', 'fresh-1', READER.clientId));
    expect(gets('vc-kv', READER.id)).toBe(before + 1);
  });

  it('a role revoked mid-run is enforced once the TTL has passed', async () => {
    expect(await content(request('vc-revoke', 'rv', READER.clientId))).toBe('vc-revoke-value');
    azure.keyVault.revoke('vc-revoke', READER.id);
    await sleep(TTL_MS + 100);
    const denied = await rejectionOf(provider.client.mount(request('vc-revoke', 'rv', READER.clientId)));
    expect(denied.code).toBe(grpcStatus.PERMISSION_DENIED);
    // And stays denied: the refusal removed the stored answer, it is not served again as stale.
    azure.keyVault.injectFaults({ status: 429, retryAfterSeconds: 0, count: 1, vault: 'vc-revoke' });
    expect((await rejectionOf(provider.client.mount(request('vc-revoke', 'rv', READER.clientId)))).code).toBe(grpcStatus.PERMISSION_DENIED);
  });

  it('a secret disabled in Key Vault stops being served once the TTL has passed', async () => {
    expect(await content(request('vc-disable', 'ds', READER.clientId))).toBe('vc-disable-value');
    azure.keyVault.setEnabled('vc-disable', 'secret', 'db', false);
    await sleep(TTL_MS + 100);
    const refused = await rejectionOf(provider.client.mount(request('vc-disable', 'ds', READER.clientId)));
    // Key Vault's 403 SecretDisabled, which the provider reports as a precondition with the fix (enable the secret).
    expect(refused.code).toBe(grpcStatus.FAILED_PRECONDITION);
    expect(refused.details).toContain('disabled');
  });

  it('after the TTL, a throttled read is answered with the last value within the grace window, logged without it', async () => {
    expect(await content(request('vc-stale', 'st', READER.clientId))).toBe('vc-stale-value');
    await sleep(TTL_MS + 100);
    const fault = azure.keyVault.injectFaults({ status: 503, ratio: 1, vault: 'vc-stale' });
    try {
      // Three republishes during the outage: each served and counted, one warning line for the object.
      for (let i = 0; i < 3; i++) expect(await content(request('vc-stale', 'st', READER.clientId))).toBe('vc-stale-value');
    } finally {
      fault.clear();
    }
    expect(fault.hits()).toBeGreaterThan(0);
    await provider.waitForLog('serving the answer this identity last read');
    expect(provider.logs()).not.toContain('vc-stale-value');
    expect(provider.logs().split('\n').filter((l) => l.includes('serving the answer this identity last read'))).toHaveLength(1);
    const body = await (await fetch(`http://127.0.0.1:${provider.prometheusPort}/metrics`)).text();
    expect(body).toMatch(/^csi_provider_azure_keyvault_cache_stale_served_total\{[^}]*\} 3$/m);
  });

  it("a pod whose first mount failed is not seen yet: its next mount reads Key Vault, only the one after it is served", async () => {
    const objects = ['objectName: db\nobjectType: secret', 'objectName: later\nobjectType: secret'];
    const req = request('vc-first', 'ff', READER.clientId, `${TTL_MS * 4}ms`, objects);
    // db is read, later is not there yet: the mount fails whole.
    expect((await rejectionOf(provider.client.mount(req))).code).toBe(grpcStatus.NOT_FOUND);
    expect(gets('vc-first', READER.id, '/secrets/db')).toBe(1);
    azure.keyVault.setSecret('vc-first', 'later', 'later-value');
    // The kubelet's retry is still the pod's first mount: db is read from Key Vault again.
    expect((await provider.client.mount(req)).files.map((f) => f.contents.toString()).sort()).toEqual(['later-value', 'vc-first-value']);
    expect(gets('vc-first', READER.id, '/secrets/db')).toBe(2);
    expect(gets('vc-first', READER.id, '/secrets/later')).toBe(2); // the 404, then the value
    // Now it succeeded: the republish is served from the cache.
    await provider.client.mount(req);
    expect(gets('vc-first', READER.id, '/secrets/db')).toBe(2);
    expect(gets('vc-first', READER.id, '/secrets/later')).toBe(2);
  });

  it("a republish served from the cache writes the same files: tags and attributes, and an object of another vault", async () => {
    azure.keyVault.setSecret('vc-meta', 'tagged', 'tagged-value', { tags: { team: 'payments', owner: 'ops' }, created: 1_700_000_000, expires: 1_900_000_000 });
    azure.keyVault.setSecret('vc-second', 'db', 'second-vault-value');
    const req = request('vc-meta', 'mt', READER.clientId, `${TTL_MS * 4}ms`, [
      'objectName: tagged\nobjectType: secret\nwriteTags: "true"\nwriteAttributes: "true"',
      'objectName: db\nobjectType: secret',
      'objectName: db\nobjectType: secret\nobjectAlias: second-db\nkeyvaultName: vc-second',
    ]);
    const first = await provider.client.mount(req);
    const readsAfterFirst = [gets('vc-meta', READER.id), gets('vc-second', READER.id)];
    expect(readsAfterFirst).toEqual([2, 1]);
    const again = await provider.client.mount(req);
    expect([gets('vc-meta', READER.id), gets('vc-second', READER.id)]).toEqual(readsAfterFirst);
    const files = (r: typeof first): Array<[string, number, string]> => r.files.map((f) => [f.path, f.mode, f.contents.toString('base64')]);
    expect(files(again)).toEqual(files(first));
    expect(again.objectVersion).toEqual(first.objectVersion);
    const text = (path: string): string => again.files.find((f) => f.path === path)!.contents.toString();
    expect(text('tagged.tags.json')).toBe('{"owner":"ops","team":"payments"}\n');
    expect(text('tagged.attributes.json')).toContain('"created":"2023-11-14T22:13:20.000Z"');
    expect(text('db')).toBe('vc-meta-value');
    expect(text('second-db')).toBe('second-vault-value');
  });

  it('a class without cacheTTL reads Key Vault on every mount, as without the cache', async () => {
    const before = gets('vc-off', READER.id);
    for (let i = 0; i < 3; i++) await content(request('vc-off', 'off', READER.clientId, '')); // same pod: republishes
    expect(gets('vc-off', READER.id)).toBe(before + 3);
  });

  it('a cacheTTL above the node maximum fails the mount before any request', async () => {
    const before = azure.keyVault.requests.length;
    const refused = await rejectionOf(provider.client.mount(request('vc-off', 'big', READER.clientId, '1h')));
    expect(refused.code).toBe(grpcStatus.INVALID_ARGUMENT);
    expect(refused.details).toContain('cacheTTL');
    expect(azure.keyVault.requests.length).toBe(before);
  });
});

describe('with the cache off (no --keyvault-cache-max-ttl, the default)', () => {
  let plain: ProviderProcess;

  beforeAll(async () => {
    plain = await startProvider({ env: azure.providerEnv() });
  });

  afterAll(async () => {
    await plain?.stop();
  });

  it('a class with cacheTTL mounts exactly as one without it: every mount reads Key Vault, same response, no cache series', async () => {
    const mountWith = (cacheTTL: string): Promise<Awaited<ReturnType<ProviderProcess['client']['mount']>>> =>
      plain.client.mount(request('vc-off', 'off-node', READER.clientId, cacheTTL, ['objectName: db\nobjectType: secret\nwriteTags: "true"']));
    const before = gets('vc-off', READER.id);
    const withTtl = [await mountWith('2m'), await mountWith('2m'), await mountWith('2m')];
    const without = await mountWith('');
    expect(gets('vc-off', READER.id)).toBe(before + 4);
    for (const result of withTtl) {
      expect(result.files).toEqual(without.files);
      expect(result.objectVersion).toEqual(without.objectVersion);
    }
    await plain.waitForLog('cacheTTL is ignored: the Key Vault value cache is off on this node');
    const body = await (await fetch(`http://127.0.0.1:${plain.prometheusPort}/metrics`)).text();
    expect(body).not.toContain('keyvault_cache');
    expect(body).not.toContain('keyvault_value');
  });
});
