/**
 * Rotation and secret sync as users run them, through the real driver:
 * - v1.6.0: rotation is kubelet's republish (the CSIDriver's requiresRepublish) — kubelet calls NodePublishVolume
 *   again and the driver, with --enable-secret-rotation, mounts afresh once its poll interval has passed;
 * - v1.5.6: the driver's own rotation reconciler polls every --rotation-poll-interval and calls Mount itself;
 * - secretObjects: the driver's pod status controller turns the mounted files into Kubernetes Secrets (Opaque and
 *   kubernetes.io/tls) and updates them when rotation changes the files.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { registerProviderCleanup } from '../support/provider-process';
import { objects } from '../support/spc';
import { DRIVER_VERSIONS } from './support/components';
import type { KubeObject } from './support/kube';
import { startStack, type Stack } from './support/stack';
import { eventually, sleep, shortVersion } from './support/waiting';

registerProviderCleanup();

const VAULT = 'k8s-rotation-kv';
const SYSTEM = 'node-system-identity';
const NAMESPACE = 'rotation';
const POLL = 2;
const FIXTURES = join(__dirname, '..', 'fixtures', 'content');
const fixture = (name: string): string => readFileSync(join(FIXTURES, name), 'utf8');

let stack: Stack;

type Secret = KubeObject & { type: string; data?: Record<string, string> };

beforeAll(async () => {
  stack = await startStack({ identities: { systemAssigned: { id: SYSTEM } }, rotationPollInterval: `${POLL}s` });
  stack.azure.keyVault.addVault(VAULT, { allow: [SYSTEM] });
  stack.azure.keyVault.setCertificate(VAULT, 'web-tls', fixture('c4-leaf.crt'), {
    privateKeyPem: fixture('c4-leaf.key'),
    chainPem: ['c4-int2', 'c4-int1', 'c4-root'].map((n) => fixture(`${n}.crt`)),
  });
  for (const version of DRIVER_VERSIONS) {
    stack.azure.keyVault.setSecret(VAULT, `token-${shortVersion(version)}`, 'generation-1');
    await stack.secretProviderClass(
      NAMESPACE,
      `synced-${shortVersion(version)}`,
      {
        useVMManagedIdentity: 'true',
        keyvaultName: VAULT,
        tenantID: stack.azure.tenantId,
        objects: objects([`objectName: token-${shortVersion(version)}\nobjectType: secret\nobjectAlias: token`, 'objectName: web-tls\nobjectType: secret']),
      },
      [
        { secretName: `app-token-${shortVersion(version)}`, type: 'Opaque', labels: { app: 'shop' }, data: [{ objectName: 'token', key: 'token' }] },
        { secretName: `web-tls-${shortVersion(version)}`, type: 'kubernetes.io/tls', data: [{ objectName: 'web-tls', key: 'tls.key' }, { objectName: 'web-tls', key: 'tls.crt' }] },
      ],
    );
  }
}, 300_000);

afterAll(async () => {
  await stack?.stop();
});

describe.each(DRIVER_VERSIONS)('driver %s', (version) => {
  const pod = `synced-${shortVersion(version)}`;
  const kube = () => stack.cluster.kube;
  const tokenFile = async (): Promise<string> => (await stack.readVolume(version, NAMESPACE, pod)).get('token')!.contents.toString();
  const syncedToken = async (): Promise<string | undefined> => {
    const secret = await kube().find<Secret>('v1', 'Secret', `app-token-${shortVersion(version)}`, NAMESPACE);
    return secret?.data?.['token'] ? Buffer.from(secret.data['token'], 'base64').toString() : undefined;
  };

  beforeAll(async () => {
    await stack.pod(version, NAMESPACE, pod, { spc: `synced-${shortVersion(version)}` });
    await stack.nodes[version].kubelet.publish(NAMESPACE, pod);
  });

  it('syncs secretObjects into Kubernetes Secrets: Opaque, and kubernetes.io/tls split into key and chain', async () => {
    expect(await tokenFile()).toBe('generation-1');
    expect(await eventually('the Opaque secret', syncedToken)).toBe('generation-1');
    const opaque = await kube().get<Secret>('v1', 'Secret', `app-token-${shortVersion(version)}`, NAMESPACE);
    expect(opaque.metadata['labels']).toMatchObject({ app: 'shop', 'secrets-store.csi.k8s.io/managed': 'true' });
    const tls = await eventually('the TLS secret', () => kube().find<Secret>('v1', 'Secret', `web-tls-${shortVersion(version)}`, NAMESPACE));
    expect(tls.type).toBe('kubernetes.io/tls');
    const crt = Buffer.from(tls.data!['tls.crt']!, 'base64').toString();
    const key = Buffer.from(tls.data!['tls.key']!, 'base64').toString();
    expect(new X509Certificate(crt).raw).toEqual(new X509Certificate(fixture('c4-leaf.crt')).raw);
    // The driver re-encodes the key it finds in the file (PKCS#1 for RSA): the same key, its own encoding.
    expect(createPrivateKey(key).export({ type: 'pkcs8', format: 'der' })).toEqual(
      createPrivateKey(fixture('c4-leaf.key')).export({ type: 'pkcs8', format: 'der' }),
    );
    expect(crt).not.toContain('PRIVATE KEY');
  });

  it('picks up a new secret version on disk and in the synced Secret', async () => {
    const logsBefore = stack.nodes[version].provider.logs().length;
    const next = stack.azure.keyVault.setSecret(VAULT, `token-${shortVersion(version)}`, 'generation-2');
    if (version === 'v1.6.0') {
      // kubelet's republish; the driver mounts afresh once the poll interval since the last mount has passed.
      await sleep(POLL * 1000 + 500);
      await stack.nodes[version].kubelet.publish(NAMESPACE, pod);
      expect(await tokenFile()).toBe('generation-2');
    } else {
      await eventually('the rotation reconciler\'s remount', async () => ((await tokenFile()) === 'generation-2' ? true : undefined));
    }
    expect(await eventually('the synced update', async () => ((await syncedToken()) === 'generation-2' ? true : undefined))).toBe(true);
    const recorded = await eventually('the pod status update', async () => {
      const s = (await kube().list<KubeObject & { status: { podName: string; objects: Array<{ id: string; version: string }> } }>(
        'secrets-store.csi.x-k8s.io/v1',
        'SecretProviderClassPodStatus',
        NAMESPACE,
      )).find((x) => x.status.podName === pod);
      return s?.status.objects.some((o) => o.version === next) ? s.status.objects : undefined;
    });
    expect(recorded).toContainEqual({ id: `secret/token-${shortVersion(version)}`, version: next });
    // What each generation sends: v1.5.6's reconciler the two versions it holds, v1.6.0's republish none.
    const rotationMount = stack.nodes[version].provider.logs().slice(logsBefore).split('\n').find((l) => l.includes('mount succeeded'))!;
    expect(rotationMount).toMatch(version === 'v1.5.6' ? /currentObjectVersions[=:"]*2\b/ : /currentObjectVersions[=:"]*0\b/);
  });

  it('a failing rotation keeps the files and the Secret, and the provider says why in its log', async () => {
    stack.azure.keyVault.revoke(VAULT, SYSTEM);
    try {
      stack.azure.keyVault.setSecret(VAULT, `token-${shortVersion(version)}`, 'generation-3');
      const logsBefore = stack.nodes[version].provider.logs().length;
      if (version === 'v1.6.0') {
        await sleep(POLL * 1000 + 500);
        // v1.6.0 reports a failed republish to kubelet as success (kubernetes/kubernetes#121271): nothing reaches the
        // pod.
        await expect(stack.nodes[version].kubelet.publish(NAMESPACE, pod)).resolves.toBeDefined();
      }
      await eventually('a refused rotation in the provider log', async () =>
        stack.nodes[version].provider.logs().slice(logsBefore).includes(VAULT) ? true : undefined,
      );
      expect(await tokenFile()).toBe('generation-2');
      expect(await syncedToken()).toBe('generation-2');
    } finally {
      stack.azure.keyVault.grant(VAULT, SYSTEM);
    }
  });
});
