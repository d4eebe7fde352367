/**
 * The provider's own Kubernetes API features against the real kube-apiserver, through the real driver v1.6.0 and
 * kubelet's NodePublishVolume, with exactly the RBAC the chart grants: the chart is rendered with the features on,
 * its ServiceAccount, ClusterRole and ClusterRoleBinding are created in the API server, and the provider
 * authenticates with a token of that service account (through --kubeconfig, as out of cluster). The API server's
 * audit log counts the calls the provider makes per mount.
 */
import type { ServiceError } from '@grpc/grpc-js';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { join } from 'node:path';
import { renderChart, type K8sObject } from '../deploy/support/helm';
import { repoRoot } from '../support/driver-client';
import { registerProviderCleanup } from '../support/provider-process';
import { objects } from '../support/spc';
import type { Cluster } from './support/cluster';
import type { KubeObject } from './support/kube';
import { startStack, type Stack } from './support/stack';
import { eventually, sleep } from './support/waiting';

registerProviderCleanup();

const VERSION = 'v1.6.0' as const;
const VAULT = 'k8s-kube-api-kv';
const VALUE = 'canary-kube-api-value-3c9e';
const SYSTEM = 'node-system-identity';
const WI = { clientId: 'f6f6f6f6-0000-4000-8000-0000000000f6', identityId: 'sa-annotated-identity' };
const LABEL_KEY = 'csi-provider-azure/node-identity';
const LABEL = `${LABEL_KEY}=allowed`;
const RELEASE_NAMESPACE = 'kube-system';
const PROVIDER_SA = 'csi-secrets-store-provider-azure';
const PROVIDER_USER = `system:serviceaccount:${RELEASE_NAMESPACE}:${PROVIDER_SA}`;
const POLL_MS = 1000;

let stack: Stack;
let rbac: K8sObject[] = [];

/** The chart rendered with every API feature on: its ServiceAccount and RBAC, created in the API server. */
async function grantChartRbac(cluster: Cluster): Promise<string[]> {
  const { objects: rendered } = await renderChart({
    releaseName: 'csi',
    namespace: RELEASE_NAMESPACE,
    values: {
      kubernetesApi: {
        rotationFailureEvents: true,
        workloadIdentityFromServiceAccount: true,
        nodeIdentityPolicy: { policy: 'deny', allowedNamespaceLabel: LABEL },
      },
    },
  });
  rbac = rendered.filter((o) => ['ServiceAccount', 'ClusterRole', 'ClusterRoleBinding'].includes(o.kind));
  for (const object of rbac) await cluster.kube.create({ ...object, metadata: { ...object.metadata, namespace: object.metadata.namespace ?? RELEASE_NAMESPACE } } as KubeObject);
  const daemonSet = rendered.find((o) => o.kind === 'DaemonSet' && o.metadata.name.endsWith('provider-azure')) as K8sObject & {
    spec: { template: { spec: { containers: Array<{ args: string[] }> } } };
  };
  const { status } = await cluster.kube.request<{ status: { token: string } }>(
    'POST',
    `/api/v1/namespaces/${RELEASE_NAMESPACE}/serviceaccounts/${PROVIDER_SA}/token`,
    { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: 3600 } },
  );
  const kubeconfig = join(cluster.dir, 'provider-kubeconfig');
  writeFileSync(
    kubeconfig,
    [
      'apiVersion: v1',
      'kind: Config',
      `clusters:\n- name: test\n  cluster:\n    server: ${cluster.kube.server}\n    certificate-authority: ${cluster.pki.writeCaFile(cluster.dir)}`,
      `users:\n- name: provider\n  user:\n    token: ${status.token}`,
      'contexts:\n- name: test\n  context:\n    cluster: test\n    user: provider',
      'current-context: test',
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  // The flags exactly as the chart passes them for these values.
  const chartFlags = daemonSet.spec.template.spec.containers[0]!.args.filter((a) => /^--(rotation-failure|workload-identity|node-identity)/.test(a));
  expect(chartFlags).toHaveLength(4);
  return ['--kubeconfig', kubeconfig, ...chartFlags];
}

function spawnAsync(command: string, args: string[], env: Record<string, string>): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    child.once('error', reject);
    child.once('exit', (status) => resolve({ status, stdout, stderr }));
  });
}

/** The provider's calls recorded by the API server's audit log, as "verb resource". */
function providerCalls(): string[] {
  return readFileSync(stack.cluster.auditLog, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as { user?: { username?: string }; verb: string; objectRef?: { resource?: string } })
    .filter((entry) => entry.user?.username === PROVIDER_USER)
    .map((entry) => `${entry.verb} ${entry.objectRef?.resource ?? ''}`);
}

