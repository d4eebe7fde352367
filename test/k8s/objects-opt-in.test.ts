/**
 * The opt-in object fields through the real driver, both generations: optional objects (left out on 404, and a file
 * the driver wrote earlier removed from the volume once its secret is deleted and the volume is mounted again), an
 * object from a second vault, fields of a JSON secret as files with their own modes, and a secret's tags as JSON — each
 * checked on the tmpfs as the driver wrote it and in the SecretProviderClassPodStatus it recorded.
 */
import { registerProviderCleanup } from '../support/provider-process';
import { objects } from '../support/spc';
import { DRIVER_VERSIONS } from './support/components';
import type { KubeObject } from './support/kube';
import { startStack, type Stack } from './support/stack';
import { eventually, sleep, shortVersion } from './support/waiting';

registerProviderCleanup();

const VAULT = 'k8s-opt-in-kv';
const OTHER = 'k8s-opt-in-other-kv';
const SYSTEM = 'node-system-identity';
const NAMESPACE = 'opt-in';
const POLL = 2;

let stack: Stack;

beforeAll(async () => {
  stack = await startStack({ identities: { systemAssigned: { id: SYSTEM } }, rotationPollInterval: `${POLL}s` });
  const kv = stack.azure.keyVault;
  kv.addVault(VAULT, { allow: [SYSTEM] });
  kv.addVault(OTHER, { allow: [SYSTEM] });
  kv.setSecret(VAULT, 'db', JSON.stringify({ username: 'app', credentials: { password: 'pw-1' } }));
  kv.setSecret(OTHER, 'shared-config', 'from-the-other-vault');
  kv.setSecret(VAULT, 'tagged', 'tagged-value', { tags: { team: 'payments', owner: 'ops' } });
  for (const version of DRIVER_VERSIONS) {
    kv.setSecret(VAULT, `feature-flag-${shortVersion(version)}`, 'on');
    await stack.secretProviderClass(NAMESPACE, `opt-in-${shortVersion(version)}`, {
      useVMManagedIdentity: 'true',
      keyvaultName: VAULT,
      tenantID: stack.azure.tenantId,
      objects: objects([
        'objectName: db\nobjectType: secret\nwriteObject: "false"\njsonPaths:\n  - path: username\n    objectAlias: db/user\n  - path: credentials.password\n    objectAlias: db/pass\n    filePermission: "0400"',
        `objectName: shared-config\nobjectType: secret\nkeyvaultName: ${OTHER}`,
        `objectName: feature-flag-${shortVersion(version)}\nobjectType: secret\nobjectAlias: feature-flag\noptional: "true"`,
        'objectName: never-created\nobjectType: secret\noptional: "true"',
        'objectName: tagged\nobjectType: secret\nwriteTags: "true"',
      ]),
    });
  }
}, 300_000);

afterAll(async () => {
  await stack?.stop();
});

describe.each(DRIVER_VERSIONS)('driver %s', (version) => {
  const pod = `opt-in-${shortVersion(version)}`;
  const statusObjects = async (): Promise<Array<{ id: string; version: string }>> => {
    const statuses = await stack.cluster.kube.list<KubeObject & { status: { podName: string; objects: Array<{ id: string; version: string }> } }>(
      'secrets-store.csi.x-k8s.io/v1',
      'SecretProviderClassPodStatus',
      NAMESPACE,
    );
    return statuses.find((s) => s.status.podName === pod)?.status.objects ?? [];
  };

  beforeAll(async () => {
    await stack.pod(version, NAMESPACE, pod, { spc: `opt-in-${shortVersion(version)}` });
    await stack.nodes[version].kubelet.publish(NAMESPACE, pod);
  });

  it('writes the JSON fields with their modes, the other vault\'s object, the optional object that exists', async () => {
    const files = await stack.readVolume(version, NAMESPACE, pod);
    expect([...files.keys()].sort()).toEqual(['db/pass', 'db/user', 'feature-flag', 'shared-config', 'tagged', 'tagged.tags.json']);
    expect(files.get('tagged.tags.json')!.contents.toString()).toBe('{"owner":"ops","team":"payments"}\n');
    expect(files.get('db/user')!.contents.toString()).toBe('app');
    expect(files.get('db/pass')!.contents.toString()).toBe('pw-1');
    expect(files.get('db/pass')!.mode).toBe(0o400);
    expect(files.get('db/user')!.mode).toBe(0o644);
    expect(files.get('shared-config')!.contents.toString()).toBe('from-the-other-vault');
    expect(files.get('feature-flag')!.contents.toString()).toBe('on');
  });

  it('the pod status records the fields with their secret\'s version and the missing optional object as not-found', async () => {
    const kv = stack.azure.keyVault;
    const db = kv.versions(VAULT, 'secret', 'db').at(-1);
    const byId = (a: { id: string }, b: { id: string }): number => a.id.localeCompare(b.id);
    expect([...(await statusObjects())].sort(byId)).toEqual(
      [
        { id: 'secret/db', version: db },
        { id: 'secret/db#db/user', version: db },
        { id: 'secret/db#db/pass', version: db },
        { id: `secret/${OTHER}/shared-config`, version: kv.versions(OTHER, 'secret', 'shared-config').at(-1) },
        { id: `secret/feature-flag-${shortVersion(version)}`, version: kv.versions(VAULT, 'secret', `feature-flag-${shortVersion(version)}`).at(-1) },
        { id: 'secret/never-created', version: 'not-found' },
        { id: 'secret/tagged', version: kv.versions(VAULT, 'secret', 'tagged').at(-1) },
      ].sort(byId),
    );
  });

  it('an optional object deleted from the vault disappears from the volume at the next mount', async () => {
    stack.azure.keyVault.deleteObject(VAULT, 'secret', `feature-flag-${shortVersion(version)}`);
    const gone = async (): Promise<true | undefined> =>
      (await stack.readVolume(version, NAMESPACE, pod)).has('feature-flag') ? undefined : true;
    if (version === 'v1.6.0') {
      // kubelet's republish; the driver mounts afresh once the poll interval since the last mount has passed.
      await sleep(POLL * 1000 + 500);
      await stack.nodes[version].kubelet.publish(NAMESPACE, pod);
      expect(await gone()).toBe(true);
    } else {
      await eventually("the rotation reconciler's remount", gone);
    }
    const files = await stack.readVolume(version, NAMESPACE, pod);
    expect([...files.keys()].sort()).toEqual(['db/pass', 'db/user', 'shared-config', 'tagged', 'tagged.tags.json']);
    const recorded = await eventually('the pod status update', async () => {
      const objects = await statusObjects();
      return objects.some((o) => o.id === `secret/feature-flag-${shortVersion(version)}` && o.version === 'not-found') ? objects : undefined;
    });
    expect(recorded).toContainEqual({ id: `secret/feature-flag-${shortVersion(version)}`, version: 'not-found' });
  });
});
