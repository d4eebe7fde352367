/**
 * Every identity mode through the real driver, both generations (v1.6.0 and v1.5.6): pods and classes created
 * through the real API server, kubelet's NodePublishVolume on the driver's socket, the files read from the tmpfs the
 * driver mounted, and the SecretProviderClassPodStatus the driver recorded. Service account tokens are the API
 * server's own, bound to the pod.
 */
import type { ServiceError } from '@grpc/grpc-js';
import { existsSync } from 'node:fs';
import { registerProviderCleanup } from '../support/provider-process';
import { objects } from '../support/spc';
import { DRIVER_VERSIONS, type DriverVersion } from './support/components';
import type { KubeObject } from './support/kube';
import { NODES, startStack, type Stack } from './support/stack';

registerProviderCleanup();

const VAULT = 'k8s-identities-kv';
const LOCKED_VAULT = 'k8s-locked-kv';
const VALUE = 'canary-k8s-identity-value-5d1e';
const UAMI = { id: 'uami-identity', clientId: 'a1a1a1a1-0000-4000-8000-0000000000a1', resourceId: '/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/kv-reader' };
const WI = { clientId: 'b2b2b2b2-0000-4000-8000-0000000000b2', identityId: 'wi-identity' };
const SP = { clientId: 'c3c3c3c3-0000-4000-8000-0000000000c3', identityId: 'sp-identity', secret: 'canary-sp-client-secret-77a0' };
const PI = { clientId: 'd4d4d4d4-0000-4000-8000-0000000000d4', identityId: 'pi-identity' };
const TP = { clientId: 'e5e5e5e5-0000-4000-8000-0000000000e5', identityId: 'tp-identity' };
const NAMESPACE = 'shop';

const podName = (mode: string, version: DriverVersion): string => `${mode}-${version.replace(/\./g, '-').slice(1)}`;

let stack: Stack;

beforeAll(async () => {
  stack = await startStack({
    identities: { systemAssigned: { id: 'node-system-identity' }, userAssigned: [UAMI] },
    applications: (tenantId, issuer) => [
      { ...WI, tenantId, federatedCredentials: [{ issuer, subject: `system:serviceaccount:${NAMESPACE}:wi-sa` }] },
      { clientId: SP.clientId, identityId: SP.identityId, tenantId, secrets: [SP.secret] },
    ],
    podIdentities: DRIVER_VERSIONS.map((v) => ({ namespace: NAMESPACE, pod: podName('pod-identity', v), ...PI })),
    bindings: (tenantId) => [{ namespace: NAMESPACE, serviceAccount: 'tp-sa', ...TP, tenantId }],
  });
  stack.azure.keyVault.addVault(VAULT, { allow: ['node-system-identity', UAMI.id, WI.identityId, SP.identityId, PI.identityId, TP.identityId] });
  stack.azure.keyVault.setSecret(VAULT, 'db', VALUE);
  const base = { keyvaultName: VAULT, tenantID: stack.azure.tenantId, objects: objects(['objectName: db\nobjectType: secret']) };
  await stack.secretProviderClass(NAMESPACE, 'system-assigned', { ...base, useVMManagedIdentity: 'true' });
  await stack.secretProviderClass(NAMESPACE, 'user-assigned', { ...base, useVMManagedIdentity: 'true', userAssignedIdentityID: UAMI.clientId });
  await stack.secretProviderClass(NAMESPACE, 'workload-identity', { ...base, clientID: WI.clientId });
  await stack.secretProviderClass(NAMESPACE, 'service-principal', base);
  await stack.secretProviderClass(NAMESPACE, 'pod-identity', { ...base, usePodIdentity: 'true' });
  await stack.secretProviderClass(NAMESPACE, 'token-proxy', { ...base, useAzureTokenProxy: 'true', clientID: TP.clientId });
  stack.azure.keyVault.addVault(LOCKED_VAULT, { allow: [] });
  await stack.secretProviderClass(NAMESPACE, 'no-access', { ...base, keyvaultName: LOCKED_VAULT, useVMManagedIdentity: 'true' });
  await stack.secretProviderClass(NAMESPACE, 'missing-object', { ...base, useVMManagedIdentity: 'true', objects: objects(['objectName: no-such-secret\nobjectType: secret']) });
  await stack.secretProviderClass(NAMESPACE, 'bad-parameter', { ...base, useVMManagedIdentity: 'true', objects: objects(['objectName: db\nobjectType: no-such-type']) });
  await stack.secret(NAMESPACE, 'sp-credentials', { clientid: SP.clientId, clientsecret: SP.secret });
}, 300_000);

