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

function request(vault: string, uid: string, clientId: string, cacheTTL: string | undefined = `${TTL_MS}ms`, object = 'db'): MountRequestInput {
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
      objects: `array:\n  - |\n    objectName: ${object}\n    objectType: secret\n`,
    },
  };
}

const gets = (vault: string, identityId: string): number =>
  azure.keyVault.count((r) => r.vault === vault && r.identityId === identityId && r.method === 'GET' && r.status !== 401);
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const content = async (req: MountRequestInput): Promise<string> => (await provider.client.mount(req)).files[0]!.contents.toString();

beforeAll(async () => {
  azure = await startAzureStandIns({ identities: { systemAssigned: { id: 'vc-system' }, userAssigned: [READER, OTHER] } });
  for (const vault of ['vc-kv', 'vc-revoke', 'vc-disable', 'vc-stale', 'vc-off']) {
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
      expect(await content(request('vc-stale', 'st', READER.clientId))).toBe('vc-stale-value');
    } finally {
      fault.clear();
    }
    expect(fault.hits()).toBeGreaterThan(0);
    await provider.waitForLog('serving the answer this identity last read');
    expect(provider.logs()).not.toContain('vc-stale-value');
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
