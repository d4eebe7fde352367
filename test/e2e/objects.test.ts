/**
 * End to end: every Key Vault object kind and output format through the real provider process and socket,
 * with Azure replaced only at the network edge. What a pod gets is checked the way applications and operators check
 * it: Node's TLS stack loads the key and chain, the openssl CLI reads the files, and each certificate of a chain is
 * verified against the next.
 */
import { status as grpcStatus, type ServiceError } from '@grpc/grpc-js';
import { execFileSync } from 'node:child_process';
import { createPrivateKey, createPublicKey, X509Certificate, type JsonWebKey, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSecureContext } from 'node:tls';
import { startAzureStandIns, type AzureStandIns } from '../support/azure-standins';
import type { MountRequestInput, MountResult } from '../support/driver-client';
import { registerProviderCleanup, startProvider, type ProviderProcess } from '../support/provider-process';
import { objects, rejectionOf } from '../support/spc';
import { ecPublicKey, rsaPublicKey } from '../support/keys';

registerProviderCleanup();

const SYSTEM = 'node-system-identity';
const VAULT = 'objects-kv';
const PKCS12 = 'application/x-pkcs12';
const PEM_FILE = 'application/x-pem-file';
const FIXTURES = join(__dirname, '..', 'fixtures', 'content');
const fixture = (name: string): Buffer => readFileSync(join(FIXTURES, name));
const fixtureText = (name: string): string => fixture(name).toString('utf8');

let azure: AzureStandIns;
/** Default flags: --construct-pem-chain=true, no separate files. */
let provider: ProviderProcess;
/** --construct-pem-chain=false --write-cert-and-key-in-separate-files */
let split: ProviderProcess;
let work: string;
/** Version of every object stored, by `<type>/<name>`. */
const versions: Record<string, string> = {};

// ---- test material ---------------------------------------------------------------------------------------------

const KEYS: Array<{ name: string; kty: string; key: KeyObject }> = [
  { name: 'rsa-2048', kty: 'RSA', key: rsaPublicKey(2048) },
  { name: 'rsa-hsm-3072', kty: 'RSA-HSM', key: rsaPublicKey(3072) },
  { name: 'ec-p256', kty: 'EC', key: ecPublicKey('P-256') },
  { name: 'ec-hsm-p256', kty: 'EC-HSM', key: ecPublicKey('P-256') },
  { name: 'ec-p384', kty: 'EC', key: ecPublicKey('P-384') },
  { name: 'ec-hsm-p521', kty: 'EC-HSM', key: ecPublicKey('P-521') },
];

/**
 * Certificate-backed secrets, with the leaf private key and the chain expected after ordering.
 * - `kv-*`: built by the stand-in as Key Vault does (setCertificate: PFX with 3DES, or a PEM bundle), the chain
 *   stored in a shuffled order;
 * - the rest: PFX files written by OpenSSL, stored as they are: legacy (RC2-40 + 3DES, SHA-1 MAC) and modern
 *   (PBES2 AES-256-CBC, SHA-256 MAC), RSA and EC.
 */
const BACKED: Array<{ name: string; contentType: string; key: string; chain: string[]; stored: string[] }> = [
  { name: 'kv-rsa-pfx', contentType: PKCS12, key: 'c4-leaf', chain: ['c4-leaf', 'c4-int2', 'c4-int1', 'c4-root'], stored: ['c4-leaf', 'c4-root', 'c4-int1', 'c4-int2'] },
  // PEM is written as stored (no reordering), so this one is stored in chain order.
  { name: 'kv-ec-pem', contentType: PEM_FILE, key: 'ec-leaf', chain: ['ec-leaf', 'ec-int', 'ec-root'], stored: ['ec-leaf', 'ec-int', 'ec-root'] },
  { name: 'chain4-rc2', contentType: PKCS12, key: 'c4-leaf', chain: ['c4-leaf', 'c4-int2', 'c4-int1', 'c4-root'], stored: ['c4-leaf', 'c4-int1', 'c4-root', 'c4-int2'] },
  { name: 'chain4-aes256', contentType: PKCS12, key: 'c4-leaf', chain: ['c4-leaf', 'c4-int2', 'c4-int1', 'c4-root'], stored: ['c4-leaf', 'c4-int1', 'c4-root', 'c4-int2'] },
  { name: 'ec-rc2', contentType: PKCS12, key: 'ec-leaf', chain: ['ec-leaf', 'ec-int', 'ec-root'], stored: ['ec-leaf', 'ec-root', 'ec-int'] },
  { name: 'ec-aes256', contentType: PKCS12, key: 'ec-leaf', chain: ['ec-leaf', 'ec-int', 'ec-root'], stored: ['ec-leaf', 'ec-root', 'ec-int'] },
];
const PFX_FILES = BACKED.filter((b) => !b.name.startsWith('kv-')).map((b) => b.name);