afterAll(async () => {
  await stack?.stop();
});

const MODES: Array<{ mode: string; spc: string; serviceAccount?: string; secretRef?: string; identityId: string }> = [
  { mode: 'system-assigned', spc: 'system-assigned', identityId: 'node-system-identity' },
  { mode: 'user-assigned', spc: 'user-assigned', identityId: UAMI.id },
  { mode: 'workload-identity', spc: 'workload-identity', serviceAccount: 'wi-sa', identityId: WI.identityId },
  { mode: 'service-principal', spc: 'service-principal', secretRef: 'sp-credentials', identityId: SP.identityId },
  { mode: 'pod-identity', spc: 'pod-identity', identityId: PI.identityId },
  { mode: 'token-proxy', spc: 'token-proxy', serviceAccount: 'tp-sa', identityId: TP.identityId },
];

interface PodStatus extends KubeObject {
  status: { podName: string; secretProviderClassName: string; mounted: boolean; targetPath: string; objects?: Array<{ id: string; version: string }> };
}

/** Neither a service account token (whole or its signature) nor the client secret is in the provider's log. */
function expectNoTokenInLogs(version: DriverVersion, tokensJson: string | undefined): void {
  const logs = stack.nodes[version].provider.logs();
  const tokens = tokensJson ? Object.values(JSON.parse(tokensJson) as Record<string, { token: string }>).map((t) => t.token) : [];
  for (const token of tokens) {
    expect(logs).not.toContain(token);
    expect(logs).not.toContain(token.split('.')[2]!);
  }
  expect(logs).not.toContain(SP.secret);
}

