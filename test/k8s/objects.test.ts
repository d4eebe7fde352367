/**
 * Every object kind and format through the real driver, both generations: one SecretProviderClass as users write
 * them, mounted by kubelet's NodePublishVolume, and every file checked on the tmpfs as the driver wrote it (path,
 * mode, bytes) against what the vault holds — values, decoded encodings, keys re-encoded by Node, certificates
 * compared by DER, PFX bytes — plus the object versions the driver recorded in the SecretProviderClassPodStatus.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { registerProviderCleanup } from '../support/provider-process';
import { objects } from '../support/spc';
import { DRIVER_VERSIONS } from './support/components';
import type { KubeObject } from './support/kube';
import { startStack, type Stack } from './support/stack';
import { ecPublicKey, rsaPublicKey } from '../support/keys';

registerProviderCleanup();

const VAULT = 'k8s-objects-kv';
const SYSTEM = 'node-system-identity';
const NAMESPACE = 'objects';
const FIXTURES = join(__dirname, '..', 'fixtures', 'content');
const fixture = (name: string): Buffer => readFileSync(join(FIXTURES, name));
const PEM_FILE = 'application/x-pem-file';

const rsa = rsaPublicKey(2048);
const ec = ecPublicKey('P-384');
const API_KEY = Buffer.from([0x00, 0xff, 0x10, 0x80, 0x7f, 0x0a]);

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n[\s\S]*?\r?\n-----END \1-----\r?\n?/g;
const blocks = (pem: Buffer): Array<{ label: string; text: string }> => [...pem.toString().matchAll(PEM_BLOCK)].map((m) => ({ label: m[1]!, text: m[0] }));
const certificateDers = (pem: Buffer): Buffer[] => blocks(pem).filter((b) => b.label === 'CERTIFICATE').map((b) => new X509Certificate(b.text).raw);
const fixtureDer = (name: string): Buffer => new X509Certificate(fixture(`${name}.crt`)).raw;

let stack: Stack;
const versions: Record<string, string> = {};
const saltVersions: string[] = [];

const ENTRIES = [
  'objectName: db-password\nobjectType: secret',
  'objectName: api-key\nobjectType: secret\nobjectAlias: config/api.key\nobjectEncoding: base64\nfilePermission: "0400"',
  'objectName: hex-salt\nobjectType: secret\nobjectEncoding: hex',
  'objectName: rotating\nobjectType: secret\nobjectAlias: rotating-pinned',
  'objectName: rsa-key\nobjectType: key',
  'objectName: ec-key\nobjectType: key',
  'objectName: web-tls\nobjectType: cert\nobjectAlias: web-tls.crt',
  'objectName: web-tls\nobjectType: secret\nobjectAlias: web-tls.pem',
  'objectName: web-tls\nobjectType: secret\nobjectAlias: web-tls.pfx\nobjectFormat: pfx\nobjectEncoding: base64',
  'objectName: ec-pem\nobjectType: secret',
  'objectName: salt\nobjectType: secret\nobjectVersionHistory: 3',
];

beforeAll(async () => {
  stack = await startStack({
    identities: { systemAssigned: { id: SYSTEM } },
    providerArgs: ['--write-cert-and-key-in-separate-files'],
  });
  const kv = stack.azure.keyVault;
  kv.addVault(VAULT, { allow: [SYSTEM] });
  versions['secret/db-password'] = kv.setSecret(VAULT, 'db-password', 'p@ss word\nwith newline');
  versions['secret/api-key'] = kv.setSecret(VAULT, 'api-key', API_KEY.toString('base64'));
  versions['secret/hex-salt'] = kv.setSecret(VAULT, 'hex-salt', 'deadbeef00');
  const pinned = kv.setSecret(VAULT, 'rotating', 'first value');
  kv.setSecret(VAULT, 'rotating', 'second value');
  versions['secret/rotating'] = pinned;
  versions['key/rsa-key'] = kv.setKey(VAULT, 'rsa-key', rsa.export({ format: 'jwk' }));
  versions['key/ec-key'] = kv.setKey(VAULT, 'ec-key', ec.export({ format: 'jwk' }));
  versions['cert/web-tls'] = kv.setCertificate(VAULT, 'web-tls', fixture('c4-leaf.crt').toString(), {
    privateKeyPem: fixture('c4-leaf.key').toString(),
    chainPem: ['c4-root', 'c4-int1', 'c4-int2'].map((n) => fixture(`${n}.crt`).toString()),
  });
  versions['secret/web-tls'] = versions['cert/web-tls'];
  versions['secret/ec-pem'] = kv.setCertificate(VAULT, 'ec-pem', fixture('ec-leaf.crt').toString(), {
    privateKeyPem: fixture('ec-leaf.key').toString(),
    chainPem: ['ec-int', 'ec-root'].map((n) => fixture(`${n}.crt`).toString()),
    secretContentType: PEM_FILE,
  });
  for (let i = 0; i < 5; i++) saltVersions.push(kv.setSecret(VAULT, 'salt', `salt-${i}`));

  const entries = ENTRIES.map((e) => e.replace('objectAlias: rotating-pinned', `objectAlias: rotating-pinned\nobjectVersion: ${pinned}`));
  await stack.secretProviderClass(NAMESPACE, 'every-kind', {
    useVMManagedIdentity: 'true',
    keyvaultName: VAULT,
    tenantID: stack.azure.tenantId,
    objects: objects(entries),
  });
}, 300_000);

afterAll(async () => {
  await stack?.stop();
});

describe.each(DRIVER_VERSIONS)('driver %s', (version) => {
  let files: Map<string, { mode: number; contents: Buffer }>;
  const pod = `every-kind-${version.replace(/\./g, '-').slice(1)}`;

  beforeAll(async () => {
    await stack.pod(version, NAMESPACE, pod, { spc: 'every-kind' });
    await stack.nodes[version].kubelet.publish(NAMESPACE, pod);
    files = await stack.readVolume(version, NAMESPACE, pod);
  });

  const file = (path: string): Buffer => {
    const found = files.get(path);
    if (!found) throw new Error(`no file ${path} on the volume (has ${[...files.keys()].join(', ')})`);
    return found.contents;
  };

  it('writes exactly the declared files, in folders where the alias has them', () => {
    expect([...files.keys()].sort()).toEqual(
      [
        'db-password', 'config/api.key', 'hex-salt', 'rotating-pinned', 'rsa-key', 'ec-key', 'web-tls.crt',
        'web-tls.pem', 'web-tls.pem.crt', 'web-tls.pem.key', 'web-tls.pfx', 'web-tls.pfx.crt', 'web-tls.pfx.key',
        'ec-pem', 'ec-pem.crt', 'ec-pem.key',
        'salt/0', 'salt/1', 'salt/2',
      ].sort(),
    );
  });

  it('file modes: the driver\'s 0644, and filePermission where set', () => {
    for (const [path, { mode }] of files) expect([path, mode]).toEqual([path, path === 'config/api.key' ? 0o400 : 0o644]);
  });

  it('secrets: the value as is, decoded from base64 or hex, a pinned version', () => {
    expect(file('db-password').toString()).toBe('p@ss word\nwith newline');
    expect(file('config/api.key')).toEqual(API_KEY);
    expect(file('hex-salt')).toEqual(Buffer.from('deadbeef00', 'hex'));
    expect(file('rotating-pinned').toString()).toBe('first value');
  });

  it('keys: the public key as PEM PUBLIC KEY, RSA and EC', () => {
    expect(file('rsa-key').toString()).toBe(rsa.export({ type: 'spki', format: 'pem' }).toString());
    expect(file('ec-key').toString()).toBe(ec.export({ type: 'spki', format: 'pem' }).toString());
  });

  it('cert: the certificate alone, as PEM', () => {
    expect(blocks(file('web-tls.crt')).map((b) => b.label)).toEqual(['CERTIFICATE']);
    expect(certificateDers(file('web-tls.crt'))).toEqual([fixtureDer('c4-leaf')]);
  });

  it('a PFX-backed secret: the private key, then the chain ordered leaf to root; .crt and .key beside it', () => {
    const pem = file('web-tls.pem');
    expect(blocks(pem).map((b) => b.label)).toEqual(['PRIVATE KEY', 'CERTIFICATE', 'CERTIFICATE', 'CERTIFICATE', 'CERTIFICATE']);
    expect(certificateDers(pem)).toEqual(['c4-leaf', 'c4-int2', 'c4-int1', 'c4-root'].map(fixtureDer));
    const key = createPrivateKey(blocks(pem)[0]!.text);
    expect(key.export({ type: 'pkcs8', format: 'der' })).toEqual(createPrivateKey(fixture('c4-leaf.key')).export({ type: 'pkcs8', format: 'der' }));
    expect(certificateDers(file('web-tls.pem.crt'))).toEqual(certificateDers(pem));
    expect(blocks(file('web-tls.pem.key')).map((b) => b.text)).toEqual([blocks(pem)[0]!.text]);
  });

  it('objectFormat pfx with objectEncoding base64: the PFX bytes Key Vault stores', () => {
    expect(file('web-tls.pfx').subarray(0, 1)).toEqual(Buffer.from([0x30])); // a DER SEQUENCE: binary, not base64 text
    expect(file('web-tls.pfx').toString('base64')).toBe(stack.azure.keyVault.secretValue(VAULT, 'web-tls'));
    // With --write-cert-and-key-in-separate-files the reference writes .crt and .key for a PFX too, empty.
    expect([file('web-tls.pfx.crt').length, file('web-tls.pfx.key').length]).toEqual([0, 0]);
  });

  it('a PEM-stored certificate secret: as stored; .crt and .key split from it', () => {
    expect(file('ec-pem').toString()).toBe(stack.azure.keyVault.secretValue(VAULT, 'ec-pem'));
    expect(certificateDers(file('ec-pem.crt'))).toEqual(['ec-leaf', 'ec-int', 'ec-root'].map(fixtureDer));
    expect(createPrivateKey(file('ec-pem.key')).export({ type: 'pkcs8', format: 'der' })).toEqual(
      createPrivateKey(fixture('ec-leaf.key')).export({ type: 'pkcs8', format: 'der' }),
    );
  });

  it('version history: the newest three versions, newest first', () => {
    expect(['salt/0', 'salt/1', 'salt/2'].map((p) => file(p).toString())).toEqual(['salt-4', 'salt-3', 'salt-2']);
  });

  it('the pod status records every object\'s id and version', async () => {
    const statuses = await stack.cluster.kube.list<KubeObject & { status: { podName: string; objects: Array<{ id: string; version: string }> } }>(
      'secrets-store.csi.x-k8s.io/v1',
      'SecretProviderClassPodStatus',
      NAMESPACE,
    );
    const recorded = statuses.find((s) => s.status.podName === pod)!.status.objects;
    const expected = [
      ...Object.entries(versions).map(([id, v]) => ({ id, version: v })),
      { id: 'secret/salt/0', version: saltVersions[4]! },
      { id: 'secret/salt/1', version: saltVersions[3]! },
      { id: 'secret/salt/2', version: saltVersions[2]! },
    ];
    const byId = (a: { id: string }, b: { id: string }): number => a.id.localeCompare(b.id);
    // Two entries name secret/web-tls (PEM and PFX): the driver keeps one per id, with the same version.
    expect([...recorded].sort(byId)).toEqual(expected.sort(byId));
  });
});