/** What the provider called at the API server during `action`. */
async function callsDuring(action: () => Promise<unknown>): Promise<string[]> {
  const before = providerCalls().length;
  await action();
  return providerCalls().slice(before);
}

const publish = (namespace: string, pod: string): Promise<unknown> => stack.nodes[VERSION].kubelet.publish(namespace, pod);
const rejection = (call: Promise<unknown>): Promise<ServiceError> =>
  call.then(
    () => {
      throw new Error('expected the mount to fail');
    },
    (err: ServiceError) => err,
  );
const logs = (): string => stack.nodes[VERSION].provider.logs();
const count = (text: string, needle: string): number => text.split(needle).length - 1;

interface EventObject extends KubeObject {
  involvedObject: { kind: string; name: string; namespace: string; uid: string };
  reason: string;
  message: string;
  type: string;
  count: number;
  source: { component: string };
}

async function rotationEvents(namespace: string, uid: string): Promise<EventObject[]> {
  const events = await stack.cluster.kube.list<EventObject>('v1', 'Event', namespace);
  return events.filter((e) => e.involvedObject.uid === uid && e.reason === 'SecretRotationFailed');
}

async function metrics(): Promise<string> {
  const port = stack.nodes[VERSION].provider.prometheusPort!;
  return new Promise((resolve, reject) => {
    httpGet({ host: '127.0.0.1', port, path: '/metrics' }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve(body));
    }).on('error', reject);
  });
}

/** Mounts a pod for the first time on the node. */
async function newPod(namespace: string, name: string, spc: string, serviceAccount?: string): Promise<KubeObject> {
  return stack.pod(VERSION, namespace, name, { spc, ...(serviceAccount ? { serviceAccount } : {}) });
}

/** The API calls of each kind of mount, for the closing table. */
const perMount: Record<string, string[]> = {};

beforeAll(async () => {
  stack = await startStack({
    versions: [VERSION],
    identities: { systemAssigned: { id: SYSTEM } },
    applications: (tenantId, issuer) => [
      { ...WI, tenantId, federatedCredentials: [{ issuer, subject: 'system:serviceaccount:shop:annotated' }] },
    ],
    rotationPollInterval: `${POLL_MS / 1000}s`,
    providerArgsFor: grantChartRbac,
  });
  const { kube } = stack.cluster;
  stack.azure.keyVault.addVault(VAULT, { allow: [SYSTEM, WI.identityId] });
  stack.azure.keyVault.setSecret(VAULT, 'db', VALUE);
  for (const name of ['trusted', 'trusted-late']) {
    await kube.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels: { [LABEL_KEY]: 'allowed' } } });
  }
  const base = { keyvaultName: VAULT, objects: objects(['objectName: db\nobjectType: secret']) };
  const node = { ...base, tenantID: stack.azure.tenantId, useVMManagedIdentity: 'true' };
  await stack.secretProviderClass('trusted', 'node', node);
  await stack.secretProviderClass('trusted', 'missing', { ...node, objects: objects(['objectName: no-such-secret\nobjectType: secret']) });
  await stack.secretProviderClass('trusted-late', 'node', node);
  await stack.secretProviderClass('shop', 'node', node);
  await stack.secretProviderClass('shop', 'from-service-account', base);
  await stack.secretProviderClass('shop', 'conflict', { ...base, tenantID: '11111111-2222-4333-8444-555555555555' });
  await stack.serviceAccount('shop', 'annotated');
  await kube.patch('v1', 'ServiceAccount', 'annotated', 'shop', {
    metadata: { annotations: { 'azure.workload.identity/client-id': WI.clientId, 'azure.workload.identity/tenant-id': stack.azure.tenantId } },
  });
}, 300_000);

afterAll(async () => {
  await stack?.stop();
});

describe('node identity policy (deny, except in namespaces labelled ' + LABEL + ')', () => {
  it('refuses useVMManagedIdentity in an unlabelled namespace, saying why and what to use instead', async () => {
    await newPod('shop', 'node-refused', 'node');
    const err = await rejection(publish('shop', 'node-refused'));
    expect(err.details).toContain("useVMManagedIdentity is refused in namespace shop by this cluster's node identity policy");
    expect(err.details).toContain(`allowed only in namespaces labelled ${LABEL}`);
    expect(err.details).toContain('use workload identity instead');
    expect(stack.azure.keyVault.count()).toBe(0);
  });

  it('allows it in a labelled namespace, and logs once per class that every pod on the node can use the identity', async () => {
    await newPod('trusted', 'node-a', 'node');
    await newPod('trusted', 'node-b', 'node');
    perMount['node identity, namespace not cached (first mount)'] = await callsDuring(() => publish('trusted', 'node-a'));
    perMount['node identity, namespace cached (30 s)'] = await callsDuring(() => publish('trusted', 'node-b'));
    expect(perMount['node identity, namespace not cached (first mount)']).toEqual(['get namespaces']);
    expect(perMount['node identity, namespace cached (30 s)']).toEqual([]);
    expect((await stack.readVolume(VERSION, 'trusted', 'node-a')).get('db')!.contents.toString()).toBe(VALUE);
    expect(count(logs(), 'every pod on this node can use')).toBe(1);
  });
});

