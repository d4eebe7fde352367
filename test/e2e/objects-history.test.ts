/**
 * End to end: `objectVersionHistory` through the real provider process. The Key Vault stand-in lists at
 * most two versions per page (so every listing follows nextLinks) and in version-id order, never creation order, as
 * the service promises nothing about order.
 */
import { status as grpcStatus, type ServiceError } from '@grpc/grpc-js';
import { X509Certificate } from 'node:crypto';
import { createSecureContext } from 'node:tls';
import { startAzureStandIns, type AzureStandIns } from '../support/azure-standins';
import type { MountRequestInput, MountResult } from '../support/driver-client';
import { registerProviderCleanup, startProvider, type ProviderProcess } from '../support/provider-process';
import { objects, rejectionOf } from '../support/spc';
import { ecPublicKey } from '../support/keys';

registerProviderCleanup();

const SYSTEM = 'node-system-identity';
const VAULT = 'history-kv';
const PAGE_SIZE = 2;

let azure: AzureStandIns;
let provider: ProviderProcess;
/** --write-cert-and-key-in-separate-files */
let split: ProviderProcess;

/** Versions oldest first; `disabled` is one of them. */
const secretVersions: string[] = [];
let disabledSecret: string;
const keyVersions: string[] = [];
const keyPems: string[] = [];
const certVersions: string[] = [];
const certSubjects: string[] = [];


function request(entries: string[]): MountRequestInput {
  return {
    attributes: {
      'csi.storage.k8s.io/pod.name': 'web-0',
      'csi.storage.k8s.io/pod.namespace': 'shop',
      'csi.storage.k8s.io/pod.uid': '5e6f7a8b',
      'csi.storage.k8s.io/serviceAccount.name': 'web',
      secretProviderClass: 'web-history',
      useVMManagedIdentity: 'true',
      keyvaultName: VAULT,
      tenantID: azure.tenantId,
      objects: objects(entries),
    },
    permission: '420',
    targetPath: '/var/lib/kubelet/pods/5e6f7a8b/volumes/kubernetes.io~csi/history/mount',
  };
}

const mount = (p: ProviderProcess, entries: string[], deadlineMs?: number): Promise<MountResult> =>
  p.client.mount(request(entries), deadlineMs ? { deadlineMs } : {});

async function mountError(p: ProviderProcess, entries: string[], deadlineMs?: number): Promise<ServiceError> {
  return rejectionOf(mount(p, entries, deadlineMs));
}

const contents = (r: MountResult) => r.files.map((f) => [f.path, f.contents.toString()]);
const listRequests = (name: string) =>
  azure.keyVault.requests.filter((r) => r.operation === 'list' && r.path.toLowerCase().includes(`/${name}/versions`));

beforeAll(async () => {
  azure = await startAzureStandIns({ identities: { systemAssigned: { id: SYSTEM } }, pageSize: PAGE_SIZE });
  const kv = azure.keyVault;
  kv.addVault(VAULT, { allow: [SYSTEM] });

  // Seven versions of a secret (values hold base64 of "salt-<i>"), the fifth disabled.
  for (let i = 0; i < 7; i++) secretVersions.push(kv.setSecret(VAULT, 'salt', Buffer.from(`salt-${i}`).toString('base64')));
  disabledSecret = secretVersions[4]!;
  kv.setEnabled(VAULT, 'secret', 'salt', false, disabledSecret);

  for (let i = 0; i < 3; i++) {
    const key = ecPublicKey('P-384');
    keyPems.push(key.export({ type: 'spki', format: 'pem' }).toString());
    keyVersions.push(kv.setKey(VAULT, 'signing', key.export({ format: 'jwk' }), { kty: 'EC-HSM' }));
  }

  // Three renewals of a certificate: each creates the certificate, its key and its PFX secret under one version.
  for (let i = 0; i < 3; i++) {
    const issued = azure.pki.issueServerCert([`web${i}.shop.example`]);
    certSubjects.push(new X509Certificate(issued.certPem).subject);
    certVersions.push(kv.setCertificate(VAULT, 'web-tls', issued.certPem, { privateKeyPem: issued.keyPem, chainPem: [azure.pki.caCertPem] }));
  }

  [provider, split] = await Promise.all([
    startProvider({ env: azure.providerEnv() }),
    startProvider({ env: azure.providerEnv(), args: ['--write-cert-and-key-in-separate-files'] }),
  ]);
});

afterAll(async () => {
  await Promise.all([provider?.stop(), split?.stop()]);
  await azure?.close();
});