// ---- helpers ---------------------------------------------------------------------------------------------------


function request(entries: string[]): MountRequestInput {
  return {
    attributes: {
      'csi.storage.k8s.io/pod.name': 'web-0',
      'csi.storage.k8s.io/pod.namespace': 'shop',
      'csi.storage.k8s.io/pod.uid': '1f2e3d4c',
      'csi.storage.k8s.io/serviceAccount.name': 'web',
      secretProviderClass: 'web-objects',
      useVMManagedIdentity: 'true',
      keyvaultName: VAULT,
      tenantID: azure.tenantId,
      objects: objects(entries),
    },
    permission: '420',
    targetPath: '/var/lib/kubelet/pods/1f2e3d4c/volumes/kubernetes.io~csi/objects/mount',
  };
}

async function mount(p: ProviderProcess, entries: string[]): Promise<MountResult & { file(path: string): Buffer }> {
  const result = await p.client.mount(request(entries));
  return {
    ...result,
    file(path: string): Buffer {
      const found = result.files.find((f) => f.path === path);
      if (!found) throw new Error(`no file ${path} in ${result.files.map((f) => f.path).join(', ')}`);
      return found.contents;
    },
  };
}

async function mountError(p: ProviderProcess, entries: string[]): Promise<ServiceError> {
  return rejectionOf(p.client.mount(request(entries)));
}

