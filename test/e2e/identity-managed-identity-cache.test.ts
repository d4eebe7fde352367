/**
 * End to end: the credential cache with the node's managed identity. Token requests are counted at the IMDS
 * stand-in: 100 mounts of one identity cost one request, for the system-assigned identity and for a user-assigned
 * identity chosen by client id and by resource id; and two user-assigned identities with different vault access never
 * share a token, in whatever order their mounts come.
 */
import { status as grpcStatus, type ServiceError } from '@grpc/grpc-js';
import { startAzureStandIns, type AzureStandIns } from '../support/azure-standins';
import type { MountRequestInput } from '../support/driver-client';
import { registerProviderCleanup, startProvider, type ProviderProcess } from '../support/provider-process';
import { rejectionOf } from '../support/spc';

registerProviderCleanup();

const SYSTEM = 'cache-node-system';
const READER = {
  id: 'cache-uai-reader',
  clientId: '7a7a7a7a-0000-4000-8000-00000000007a',
  resourceId: '/subscriptions/sub-1/resourceGroups/rg-nodes/providers/Microsoft.ManagedIdentity/userAssignedIdentities/cache-reader',
};
const OTHER = {
  id: 'cache-uai-other',
  clientId: '7b7b7b7b-0000-4000-8000-00000000007b',
  resourceId: '/subscriptions/sub-1/resourceGroups/rg-nodes/providers/Microsoft.ManagedIdentity/userAssignedIdentities/cache-other',
};

let azure: AzureStandIns;
let provider: ProviderProcess;

function request(vault: string, userAssignedIdentityID?: string): MountRequestInput {
  return {
    attributes: {
      'csi.storage.k8s.io/pod.name': 'cache-pod',
      'csi.storage.k8s.io/pod.namespace': 'cache',
      useVMManagedIdentity: 'true',
      ...(userAssignedIdentityID ? { userAssignedIdentityID } : {}),
      keyvaultName: vault,
      tenantID: azure.tenantId,
      objects: 'array:\n  - |\n    objectName: db\n    objectType: secret\n',
    },
  };
}

async function mountError(req: MountRequestInput): Promise<ServiceError> {
  return rejectionOf(provider.client.mount(req));
}

const imdsRequests = (selector: Record<string, string | undefined>): number =>
  azure.imds.requests.filter(
    (r) =>
      r.query['client_id'] === selector['client_id'] &&
      r.query['msi_res_id'] === selector['msi_res_id'] &&
      r.query['object_id'] === undefined,
  ).length;

beforeAll(async () => {
  azure = await startAzureStandIns({ identities: { systemAssigned: { id: SYSTEM }, userAssigned: [READER, OTHER] } });
  azure.keyVault.addVault('reader-kv', { allow: [SYSTEM, READER.id] });
  azure.keyVault.addVault('other-kv', { allow: [OTHER.id] });
  azure.keyVault.setSecret('reader-kv', 'db', 'reader-value');
  azure.keyVault.setSecret('other-kv', 'db', 'other-value');
  provider = await startProvider({ env: azure.providerEnv() });
});

afterAll(async () => {
  await provider?.stop();
  await azure?.close();
});

describe('100 mounts of one managed identity cost one IMDS token request', () => {
  it.each([
    ['the system-assigned identity', undefined, {}],
    ['a user-assigned identity by client id', READER.clientId, { client_id: READER.clientId }],
    ['a user-assigned identity by resource id', READER.resourceId, { msi_res_id: READER.resourceId }],
  ])('%s (50 at once, then 50 in a row)', async (_name, selector, query) => {
    const before = imdsRequests(query);
    const results = await Promise.all(Array.from({ length: 50 }, () => provider.client.mount(request('reader-kv', selector))));
    expect(results.every((r) => r.files[0]!.contents.toString() === 'reader-value')).toBe(true);
    for (let i = 0; i < 50; i++) await provider.client.mount(request('reader-kv', selector));
    expect(imdsRequests(query) - before).toBe(1);
  });
});

describe('two user-assigned identities with different vault access', () => {
  it('each reads only its own vault, in any order, with its own token', async () => {
    expect((await provider.client.mount(request('reader-kv', READER.clientId))).files).toHaveLength(1);
    const denied = await mountError(request('reader-kv', OTHER.clientId));
    expect(denied.code).toBe(grpcStatus.PERMISSION_DENIED);
    expect(denied.details).toContain(OTHER.clientId);
    expect((await provider.client.mount(request('other-kv', OTHER.clientId))).files[0]!.contents.toString()).toBe('other-value');
    const deniedBack = await mountError(request('other-kv', READER.clientId));
    expect(deniedBack.code).toBe(grpcStatus.PERMISSION_DENIED);
    expect((await provider.client.mount(request('reader-kv', READER.clientId))).files).toHaveLength(1);
    // Key Vault saw each identity's own token on each request.
    const seen = azure.keyVault.requests.filter((r) => r.identityId !== undefined).map((r) => `${r.vault}:${r.identityId}:${r.status}`);
    expect(seen).toContain(`reader-kv:${OTHER.id}:403`);
    expect(seen).toContain(`other-kv:${READER.id}:403`);
  });
});