describe('workload identity from the service account annotations', () => {
  it('a class without clientID and tenantID takes both from the pod\'s service account', async () => {
    await newPod('shop', 'annotated-a', 'from-service-account', 'annotated');
    await newPod('shop', 'annotated-b', 'from-service-account', 'annotated');
    perMount['workload identity from the service account, not cached'] = await callsDuring(() => publish('shop', 'annotated-a'));
    perMount['workload identity from the service account, cached (60 s)'] = await callsDuring(() => publish('shop', 'annotated-b'));
    expect(perMount['workload identity from the service account, not cached']).toEqual(['get serviceaccounts']);
    expect(perMount['workload identity from the service account, cached (60 s)']).toEqual([]);
    expect((await stack.readVolume(VERSION, 'shop', 'annotated-a')).get('db')!.contents.toString()).toBe(VALUE);
  });

  it('a tenantID that differs from the annotation fails, naming both sources', async () => {
    await newPod('shop', 'conflict', 'conflict', 'annotated');
    const err = await rejection(publish('shop', 'conflict'));
    expect(err.details).toContain('the SecretProviderClass sets tenantID "11111111-2222-4333-8444-555555555555"');
    expect(err.details).toContain(`the annotation azure.workload.identity/tenant-id of service account shop/annotated says "${stack.azure.tenantId}"`);
  });
});

describe('rotation failures as events on the pod', () => {
  it('a failing rotation becomes one Warning event whose count rises; the files stay; a first-mount failure adds none', async () => {
    const pod = await stack.cluster.kube.get('v1', 'Pod', 'node-a', 'trusted');
    stack.azure.keyVault.revoke(VAULT, SYSTEM);
    try {
      const calls: string[][] = [];
      for (let i = 0; i < 3; i++) {
        await sleep(POLL_MS + 200);
        // v1.6.0 reports the failed republish to kubelet as success: the event is the only sign.
        calls.push(await callsDuring(async () => {
          await publish('trusted', 'node-a');
          await eventually(`event count ${i + 1}`, async () => ((await rotationEvents('trusted', pod.metadata.uid!))[0]?.count === i + 1 ? true : undefined));
        }));
      }
      perMount['failed rotation, first (event created)'] = calls[0]!;
      perMount['failed rotation, again (event count patched)'] = calls[1]!;
      expect(calls).toEqual([['create events'], ['patch events'], ['patch events']]);
      const [event] = await rotationEvents('trusted', pod.metadata.uid!);
      expect(event).toMatchObject({
        type: 'Warning',
        count: 3,
        involvedObject: { kind: 'Pod', name: 'node-a', namespace: 'trusted', uid: pod.metadata.uid },
        source: { component: 'csi-secrets-store-provider-azure' },
      });
      expect(event!.message).toContain('the secrets of SecretProviderClass node could not be refreshed');
      expect(event!.message).toContain(VAULT);
      expect(event!.message.length).toBeLessThanOrEqual(1024);
      expect(event!.message).not.toContain(VALUE);
      expect((await stack.readVolume(VERSION, 'trusted', 'node-a')).get('db')!.contents.toString()).toBe(VALUE);
      expect(await metrics()).toMatch(/csi_provider_azure_rotation_failures_total\{grpc_code="PermissionDenied"[^}]*\} 3/);
    } finally {
      stack.azure.keyVault.grant(VAULT, SYSTEM);
    }

    const firstMount = await newPod('trusted', 'missing-a', 'missing');
    perMount['failed first mount (kubelet shows FailedMount)'] = await callsDuring(() => rejection(publish('trusted', 'missing-a')));
    expect(perMount['failed first mount (kubelet shows FailedMount)']).toEqual([]);
    expect(await rotationEvents('trusted', firstMount.metadata.uid!)).toEqual([]);
    perMount['successful mount, events on'] = await callsDuring(() => publish('trusted', 'node-b'));
    expect(perMount['successful mount, events on']).toEqual([]);
  });
});

describe('csi-provider-azure check --all-classes', () => {
  it('checks every azure class in the cluster with the mount\'s parser, one line per problem, and no Azure call', () => {
    const before = stack.azure.keyVault.count();
    const result = spawnSync(process.execPath, [join(repoRoot(), 'bin', 'csi-provider-azure.js'), 'check', '--all-classes', '--kubeconfig', stack.cluster.kubeconfig], {
      encoding: 'utf8',
      env: { PATH: process.env['PATH'] ?? '' },
      timeout: 60_000,
    });
    expect(result.stdout.trim().split('\n')).toEqual([
      'cluster: shop/from-service-account: tenantID is required: set it to the Entra ID tenant of the Key Vault',
    ]);
    expect(result.stderr).toContain('6 SecretProviderClasses checked, 1 with problems');
    expect(result.status).toBe(1);
    expect(stack.azure.keyVault.count()).toBe(before);
  });
});