/** Runs the openssl CLI on `contents` written to a file; returns its stdout (throws with stderr on failure). */
function openssl(args: (file: string) => string[], contents: Buffer | string, name = 'input.pem'): string {
  const file = join(work, `${Date.now()}-${Math.random().toString(16).slice(2)}-${name}`);
  writeFileSync(file, contents);
  try {
    return execFileSync('openssl', args(file), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } finally {
    rmSync(file, { force: true });
  }
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\n[\s\S]*?\n-----END \1-----\n/g;
const labels = (pem: Buffer | string) => [...pem.toString().matchAll(PEM_BLOCK)].map((m) => m[1]);
const certificatesIn = (pem: Buffer | string) =>
  [...pem.toString().matchAll(PEM_BLOCK)].filter((m) => m[1] === 'CERTIFICATE').map((m) => new X509Certificate(m[0]));
const fixtureDer = (name: string) => new X509Certificate(fixture(`${name}.crt`)).raw;

/** Each certificate is issued (name and signature) by the next one; the last is self-signed. */
function expectLinkedChain(chain: X509Certificate[]): void {
  for (let i = 0; i + 1 < chain.length; i++) {
    expect(chain[i]!.issuer).toBe(chain[i + 1]!.subject);
    expect(chain[i]!.checkIssued(chain[i + 1]!)).toBe(true);
    expect(chain[i]!.verify(chain[i + 1]!.publicKey)).toBe(true);
  }
  const root = chain[chain.length - 1]!;
  expect(root.checkIssued(root)).toBe(true);
  expect(root.verify(root.publicKey)).toBe(true);
}

// ---- setup -----------------------------------------------------------------------------------------------------

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'csi-objects-e2e-'));
  azure = await startAzureStandIns({ identities: { systemAssigned: { id: SYSTEM } } });
  const kv = azure.keyVault;
  kv.addVault(VAULT, { allow: [SYSTEM] });

  for (const { name, kty, key } of KEYS) versions[`key/${name}`] = kv.setKey(VAULT, name, key.export({ format: 'jwk' }), { kty });
  kv.setKey(VAULT, 'aes-key', { kty: 'oct', k: 'c2VjcmV0LWtleS1tYXRlcmlhbC0xMjM0NTY3ODkwYWI' });
  kv.setKey(VAULT, 'aes-hsm-key', { kty: 'oct-HSM', k: 'c2VjcmV0LWtleS1tYXRlcmlhbC0xMjM0NTY3ODkwYWI' });
  const k1 = ecPublicKey('secp256k1').export({ format: 'jwk' });
  kv.setKey(VAULT, 'p256k-key', { ...k1, crv: 'P-256K' } as JsonWebKey);

  // Certificates created the Key Vault way: certificate + managed key + backing secret under one name and version.
  versions['cert/kv-rsa-pfx'] = kv.setCertificate(VAULT, 'kv-rsa-pfx', fixtureText('c4-leaf.crt'), {
    privateKeyPem: fixtureText('c4-leaf.key'),
    chainPem: ['c4-root', 'c4-int1', 'c4-int2'].map((n) => fixtureText(`${n}.crt`)),
  });
  versions['secret/kv-rsa-pfx'] = versions['cert/kv-rsa-pfx'];
  versions['cert/kv-ec-pem'] = kv.setCertificate(VAULT, 'kv-ec-pem', fixtureText('ec-leaf.crt'), {
    privateKeyPem: fixtureText('ec-leaf.key'),
    chainPem: ['ec-int', 'ec-root'].map((n) => fixtureText(`${n}.crt`)),
    secretContentType: PEM_FILE,
  });
  versions['secret/kv-ec-pem'] = versions['cert/kv-ec-pem'];
  // A leaf whose intermediates are missing: only the root comes with it.
  kv.setCertificate(VAULT, 'kv-gap', fixtureText('c4-leaf.crt'), {
    privateKeyPem: fixtureText('c4-leaf.key'),
    chainPem: [fixtureText('c4-root.crt')],
  });
  // PFX files from OpenSSL, stored as certificate-backed secrets (a kid makes them one).
  for (const name of PFX_FILES) {
    versions[`secret/${name}`] = kv.setSecret(VAULT, name, fixture(`${name}.p12`).toString('base64'), {
      contentType: PKCS12,
      kid: `https://${VAULT}.vault.azure.net/keys/${name}/0123456789abcdef0123456789abcdef`,
      managed: true,
    });
  }
  kv.setSecret(VAULT, 'odd-type', 'not a certificate', {
    contentType: 'application/pkix-cert',
    kid: `https://${VAULT}.vault.azure.net/keys/odd-type/0123456789abcdef0123456789abcdef`,
  });

  [provider, split] = await Promise.all([
    startProvider({ env: azure.providerEnv(), args: ['-v=5'] }),
    startProvider({ env: azure.providerEnv(), args: ['--construct-pem-chain=false', '--write-cert-and-key-in-separate-files', '-v=5'] }),
  ]);
});