describe('objectVersionHistory', () => {
  it('writes the newest N enabled versions, newest first, to <file>/0..N-1 with ids <type>/<name>/<index>', async () => {
    azure.keyVault.clearRequests();
    const result = await mount(provider, ['objectName: salt\nobjectType: secret\nobjectVersionHistory: 3\nobjectEncoding: base64\nobjectAlias: salts']);
    // Version 4 is disabled: it is skipped, and exactly three files come back (the reference returned N+1).
    expect(contents(result)).toEqual([
      ['salts/0', 'salt-6'],
      ['salts/1', 'salt-5'],
      ['salts/2', 'salt-3'],
    ]);
    expect(result.objectVersion).toEqual([
      { id: 'secret/salt/0', version: secretVersions[6] },
      { id: 'secret/salt/1', version: secretVersions[5] },
      { id: 'secret/salt/2', version: secretVersions[3] },
    ]);
    // The whole listing was read, page by page through nextLinks (7 versions, 2 per page).
    const pages = listRequests('salt');
    expect(pages.filter((r) => r.status === 200)).toHaveLength(Math.ceil(7 / PAGE_SIZE));
    expect(pages.filter((r) => r.query['$skiptoken'] !== undefined)).toHaveLength(Math.ceil(7 / PAGE_SIZE) - 1);
    // Then each chosen version by its id.
    const gets = azure.keyVault.requests.filter((r) => r.operation === 'get' && r.status === 200).map((r) => r.path);
    expect(gets.sort()).toEqual([6, 5, 3].map((i) => `/secrets/salt/${secretVersions[i]}`).sort());
  });

  it('writes fewer files when fewer enabled versions exist', async () => {
    const result = await mount(provider, ['objectName: salt\nobjectType: secret\nobjectVersionHistory: 20\nobjectEncoding: base64']);
    expect(contents(result).map(([, value]) => value)).toEqual(['salt-6', 'salt-5', 'salt-3', 'salt-2', 'salt-1', 'salt-0']);
    expect(result.objectVersion.map((v) => v.id)).toEqual([0, 1, 2, 3, 4, 5].map((i) => `secret/salt/${i}`));
  });

  it.each([
    ['an older version', () => secretVersions[3]!, ['salt-3', 'salt-2']],
    ['the oldest version (fewer remain)', () => secretVersions[0]!, ['salt-0']],
    ['"latest"', () => 'latest', ['salt-6', 'salt-5']],
    ['an upper-case version id', () => secretVersions[5]!.toUpperCase(), ['salt-5', 'salt-3']],
  ])('starts at objectVersion: %s', async (_name, start, expected) => {
    const result = await mount(provider, [`objectName: salt\nobjectType: secret\nobjectVersionHistory: 2\nobjectEncoding: base64\nobjectVersion: ${start()}`]);
    expect(contents(result).map(([, value]) => value)).toEqual(expected);
  });

  it.each([
    ['does not exist', () => '0123456789abcdef0123456789abcdef', 'version 0123456789abcdef0123456789abcdef was not found in Key Vault "history-kv"'],
    ['is disabled', () => disabledSecret, 'this version is disabled in Key Vault "history-kv"'],
  ])('writes nothing for the history object, as the reference, and warns, when the start version %s', async (_name, start, fragment) => {
    const result = await mount(provider, [
      'objectName: salt\nobjectType: secret\nobjectAlias: current',
      `objectName: salt\nobjectType: secret\nobjectVersionHistory: 2\nobjectVersion: ${start()}`,
    ]);
    expect(result.files.map((f) => f.path)).toEqual(['current']);
    await provider.waitForLog(fragment);
  });

  it('fails with NotFound for an object that does not exist, when it is the only one (the driver would fail too)', async () => {
    const err = await mountError(provider, ['objectName: no-such-secret\nobjectType: secret\nobjectVersionHistory: 2']);
    expect(err.code).toBe(grpcStatus.NOT_FOUND);
    expect(err.details).toContain('objects.array[0] (secret "no-such-secret"): Key Vault "history-kv" has no enabled version');
  });

  it('fails with PermissionDenied naming the list permission when the identity may not list versions', async () => {
    azure.keyVault.addVault('locked-kv'); // nobody may read or list
    const req = request(['objectName: salt\nobjectType: secret\nobjectVersionHistory: 2']);
    req.attributes['keyvaultName'] = 'locked-kv';
    const err = await provider.client.mount(req).then(
      () => {
        throw new Error('expected the mount to fail');
      },
      (e: ServiceError) => e,
    );
    expect(err.code).toBe(grpcStatus.PERMISSION_DENIED);
    expect(err.details).toContain('secret "salt"');
    expect(err.details).toContain('Key Vault "locked-kv"');
    expect(err.details).toContain('with access policies the identity also needs the list permission for secrets');
  });

  it('works for keys', async () => {
    const result = await mount(provider, ['objectName: signing\nobjectType: key\nobjectVersionHistory: 2']);
    expect(contents(result)).toEqual([
      ['signing/0', keyPems[2]],
      ['signing/1', keyPems[1]],
    ]);
    expect(result.objectVersion).toEqual([
      { id: 'key/signing/0', version: keyVersions[2] },
      { id: 'key/signing/1', version: keyVersions[1] },
    ]);
  });

  it('works for certificates', async () => {
    const result = await mount(provider, ['objectName: web-tls\nobjectType: cert\nobjectVersionHistory: 5\nobjectAlias: certs/web']);
    expect(result.files.map((f) => f.path)).toEqual(['certs/web/0', 'certs/web/1', 'certs/web/2']);
    expect(result.files.map((f) => new X509Certificate(f.contents).subject)).toEqual([...certSubjects].reverse());
    expect(result.objectVersion).toEqual([2, 1, 0].map((v, i) => ({ id: `cert/web-tls/${i}`, version: certVersions[v] })));
  });

  it('converts every version of a certificate-backed secret, with <file>/<i>.crt and <file>/<i>.key', async () => {
    const result = await mount(split, ['objectName: web-tls\nobjectType: secret\nobjectVersionHistory: 2']);
    expect(result.files.map((f) => f.path)).toEqual(['web-tls/0', 'web-tls/0.crt', 'web-tls/0.key', 'web-tls/1', 'web-tls/1.crt', 'web-tls/1.key']);
    const file = (path: string) => result.files.find((f) => f.path === path)!.contents;
    for (const [i, version] of [2, 1].entries()) {
      const chain = file(`web-tls/${i}.crt`).toString().match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n/g)!;
      expect(chain.map((c) => new X509Certificate(c).subject)).toEqual([certSubjects[version], new X509Certificate(azure.pki.caCertPem).subject]);
      expect(new X509Certificate(chain[0]!).checkIssued(new X509Certificate(chain[1]!))).toBe(true);
      expect(() => createSecureContext({ key: file(`web-tls/${i}.key`), cert: file(`web-tls/${i}.crt`) })).not.toThrow();
      expect(() => createSecureContext({ key: file(`web-tls/${i}`), cert: file(`web-tls/${i}`) })).not.toThrow();
    }
    expect(result.objectVersion).toEqual([
      { id: 'secret/web-tls/0', version: certVersions[2] },
      { id: 'secret/web-tls/1', version: certVersions[1] },
    ]);
  });

  it('writes each version as a binary PFX with objectFormat pfx and objectEncoding base64 (.crt/.key empty, as the reference)', async () => {
    const result = await mount(split, ['objectName: web-tls\nobjectType: secret\nobjectVersionHistory: 3\nobjectFormat: pfx\nobjectEncoding: base64']);
    const paths = ['web-tls/0', 'web-tls/1', 'web-tls/2'];
    expect(result.files.map((f) => f.path)).toEqual(paths.flatMap((p) => [p, `${p}.crt`, `${p}.key`]));
    for (const f of result.files.filter((f) => paths.includes(f.path))) expect(() => createSecureContext({ pfx: f.contents, passphrase: '' })).not.toThrow();
    for (const f of result.files.filter((f) => !paths.includes(f.path))) expect(f.contents).toEqual(Buffer.alloc(0));
  });

  it('follows rotation: a new version becomes <file>/0 and the others move down', async () => {
    const entry = 'objectName: signing\nobjectType: key\nobjectVersionHistory: 2';
    const before = await mount(provider, [entry]);
    const key = ecPublicKey('P-256');
    const newVersion = azure.keyVault.setKey(VAULT, 'signing', key.export({ format: 'jwk' }));
    const after = await mount(provider, [entry]);
    expect(after.objectVersion).toEqual([
      { id: 'key/signing/0', version: newVersion },
      { id: 'key/signing/1', version: before.objectVersion[0]!.version },
    ]);
    expect(after.files[0]!.contents.toString()).toBe(key.export({ type: 'spki', format: 'pem' }).toString());
  });

  it('gives up on a slow paged listing at the mount deadline and stops listing', async () => {
    // Make a long listing (12 pages), each page slow: far longer than the mount may take.
    for (let i = 0; i < 24; i++) azure.keyVault.setSecret(VAULT, 'long-history', `v${i}`);
    azure.keyVault.delayMs = 400;
    try {
      const started = Date.now();
      const err = await mountError(provider, ['objectName: long-history\nobjectType: secret\nobjectVersionHistory: 3'], 2500);
      const elapsed = Date.now() - started;
      expect(err.code).toBe(grpcStatus.DEADLINE_EXCEEDED);
      expect(err.details).toMatch(/deadline/i);
      expect(elapsed).toBeLessThan(4000);
      // The page in flight at the deadline may still reach the vault (the SDK sends nextLink requests without the
      // abort signal), but no page after it: with a page every 400 ms, 1.5 s of listing would show 3 more.
      await new Promise((resolve) => setTimeout(resolve, 600));
      const listedAfterFailure = listRequests('long-history').length;
      await new Promise((resolve) => setTimeout(resolve, 1500));
      expect(listRequests('long-history').length).toBe(listedAfterFailure);
      expect(listedAfterFailure).toBeLessThan(24 / PAGE_SIZE);
    } finally {
      azure.keyVault.delayMs = 0;
    }
  });
});