describe('csi-provider-azure check --probe --all-classes', () => {
  it('probes every class from the API with the provider\'s flags: its policy, IMDS and the vault, printing no value', async () => {
    const providerKubeconfig = join(stack.cluster.dir, 'provider-kubeconfig');
    // Not spawnSync: the stand-ins of IMDS and Key Vault answer from this process.
    const result = await spawnAsync(
      process.execPath,
      [
        join(repoRoot(), 'bin', 'csi-provider-azure.js'),
        'check', '--probe', '--probe-timeout', '10s', '--all-classes', '--kubeconfig', stack.cluster.kubeconfig,
        // The provider's own flags: its policy reads namespace labels with its service account, through the chart's
        // RBAC.
        '--', '--kubeconfig', providerKubeconfig, '--node-identity-policy=deny', `--node-identity-allowed-namespace-label=${LABEL}`,
      ],
      { PATH: process.env['PATH'] ?? '', ...stack.azure.providerEnv() },
    );
    const lines = result.stdout.trim().split('\n').sort();
    expect(lines).toEqual([
      expect.stringMatching(/^cluster: shop\/conflict: identity: skipped: needs the pod's nodePublishSecretRef Secret/),
      'cluster: shop/from-service-account: tenantID is required: set it to the Entra ID tenant of the Key Vault',
      expect.stringMatching(/^cluster: shop\/node: identity: policy: useVMManagedIdentity is refused in namespace shop /),
      expect.stringMatching(new RegExp(`^cluster: trusted-late/node: .*\\(secret "db"\\) in Key Vault "${VAULT}": ok: readable`)),
      expect.stringMatching(/^cluster: trusted\/missing: .*\(secret "no-such-secret"\).*: not found: .*404/),
      expect.stringMatching(new RegExp(`^cluster: trusted/node: .*\\(secret "db"\\) in Key Vault "${VAULT}": ok: readable`)),
    ]);
    expect(result.stderr).toContain('6 SecretProviderClasses checked, 3 with problems; probed: 2 ok, 2 failed, 1 skipped (not proven)');
    expect(result.status).toBe(1);
    expect(result.stdout + result.stderr).not.toContain(VALUE);
  });
});

describe('without the chart\'s RBAC', () => {
  it('mounts are unaffected, one clear log line says what to grant, and the label policy fails closed', async () => {
    const binding = rbac.find((o) => o.kind === 'ClusterRoleBinding')!;
    await stack.cluster.kube.delete('rbac.authorization.k8s.io/v1', 'ClusterRoleBinding', binding.metadata.name);
    await sleep(1000);
    // A rotation failure of a pod mounted before: its mount fails with Key Vault's reason, and the event cannot be
    // posted.
    stack.azure.keyVault.revoke(VAULT, SYSTEM);
    try {
      for (let i = 0; i < 2; i++) {
        await sleep(POLL_MS + 200);
        await publish('trusted', 'node-b');
      }
      await eventually('the warning line', async () => (logs().includes('cannot post rotation failure events') ? true : undefined));
      await sleep(500);
    } finally {
      stack.azure.keyVault.grant(VAULT, SYSTEM);
    }
    expect(count(logs(), 'cannot post rotation failure events')).toBe(1);
    expect(logs()).toContain("grant the provider's service account create and patch on events");
    // The mount itself still works as before.
    await sleep(POLL_MS + 200);
    await publish('trusted', 'node-b');
    expect((await stack.readVolume(VERSION, 'trusted', 'node-b')).get('db')!.contents.toString()).toBe(VALUE);

    // The policy cannot read a namespace it has not seen: node identities are refused there, with the reason.
    await newPod('trusted-late', 'node-late', 'node');
    const err = await rejection(publish('trusted-late', 'node-late'));
    expect(err.details).toContain('could not be read from the Kubernetes API');
    expect(err.details).toContain('get on namespaces');
  });

  it('closing figures: API calls per mount with each feature on, from the API server\'s audit log', () => {
    const table = Object.entries(perMount).map(([mount, calls]) => `${mount}: ${calls.length} (${calls.join(', ') || 'none'})`);
    process.stdout.write(`API calls per mount, counted by kube-apiserver's audit log:\n  ${table.join('\n  ')}\n`);
    expect(Object.keys(perMount).length).toBeGreaterThanOrEqual(8);
  });
});
