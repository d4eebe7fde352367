/**
 * End to end: pod identity (aad-pod-identity). The provider asks NMI at localhost:2579 with the pod's name
 * and namespace; NMI decides the identity. This is the only test file that binds 127.0.0.1:2579 (NMI's fixed port),
 * so parallel test workers never collide on it.
 */
import { status as grpcStatus, type ServiceError } from '@grpc/grpc-js';
import { startAzureStandIns, type AzureStandIns } from '../support/azure-standins';
import type { MountRequestInput } from '../support/driver-client';
import { startNmi, type NmiStandIn } from '../support/nmi';
import { registerProviderCleanup, startProvider, type ProviderProcess } from '../support/provider-process';
import { rejectionOf } from '../support/spc';

registerProviderCleanup();

const VALUE = 'canary-pod-identity-value-8e2b';
let azure: AzureStandIns;
let nmi: NmiStandIn;
let provider: ProviderProcess;

function request(pod: string, parameters: Record<string, string | undefined> = {}): MountRequestInput {
  const attributes: Record<string, string> = {
    'csi.storage.k8s.io/pod.name': pod,
    'csi.storage.k8s.io/pod.namespace': 'legacy',
    'csi.storage.k8s.io/pod.uid': `uid-${pod}`,
    'csi.storage.k8s.io/serviceAccount.name': 'default',
    secretProviderClass: 'legacy-class',
    usePodIdentity: 'true',
    keyvaultName: 'pi-kv',
    tenantID: azure.tenantId,
    objects: 'array:\n  - |\n    objectName: db\n    objectType: secret\n',
  };
  for (const [k, v] of Object.entries(parameters)) {
    if (v === undefined) delete attributes[k];
    else attributes[k] = v;
  }
  return { attributes };
}

async function mountError(req: MountRequestInput, deadlineMs?: number): Promise<ServiceError> {
  return rejectionOf(provider.client.mount(req, deadlineMs ? { deadlineMs } : {}));
}

beforeAll(async () => {
  azure = await startAzureStandIns();
  nmi = await startNmi({
    tokens: azure.tokens,
    tenantId: azure.tenantId,
    assignments: [
      { namespace: 'legacy', pod: 'reader-0', identityId: 'pi-reader', clientId: 'f1f1f1f1-0000-4000-8000-0000000000f1' },
      { namespace: 'legacy', pod: 'reader-1', identityId: 'pi-reader', clientId: 'f1f1f1f1-0000-4000-8000-0000000000f1' },
      { namespace: 'legacy', pod: 'outsider-0', identityId: 'pi-outsider', clientId: 'f2f2f2f2-0000-4000-8000-0000000000f2' },
    ],
  });
  azure.keyVault.addVault('pi-kv', { allow: ['pi-reader'] });
  azure.keyVault.setSecret('pi-kv', 'db', VALUE);
  provider = await startProvider({ env: azure.providerEnv(), args: ['-v=5'] });
});

afterAll(async () => {
  await provider?.stop();
  await nmi?.close();
  await azure?.close();
});

describe('pod identity (usePodIdentity, NMI on localhost:2579)', () => {
  it('asks NMI with the podname and podns headers for the cloud\'s Key Vault resource', async () => {
    const result = await provider.client.mount(request('reader-0'));
    expect(result.files[0]!.contents.toString()).toBe(VALUE);
    expect(nmi.requests.at(-1)).toMatchObject({
      path: '/host/token/',
      podname: 'reader-0',
      podns: 'legacy',
      resource: 'https://vault.azure.net',
      status: 200,
      identityId: 'pi-reader',
    });
    // IMDS is never asked in this mode.
    expect(azure.imds.tokenRequestCount()).toBe(0);
  });

  it('100 mounts of the same pod (50 at once, 50 in a row) cost one NMI request', async () => {
    const before = nmi.tokenRequestCount({ podname: 'reader-1' });
    const results = await Promise.all(Array.from({ length: 50 }, () => provider.client.mount(request('reader-1'))));
    expect(results.every((r) => r.files.length === 1)).toBe(true);
    for (let i = 0; i < 50; i++) await provider.client.mount(request('reader-1'));
    expect(nmi.tokenRequestCount({ podname: 'reader-1' }) - before).toBe(1);
  });

  it('another pod never rides on a token NMI gave a pod before it: NMI decides, and Key Vault refuses the outsider', async () => {
    await provider.client.mount(request('reader-0'));
    const err = await mountError(request('outsider-0'));
    expect(err.code).toBe(grpcStatus.PERMISSION_DENIED);
    expect(nmi.requests.at(-1)).toMatchObject({ podname: 'outsider-0', identityId: 'pi-outsider' });
    expect(err.details).toContain('legacy/outsider-0');
  });

  it('a pod without an identity binding fails with NMI\'s own answer relayed and what to check', async () => {
    const err = await mountError(request('unbound-0'));
    expect(err.code).toBe(grpcStatus.UNAUTHENTICATED);
    expect(err.details).toContain('NMI at http://localhost:2579 answered 404');
    expect(err.details).toContain('getting assigned identities for pod legacy/unbound-0 in CREATED state failed');
    expect(err.details).toContain('AzureIdentityBinding');
    expect(err.details).toContain('secret "db"');
  });

  it('a pod re-created under the same name (new uid) asks NMI again', async () => {
    const before = nmi.tokenRequestCount({ podname: 'reader-0' });
    await provider.client.mount(request('reader-0', { 'csi.storage.k8s.io/pod.uid': 'uid-reader-0-recreated' }));
    expect(nmi.tokenRequestCount({ podname: 'reader-0' }) - before).toBe(1);
  });

  it('a slow NMI is cut off by the mount\'s deadline, and the provider keeps serving', async () => {
    nmi.delayMs = 10_000;
    try {
      const started = Date.now();
      const err = await mountError(request('reader-slow', { 'csi.storage.k8s.io/pod.uid': 'uid-slow' }), 1500);
      expect([grpcStatus.DEADLINE_EXCEEDED, grpcStatus.CANCELLED]).toContain(err.code);
      expect(Date.now() - started).toBeLessThan(5000);
    } finally {
      nmi.delayMs = 0;
    }
    expect((await provider.client.mount(request('reader-0'))).files).toHaveLength(1);
  });

  it('never logs a token (canaries)', () => {
    const logs = provider.logs();
    expect(logs).not.toContain(VALUE);
    for (const token of azure.tokens.all().map((t) => t.token)) expect(logs).not.toContain(token);
  });
});

describe('pod identity when NMI is not running', () => {
  it('fails with Unavailable saying that nothing answers on localhost:2579', async () => {
    await nmi.close();
    const err = await mountError(request('reader-9', { 'csi.storage.k8s.io/pod.uid': 'uid-no-nmi' }));
    expect(err.code).toBe(grpcStatus.UNAVAILABLE);
    expect(err.details).toContain('could not reach NMI at http://localhost:2579 (ECONNREFUSED)');
    expect(err.details).toContain('aad-pod-identity');
  });
});