afterAll(async () => {
  await Promise.all([provider?.stop(), split?.stop()]);
  await azure?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

// ---- keys ------------------------------------------------------------------------------------------------------

describe('objectType key', () => {
  it.each(KEYS.map((k) => [`${k.kty} ${k.name}`, k] as const))('%s → the public key as PEM PUBLIC KEY (SPKI)', async (_n, k) => {
    const result = await mount(provider, [`objectName: ${k.name}\nobjectType: key`]);
    const pem = result.file(k.name).toString();
    expect(pem).toBe(k.key.export({ type: 'spki', format: 'pem' }).toString());
    expect(labels(pem)).toEqual(['PUBLIC KEY']);
    expect(result.objectVersion).toEqual([{ id: `key/${k.name}`, version: versions[`key/${k.name}`] }]);
    // What openssl makes of it: the same key, re-encoded identically.
    expect(openssl((f) => ['pkey', '-pubin', '-in', f], pem)).toBe(pem);
  });

  it('mounts all key kinds together', async () => {
    const result = await mount(provider, KEYS.map((k) => `objectName: ${k.name}\nobjectType: key\nobjectAlias: keys/${k.name}.pem`));
    expect(result.files.map((f) => f.path)).toEqual(KEYS.map((k) => `keys/${k.name}.pem`));
  });

  it("writes a certificate's key (the managed key under the certificate's name)", async () => {
    const result = await mount(provider, ['objectName: kv-rsa-pfx\nobjectType: key']);
    const expected = new X509Certificate(fixture('c4-leaf.crt')).publicKey.export({ type: 'spki', format: 'pem' });
    expect(result.file('kv-rsa-pfx').toString()).toBe(expected);
    expect(result.objectVersion).toEqual([{ id: 'key/kv-rsa-pfx', version: versions['cert/kv-rsa-pfx'] }]);
  });

  it.each([
    ['oct', 'aes-key', 'key type "oct" is not supported'],
    ['oct-HSM', 'aes-hsm-key', 'key type "oct-HSM" is not supported'],
    ['P-256K', 'p256k-key', 'curve "P-256K" is not supported'],
  ])('fails InvalidArgument for %s, naming the type', async (_kind, name, fragment) => {
    const err = await mountError(provider, [`objectName: ${KEYS[0]!.name}\nobjectType: key`, `objectName: ${name}\nobjectType: key`]);
    expect(err.code).toBe(grpcStatus.INVALID_ARGUMENT);
    expect(err.details).toContain(`objects.array[1] (key "${name}")`);
    expect(err.details).toContain(fragment);
  });
});

// ---- certificates ----------------------------------------------------------------------------------------------

describe('objectType cert', () => {
  it.each([
    ['RSA', 'kv-rsa-pfx', 'c4-leaf'],
    ['EC', 'kv-ec-pem', 'ec-leaf'],
  ])('%s → the certificate as one PEM CERTIFICATE block', async (_kind, name, leaf) => {
    const result = await mount(provider, [`objectName: ${name}\nobjectType: cert\nobjectAlias: certs/${name}.crt`]);
    const pem = result.file(`certs/${name}.crt`);
    expect(labels(pem)).toEqual(['CERTIFICATE']);
    expect(new X509Certificate(pem).raw).toEqual(fixtureDer(leaf));
    expect(result.objectVersion).toEqual([{ id: `cert/${name}`, version: versions[`cert/${name}`] }]);
    const fingerprint = openssl((f) => ['x509', '-in', f, '-noout', '-fingerprint', '-sha256'], pem);
    expect(fingerprint.trim().split('=')[1]).toBe(new X509Certificate(fixture(`${leaf}.crt`)).fingerprint256);
  });
});

// ---- certificate-backed secrets --------------------------------------------------------------------------------

describe('objectType secret backed by a certificate', () => {
  describe.each(BACKED.map((b) => [b.name, b] as const))('%s', (name, b) => {
    it('PEM: the PKCS#8 key first, then leaf → intermediates → root, each issued by the next', async () => {
      const result = await mount(provider, [`objectName: ${name}\nobjectType: secret`]);
      const pem = result.file(name);
      expect(result.files).toHaveLength(1);
      expect(result.objectVersion).toEqual([{ id: `secret/${name}`, version: versions[`secret/${name}`] }]);
      expect(labels(pem)).toEqual(['PRIVATE KEY', ...b.chain.map(() => 'CERTIFICATE')]);

      const chain = certificatesIn(pem);
      expect(chain.map((c) => c.raw)).toEqual(b.chain.map(fixtureDer));
      expectLinkedChain(chain);
      // The key is the leaf's key.
      const key = createPrivateKey(pem);
      expect(createPublicKey(key).export({ type: 'spki', format: 'der' })).toEqual(chain[0]!.publicKey.export({ type: 'spki', format: 'der' }));
      expect(chain[0]!.checkPrivateKey(key)).toBe(true);

      // Node's TLS stack takes the one file as key and chain.
      expect(() => createSecureContext({ key: pem, cert: pem })).not.toThrow();
      // openssl reads the leaf and the key out of the same file, and verifies the chain it carries.
      expect(openssl((f) => ['x509', '-in', f, '-noout', '-subject'], pem).trim()).toBe('subject=CN = leaf.test');
      expect(openssl((f) => ['pkey', '-in', f, '-noout', '-text'], pem)).toMatch(/^Private-Key: \((2048|521) bit/);
      const [leaf, ...cas] = chain.map((c) => c.toString());
      const caFile = join(work, `${name}-root.pem`);
      const untrusted = join(work, `${name}-untrusted.pem`);
      writeFileSync(caFile, cas[cas.length - 1]!);
      writeFileSync(untrusted, cas.slice(0, -1).join('') || cas[cas.length - 1]!);
      const verified = openssl((f) => ['verify', '-CAfile', caFile, '-untrusted', untrusted, f], leaf!);
      expect(verified.trim()).toMatch(/: OK$/);
    });

    it('--construct-pem-chain=false keeps the stored order; separate files add <file>.crt and <file>.key', async () => {
      const result = await mount(split, [`objectName: ${name}\nobjectType: secret\nobjectAlias: tls/${name}.pem`]);
      expect(result.files.map((f) => f.path)).toEqual([`tls/${name}.pem`, `tls/${name}.pem.crt`, `tls/${name}.pem.key`]);
      const combined = result.file(`tls/${name}.pem`);
      const crt = result.file(`tls/${name}.pem.crt`);
      const key = result.file(`tls/${name}.pem.key`);
      expect(certificatesIn(crt).map((c) => c.raw)).toEqual(b.stored.map(fixtureDer));
      expect(labels(key)).toEqual(['PRIVATE KEY']);
      if (b.contentType === PKCS12) expect(combined.toString()).toBe(key.toString() + crt.toString());
      expect(() => createSecureContext({ key, cert: crt })).not.toThrow();
      expect(openssl((f) => ['pkey', '-in', f, '-noout'], key, 'tls.key')).toBe('');
      expect(openssl((f) => ['x509', '-in', f, '-noout', '-subject'], crt, 'tls.crt').trim()).toBe('subject=CN = leaf.test');
      expect(result.objectVersion).toEqual([{ id: `secret/${name}`, version: versions[`secret/${name}`] }]);
    });
  });

  it('writes a PEM-stored certificate exactly as stored', async () => {
    const result = await mount(split, ['objectName: kv-ec-pem\nobjectType: secret']);
    const stored = createPrivateKey(fixtureText('ec-leaf.key')).export({ type: 'pkcs8', format: 'pem' }).toString() +
      ['ec-leaf', 'ec-int', 'ec-root'].map((n) => fixtureText(`${n}.crt`).trim() + '\n').join('');
    expect(result.file('kv-ec-pem').toString()).toBe(stored);
  });

  it.each(PFX_FILES)('objectFormat pfx: %s as the stored base64 text, and as the binary PFX with objectEncoding base64', async (name) => {
    const result = await mount(split, [
      `objectName: ${name}\nobjectType: secret\nobjectFormat: pfx\nobjectAlias: ${name}.pfx.b64`,
      `objectName: ${name}\nobjectType: secret\nobjectFormat: PFX\nobjectEncoding: base64\nobjectAlias: ${name}.pfx`,
    ]);
    // With separate files on, PFX output comes with empty .crt/.key files, as the reference writes them.
    expect(result.files.map((f) => f.path)).toEqual([
      `${name}.pfx.b64`,
      `${name}.pfx.b64.crt`,
      `${name}.pfx.b64.key`,
      `${name}.pfx`,
      `${name}.pfx.crt`,
      `${name}.pfx.key`,
    ]);
    expect(result.file(`${name}.pfx.crt`)).toEqual(Buffer.alloc(0));
    expect(result.file(`${name}.pfx.key`)).toEqual(Buffer.alloc(0));
    expect(result.file(`${name}.pfx.b64`).toString()).toBe(fixture(`${name}.p12`).toString('base64'));
    expect(result.file(`${name}.pfx`)).toEqual(fixture(`${name}.p12`));
    const legacy = name.includes('rc2') ? ['-legacy'] : [];
    const certs = openssl((f) => ['pkcs12', '-in', f, '-passin', 'pass:', '-nokeys', ...legacy], result.file(`${name}.pfx`), 'x.pfx');
    expect(labels(certs).filter((l) => l === 'CERTIFICATE')).toHaveLength(name.startsWith('chain4') ? 4 : 3);
  });

  it('objectFormat pfx of a Key Vault PFX (3DES): openssl reads it without the legacy provider', async () => {
    const result = await mount(provider, ['objectName: kv-rsa-pfx\nobjectType: secret\nobjectFormat: pfx\nobjectEncoding: base64']);
    const info = openssl((f) => ['pkcs12', '-in', f, '-passin', 'pass:', '-nodes'], result.file('kv-rsa-pfx'), 'kv.pfx');
    expect(labels(info).sort()).toEqual(['CERTIFICATE', 'CERTIFICATE', 'CERTIFICATE', 'CERTIFICATE', 'PRIVATE KEY']);
  });

  it('keeps the stored order and logs a warning when the chain has a gap', async () => {
    const result = await mount(provider, ['objectName: kv-gap\nobjectType: secret']);
    expect(certificatesIn(result.file('kv-gap')).map((c) => c.raw)).toEqual(['c4-leaf', 'c4-root'].map(fixtureDer));
    // klog text quotes the message and escapes its quotes.
    await provider.waitForLog(/objects\.array\[0\] \(secret \\?"kv-gap\\?"\): the 2 certificates in the PFX do not form one chain/);
  });

  it.each<[string, string, string[]]>([
    ['a content type that is neither PFX nor PEM', 'objectName: odd-type\nobjectType: secret', ['(secret "odd-type")', 'content type "application/pkix-cert"']],
    ['objectEncoding hex for PFX output', 'objectName: chain4-aes256\nobjectType: secret\nobjectFormat: pfx\nobjectEncoding: hex', ['objectEncoding hex does not apply to objectFormat pfx']],
    ['objectFormat pfx on a cert object (before any call)', 'objectName: kv-rsa-pfx\nobjectType: cert\nobjectFormat: pfx', ['objectFormat pfx applies only to objectType secret']],
  ])('fails InvalidArgument whole for %s', async (_name, entry, fragments) => {
    const err = await mountError(provider, ['objectName: chain4-rc2\nobjectType: secret', entry]);
    expect(err.code).toBe(grpcStatus.INVALID_ARGUMENT);
    for (const fragment of fragments) expect(err.details).toContain(fragment);
  });

  it('a .crt/.key file that collides with a later object: the later one wins, as at the driver (issue 12)', async () => {
    const result = await mount(split, ['objectName: chain4-rc2\nobjectType: secret\nobjectAlias: tls', 'objectName: kv-rsa-pfx\nobjectType: cert\nobjectAlias: tls.crt']);
    expect(result.files.filter((f) => f.path === 'tls.crt')).toHaveLength(1);
    expect(result.file('tls.crt').toString()).toBe(fixtureText('c4-leaf.crt'));
    await split.waitForLog(/both write the file \\?"tls.crt\\?"/);
  });
});

describe('every kind in one mount', () => {
  it('returns all files with one object version per object', async () => {
    const result = await mount(split, [
      'objectName: kv-rsa-pfx\nobjectType: secret\nobjectAlias: tls/bundle.pem',
      'objectName: kv-rsa-pfx\nobjectType: cert\nobjectAlias: tls/cert.pem',
      'objectName: kv-rsa-pfx\nobjectType: key\nobjectAlias: tls/public.pem\nfilePermission: "0444"',
      `objectName: ${KEYS[2]!.name}\nobjectType: key`,
    ]);
    expect(result.files.map((f) => [f.path, f.mode])).toEqual([
      ['tls/bundle.pem', 0o644],
      ['tls/bundle.pem.crt', 0o644],
      ['tls/bundle.pem.key', 0o644],
      ['tls/cert.pem', 0o644],
      ['tls/public.pem', 0o444],
      [KEYS[2]!.name, 0o644],
    ]);
    expect(result.objectVersion).toEqual([
      { id: 'secret/kv-rsa-pfx', version: versions['secret/kv-rsa-pfx'] },
      { id: 'cert/kv-rsa-pfx', version: versions['cert/kv-rsa-pfx'] },
      { id: 'key/kv-rsa-pfx', version: versions['cert/kv-rsa-pfx'] },
      { id: `key/${KEYS[2]!.name}`, version: versions[`key/${KEYS[2]!.name}`] },
    ]);
  });

  it('never logs private key material', () => {
    const logs = provider.logs() + split.logs();
    expect(logs.length).toBeGreaterThan(0);
    for (const keyFile of ['c4-leaf.key', 'ec-leaf.key']) {
      const der = createPrivateKey(fixture(keyFile)).export({ type: 'pkcs8', format: 'der' }).toString('base64');
      for (let i = 0; i + 40 <= der.length; i += 200) expect(logs).not.toContain(der.slice(i, i + 40));
    }
    for (const name of PFX_FILES) expect(logs).not.toContain(fixture(`${name}.p12`).toString('base64').slice(100, 140));
  });
});