describe.each(DRIVER_VERSIONS)('driver %s', (version) => {
  it('registers as the driver of that version', async () => {
    const info = await stack.nodes[version].kubelet.pluginInfo();
    expect(info).toEqual({ name: 'secrets-store.csi.k8s.io', vendor_version: version });
  });

  it.each(MODES)('mounts with $mode: the files on the tmpfs and the pod status the driver recorded', async ({ mode, spc, serviceAccount, secretRef, identityId }) => {
    const name = podName(mode, version);
    const pod = await stack.pod(version, NAMESPACE, name, { spc, ...(serviceAccount ? { serviceAccount } : {}), ...(secretRef ? { secretRef } : {}) });
    const sent = await stack.nodes[version].kubelet.publish(NAMESPACE, name);

    const files = await stack.readVolume(version, NAMESPACE, name);
    expect([...files.keys()]).toEqual(['db']);
    expect(files.get('db')!.contents.toString()).toBe(VALUE);
    expect(files.get('db')!.mode).toBe(0o644);
    const read = stack.azure.keyVault.requests.filter((r) => r.vault === VAULT && r.status === 200).at(-1)!;
    expect(read.identityId).toBe(identityId);

    const statuses = await stack.cluster.kube.list<PodStatus>('secrets-store.csi.x-k8s.io/v1', 'SecretProviderClassPodStatus', NAMESPACE);
    const status = statuses.find((s) => s.status.podName === name)!;
    expect(status.metadata.name).toBe(`${name}-${NAMESPACE}-${spc}`);
    expect(status.metadata['labels']).toMatchObject({ 'internal.secrets-store.csi.k8s.io/node-name': NODES[version] });
    expect(status.status).toMatchObject({ secretProviderClassName: spc, mounted: true, targetPath: sent.targetPath });
    expect(status.status.objects).toEqual([{ id: 'secret/db', version: expect.stringMatching(/^[0-9a-f]{32}$/) }]);
    expect((status.metadata['ownerReferences'] as Array<{ uid: string }>)[0]!.uid).toBe(pod.metadata.uid);

    expectNoTokenInLogs(version, sent.volumeContext['csi.storage.k8s.io/serviceAccount.tokens']);

    await stack.nodes[version].kubelet.unpublish(NAMESPACE, name);
    expect(existsSync(sent.targetPath)).toBe(false);
  });

  it('sends secrets as null for a volume without nodePublishSecretRef, and the provider mounts it', async () => {
    const name = podName('null-secrets', version);
    await stack.pod(version, NAMESPACE, name, { spc: 'system-assigned' });
    const sent = await stack.nodes[version].kubelet.publish(NAMESPACE, name);
    expect(sent.secrets).toEqual({});
    const files = await stack.readVolume(version, NAMESPACE, name);
    expect(files.get('db')!.contents.toString()).toBe(VALUE);
  });

  it.each([
    { name: 'refused', spc: 'no-access', code: /PermissionDenied|permission|403/i, fragments: [LOCKED_VAULT] },
    { name: 'missing', spc: 'missing-object', code: /NotFound|not found|404/i, fragments: ['no-such-secret', VAULT] },
    { name: 'bad-parameter', spc: 'bad-parameter', code: /InvalidArgument/i, fragments: ['objectType', 'no-such-type'] },
  ])('a $name mount reaches kubelet with the provider\'s message intact', async ({ name, spc, code, fragments }) => {
    const pod = podName(name, version);
    await stack.pod(version, NAMESPACE, pod, { spc });
    const err = (await stack.nodes[version].kubelet.publish(NAMESPACE, pod).then(() => undefined, (e: unknown) => e)) as ServiceError;
    expect(err).toBeDefined();
    expect(err.details).toContain(`failed to mount secrets store objects for pod ${NAMESPACE}/${pod}`);
    expect(err.details).toMatch(code);
    for (const fragment of fragments) expect(err.details).toContain(fragment);
    expect(err.details).not.toContain(VALUE);
  });
});

describe('CSIDriver serviceAccountTokenInSecrets (Kubernetes >= 1.35): kubelet passes the tokens in secrets', () => {
  beforeAll(async () => {
    await stack.cluster.installCsiDriver({ serviceAccountTokenInSecrets: true });
  });

  afterAll(async () => {
    await stack.cluster.installCsiDriver();
  });

  describe.each(DRIVER_VERSIONS)('driver %s', (version) => {
    it.each(MODES.filter((m) => ['workload-identity', 'token-proxy', 'service-principal'].includes(m.mode)))(
      'mounts with $mode; the tokens never reach the provider\'s log',
      async ({ mode, spc, serviceAccount, secretRef, identityId }) => {
        const name = podName(`${mode}-in-secrets`, version);
        await stack.pod(version, NAMESPACE, name, { spc, ...(serviceAccount ? { serviceAccount } : {}), ...(secretRef ? { secretRef } : {}) });
        const sent = await stack.nodes[version].kubelet.publish(NAMESPACE, name);
        expect(sent.volumeContext['csi.storage.k8s.io/serviceAccount.tokens']).toBeUndefined();
        const tokens = JSON.parse(sent.secrets['csi.storage.k8s.io/serviceAccount.tokens']!) as Record<string, { token: string }>;
        expect(Object.keys(tokens).sort()).toEqual(['api://AKSIdentityBinding', 'api://AzureADTokenExchange']);

        const files = await stack.readVolume(version, NAMESPACE, name);
        expect(files.get('db')!.contents.toString()).toBe(VALUE);
        expect(stack.azure.keyVault.requests.filter((r) => r.vault === VAULT && r.status === 200).at(-1)!.identityId).toBe(identityId);
        expectNoTokenInLogs(version, sent.secrets['csi.storage.k8s.io/serviceAccount.tokens']);
      },
    );
  });
});
