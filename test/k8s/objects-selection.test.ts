/**
 * Objects selected by name prefix and by tags through the real driver, both generations: the files on the tmpfs as
 * the driver wrote them (folder, template, mode, a certificate-backed secret as PEM, disabled ones left out), the
 * versions it recorded in the SecretProviderClassPodStatus, and a secret that joins and one that leaves the selection
 * showing up in the volume and the status at the next mount (kubelet's republish for v1.6, the rotation reconciler
 * for v1.5).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { registerProviderCleanup } from '../support/provider-process';
import { objects } from '../support/spc';
import { DRIVER_VERSIONS } from './support/components';
import type { KubeObject } from './support/kube';
import { startStack, type Stack } from './support/stack';
import { eventually, sleep, shortVersion } from './support/waiting';

registerProviderCleanup();

const VAULT = 'k8s-selection-kv';
const SYSTEM = 'node-system-identity';
const NAMESPACE = 'selection';
const POLL = 2;
const FIXTURES = join(__dirname, '..', 'fixtures', 'content');
const fixtureText = (name: string): string => readFileSync(join(FIXTURES, name), 'utf8');

let stack: Stack;

beforeAll(async () => {
  stack = await startStack({ identities: { systemAssigned: { id: SYSTEM } }, rotationPollInterval: `${POLL}s` });
  const kv = stack.azure.keyVault;
  kv.addVault(VAULT, { allow: [SYSTEM] });
  kv.setSecret(VAULT, 'unrelated', 'unrelated-value');
  for (const version of DRIVER_VERSIONS) {
    const p = `app${shortVersion(version)}-`;
    kv.setSecret(VAULT, `${p}db`, 'db-value');
    kv.setSecret(VAULT, `${p}cache`, 'cache-value');
    kv.setSecret(VAULT, `${p}off`, 'off-value', { enabled: false });
    kv.setSecret(VAULT, `tagged-${shortVersion(version)}`, 'tagged-value', { tags: { team: `shop-${shortVersion(version)}` } });
    kv.setCertificate(VAULT, `${p}tls`, fixtureText('ec-leaf.crt'), {
      privateKeyPem: fixtureText('ec-leaf.key'),
      secretContentType: 'application/x-pem-file',
    });
    await stack.secretProviderClass(NAMESPACE, `selection-${shortVersion(version)}`, {
      useVMManagedIdentity: 'true',
      keyvaultName: VAULT,
      tenantID: stack.azure.tenantId,
      objects: objects([
        `objectNamePrefix: ${p}\nobjectAlias: app\nfileNameTemplate: "{nameWithoutPrefix}"\nfilePermission: "0440"`,
        `objectTags:\n  team: shop-${shortVersion(version)}\nobjectAlias: by-tag`,
      ]),
    });
  }
}, 300_000);

afterAll(async () => {
  await stack?.stop();
});

describe.each(DRIVER_VERSIONS)('driver %s', (version) => {
  const pod = `selection-${shortVersion(version)}`;
  const p = `app${shortVersion(version)}-`;
  const statusObjects = async (): Promise<Array<{ id: string; version: string }>> => {
    const statuses = await stack.cluster.kube.list<KubeObject & { status: { podName: string; objects: Array<{ id: string; version: string }> } }>(
      'secrets-store.csi.x-k8s.io/v1',
      'SecretProviderClassPodStatus',
      NAMESPACE,
    );
    return statuses.find((s) => s.status.podName === pod)?.status.objects ?? [];
  };

  beforeAll(async () => {
    await stack.pod(version, NAMESPACE, pod, { spc: `selection-${shortVersion(version)}` });
    await stack.nodes[version].kubelet.publish(NAMESPACE, pod);
  });

  it('writes the selected secrets under their folders, with the mode, the certificate as PEM, the disabled one left out', async () => {
    const files = await stack.readVolume(version, NAMESPACE, pod);
    expect([...files.keys()].sort()).toEqual(['app/cache', 'app/db', 'app/tls', `by-tag/tagged-${shortVersion(version)}`]);
    expect(files.get('app/db')!.contents.toString()).toBe('db-value');
    expect(files.get('app/db')!.mode).toBe(0o440);
    expect(files.get(`by-tag/tagged-${shortVersion(version)}`)!.mode).toBe(0o644);
    expect(files.get('app/tls')!.contents.toString()).toMatch(/^-----BEGIN PRIVATE KEY-----[\s\S]*-----BEGIN CERTIFICATE-----/);
  });

  it('the pod status records each selected secret\'s version and one version per selection', async () => {
    const kv = stack.azure.keyVault;
    const ids = (await statusObjects()).map((o) => o.id).sort();
    expect(ids).toEqual([`secret/${p}cache`, `secret/${p}db`, `secret/${p}tls`, `secret/tagged-${shortVersion(version)}`, 'select/app', 'select/by-tag'].sort());
    expect(await statusObjects()).toContainEqual({ id: `secret/${p}db`, version: kv.versions(VAULT, 'secret', `${p}db`).at(-1) });
  });

  it('a secret that joins and one that leaves the selection show at the next mount, in the volume and the status', async () => {
    const before = (await statusObjects()).find((o) => o.id === 'select/app')!.version;
    stack.azure.keyVault.setSecret(VAULT, `${p}queue`, 'queue-value');
    stack.azure.keyVault.deleteObject(VAULT, 'secret', `${p}cache`);
    const changed = async (): Promise<true | undefined> => {
      const names = [...(await stack.readVolume(version, NAMESPACE, pod)).keys()];
      return names.includes('app/queue') && !names.includes('app/cache') ? true : undefined;
    };
    if (version === 'v1.6.0') {
      // kubelet's republish; the driver mounts afresh once the poll interval since the last mount has passed.
      await sleep(POLL * 1000 + 500);
      await stack.nodes[version].kubelet.publish(NAMESPACE, pod);
      expect(await changed()).toBe(true);
    } else {
      await eventually("the rotation reconciler's remount", changed);
    }
    const files = await stack.readVolume(version, NAMESPACE, pod);
    expect([...files.keys()].sort()).toEqual(['app/db', 'app/queue', 'app/tls', `by-tag/tagged-${shortVersion(version)}`]);
    const recorded = await eventually('the pod status update', async () => {
      const objects = await statusObjects();
      return objects.some((o) => o.id === `secret/${p}queue`) ? objects : undefined;
    });
    expect(recorded.map((o) => o.id)).not.toContain(`secret/${p}cache`);
    expect(recorded.find((o) => o.id === 'select/app')!.version).not.toBe(before);
  });
});
