/**
 * Differential parity: the reference provider (Azure's Go provider v1.8.2, built by test/k8s/build.sh) and ours run
 * side by side against the same stand-ins and get the same Mount requests; the files (paths, modes, bytes) and the
 * object versions must be equal, and bad input must fail on both. Every difference we make on purpose is listed in
 * KNOWN_DIFFERENCES with both sides' actual outputs, so any other difference fails this test.
 *
 * Two things are compared as the driver uses them, not as sent: files in path order (the driver writes each file of
 * the response; its order matters only when two share a path, which no case here does), and object versions as a set
 * (the driver keys them by id: the reference repeats an id once per file it writes, e.g. .crt and .key).
 */
import { status as grpcStatus, type ServiceError } from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as forge from 'node-forge';
import { referenceEnv, startImdsForwarder } from '../../bench/support/reference-provider';
import { startAzureStandIns, type AzureStandIns } from '../support/azure-standins';
import type { MountRequestInput, MountResult } from '../support/driver-client';
import { ecPublicKey, rsaPublicKey } from '../support/keys';
import { registerProviderCleanup, startProvider, type ProviderProcess } from '../support/provider-process';
import { objects } from '../support/spc';
import { makeCert, rsaKey, type TestCert } from '../unit/content/helpers';
import { referenceBinary } from './support/components';

registerProviderCleanup();

const NODE = 'parity-diff-node';
const VAULT = 'parity-diff-kv';
const DENIED_VAULT = 'parity-diff-denied';
const PKCS12 = 'application/x-pkcs12';
const CONTENT = join(__dirname, '..', 'fixtures', 'content');
const content = (name: string): Buffer => readFileSync(join(CONTENT, name));

/** The provider flags each variant runs with (the same on both sides). */
const VARIANTS = {
  default: [] as string[],
  noChain: ['--construct-pem-chain=false'],
  split: ['--write-cert-and-key-in-separate-files'],
} as const;
type Variant = keyof typeof VARIANTS;

let azure: AzureStandIns;
let forwarder: { url: string; close(): Promise<void> };
const ours = {} as Record<Variant, ProviderProcess>;
const reference = {} as Record<Variant, ProviderProcess>;
/** Version ids of `salt`, oldest first. */
let saltVersions: string[] = [];
/** Version ids of `rsa-key`, oldest first. */
const keyVersions: string[] = [];

const root = makeCert({ name: 'diff-root', key: rsaKey(30), ca: true });
const int = makeCert({ name: 'diff-int', key: rsaKey(31), issuer: root, ca: true });
const leaf = makeCert({ name: 'diff-leaf', key: rsaKey(32), issuer: int });
const keyPemOf = (c: TestCert): string => c.key.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
const UAI_CLIENT = '7e000000-0000-4000-8000-0000000000aa';
/** PEM bundles as Key Vault may store them (test/fixtures/parity/make-inputs.sh): CRLF, EC PARAMETERS, damaged, encrypted key. */
const PEM_BUNDLES = ['pem-crlf', 'pem-ec-params', 'pem-damaged', 'pem-encrypted-key'];
const PARITY = join(__dirname, '..', 'fixtures', 'parity');
const BINARY = Buffer.from([0, 1, 2, 0xfe, 0xff, 0x80, 0x7f, 10, 13, 0]);

function request(entries: string[], extra: Record<string, string>): MountRequestInput {
  return {
    attributes: {
      'csi.storage.k8s.io/pod.name': 'web-0',
      'csi.storage.k8s.io/pod.namespace': 'shop',
      'csi.storage.k8s.io/pod.uid': '0d1f7c6e',
      'csi.storage.k8s.io/serviceAccount.name': 'web',
      secretProviderClass: 'parity-diff',
      useVMManagedIdentity: 'true',
      keyvaultName: VAULT,
      tenantID: azure.tenantId,
      objects: objects(entries),
      ...extra,
    },
    permission: '420',
    targetPath: '/var/lib/kubelet/pods/0d1f7c6e/volumes/kubernetes.io~csi/parity-diff/mount',
  };
}

/** What one side answered: the whole response, or the failure's status class. */
type Outcome =
  | { ok: true; files: Array<{ path: string; mode: string; contents: string }>; objectVersion: Array<{ id: string; version: string }>; error: string }
  | { ok: false; code: string };

const codeName = (code: number): string => Object.entries(grpcStatus).find(([, v]) => v === code)?.[0] ?? String(code);

async function outcome(p: ProviderProcess, req: MountRequestInput): Promise<Outcome> {
  try {
    const r: MountResult = await p.client.mount(req);
    const byId = new Map(r.objectVersion.map((v) => [`${v.id}\0${v.version}`, v]));
    return {
      ok: true,
      // Contents in base64: equal strings are equal bytes, and a failure shows them readably enough.
      files: r.files
        .map((f) => ({ path: f.path, mode: f.mode.toString(8), contents: f.contents.toString('base64') }))
        .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)),
      objectVersion: [...byId.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)),
      error: r.error?.code ?? '',
    };
  } catch (err) {
    return { ok: false, code: codeName((err as ServiceError).code) };
  }
}

/** A short form of an outcome for the table of known differences: `path mode` per file, or the failure's status. */
const summary = (o: Outcome): string[] | string => (o.ok ? o.files.map((f) => `${f.path} ${f.mode}`) : o.code);

interface Case {
  name: string;
  entries: string[];
  extra?: Record<string, string>;
  variant?: Variant;
}

const obj = (fields: Record<string, string | number>): string =>
  Object.entries(fields)
    .map(([k, v]) => `${k}: ${typeof v === 'number' ? v : JSON.stringify(v)}`)
    .join('\n');

/** Requests that mount on both sides. */
const MOUNTS: Case[] = [
  { name: 'text secret', entries: [obj({ objectName: 'text', objectType: 'secret' })] },
  { name: 'multi-line secret, alias, file mode', entries: [obj({ objectName: 'multiline', objectType: 'secret', objectAlias: 'conf/app.ini', filePermission: '0600' })] },
  { name: 'base64 secret, objectEncoding base64', entries: [obj({ objectName: 'blob', objectType: 'secret', objectEncoding: 'base64' })] },
  { name: 'base64 secret, no encoding (as stored)', entries: [obj({ objectName: 'blob', objectType: 'secret' })] },
  { name: 'hex secret, objectEncoding hex', entries: [obj({ objectName: 'hexblob', objectType: 'secret', objectEncoding: 'hex' })] },
  { name: 'unicode secret, objectEncoding utf-8', entries: [obj({ objectName: 'unicode', objectType: 'secret', objectEncoding: 'utf-8' })] },
  { name: 'objectVersion', entries: [obj({ objectName: 'salt', objectType: 'secret', objectVersion: '@salt1' })] },
  { name: 'several objects in one mount', entries: [obj({ objectName: 'text', objectType: 'secret' }), obj({ objectName: 'rsa-key', objectType: 'key' }), obj({ objectName: 'web', objectType: 'cert' })] },
  { name: 'RSA key', entries: [obj({ objectName: 'rsa-key', objectType: 'key' })] },
  { name: 'EC key', entries: [obj({ objectName: 'ec-key', objectType: 'key', objectAlias: 'ec.pub' })] },
  { name: 'cert (public certificate)', entries: [obj({ objectName: 'web', objectType: 'cert' })] },
  { name: 'RSA PFX, chain stored out of order', entries: [obj({ objectName: 'web', objectType: 'secret' })] },
  { name: 'RSA PFX, chain out of order, no chain construction', entries: [obj({ objectName: 'web', objectType: 'secret' })], variant: 'noChain' },
  { name: 'RSA PFX, objectFormat pfx', entries: [obj({ objectName: 'web', objectType: 'secret', objectFormat: 'pfx' })] },
  { name: 'RSA PFX, objectFormat pfx, objectEncoding base64', entries: [obj({ objectName: 'web', objectType: 'secret', objectFormat: 'pfx', objectEncoding: 'base64' })] },
  { name: 'RSA PFX, separate cert and key files', entries: [obj({ objectName: 'web', objectType: 'secret' })], variant: 'split' },
  { name: 'RSA PFX, objectFormat pem', entries: [obj({ objectName: 'web', objectType: 'secret', objectFormat: 'pem' })] },
  { name: 'EC PFX (legacy 3DES)', entries: [obj({ objectName: 'ec-web', objectType: 'secret' })] },
  { name: 'EC PFX, no chain construction', entries: [obj({ objectName: 'ec-web', objectType: 'secret' })], variant: 'noChain' },
  { name: 'EC PFX, separate files', entries: [obj({ objectName: 'ec-web', objectType: 'secret' })], variant: 'split' },
  { name: 'PEM-stored certificate', entries: [obj({ objectName: 'pem-web', objectType: 'secret' })] },
  { name: 'PEM-stored certificate, no chain construction', entries: [obj({ objectName: 'pem-web', objectType: 'secret' })], variant: 'noChain' },
  { name: 'PEM-stored certificate, separate files', entries: [obj({ objectName: 'pem-web', objectType: 'secret' })], variant: 'split' },
  { name: 'objectVersionHistory 2', entries: [obj({ objectName: 'salt', objectType: 'secret', objectVersionHistory: 2 })] },
  { name: 'objectVersionHistory 3 from objectVersion', entries: [obj({ objectName: 'salt', objectType: 'secret', objectVersionHistory: 3, objectVersion: '@salt2' })] },
  { name: 'objectVersionHistory above the versions there are', entries: [obj({ objectName: 'salt', objectType: 'secret', objectVersionHistory: 10 })] },
  { name: 'objectVersionHistory with alias', entries: [obj({ objectName: 'salt', objectType: 'secret', objectVersionHistory: 2, objectAlias: 'salts' })] },
  { name: 'objectVersionHistory 1 (a plain mount)', entries: [obj({ objectName: 'salt', objectType: 'secret', objectVersionHistory: 1 })] },
  { name: 'objectVersionHistory on a PFX, objectFormat pfx', entries: [obj({ objectName: 'web', objectType: 'secret', objectVersionHistory: 2, objectFormat: 'pfx' })] },
  { name: 'cert, no chain construction', entries: [obj({ objectName: 'web', objectType: 'cert' })], variant: 'noChain' },
  { name: 'key, separate files', entries: [obj({ objectName: 'rsa-key', objectType: 'key' })], variant: 'split' },
  { name: 'filePermission 0400 and permission from the request', entries: [obj({ objectName: 'text', objectType: 'secret', filePermission: '0400' }), obj({ objectName: 'multiline', objectType: 'secret' })] },
  { name: 'EC P-384 and P-521 keys, RSA-HSM key', entries: [obj({ objectName: 'ec384', objectType: 'key' }), obj({ objectName: 'ec521', objectType: 'key' }), obj({ objectName: 'rsa-hsm', objectType: 'key' })] },
  { name: 'key objectVersion (older)', entries: [obj({ objectName: 'rsa-key', objectType: 'key', objectVersion: '@key0' })] },
  { name: 'key objectVersionHistory', entries: [obj({ objectName: 'rsa-key', objectType: 'key', objectVersionHistory: 2 })] },
  { name: 'cert objectVersionHistory', entries: [obj({ objectName: 'web', objectType: 'cert', objectVersionHistory: 3 })] },
  { name: 'PFX with alias and mode, separate files', entries: [obj({ objectName: 'web', objectType: 'secret', objectAlias: 'tls/server.pem', filePermission: '0640' })], variant: 'split' },
  { name: 'PEM text in a plain secret (content type pem, no kid)', entries: [obj({ objectName: 'plain-pem', objectType: 'secret' })] },
  { name: 'secret value with surrounding whitespace', entries: [obj({ objectName: 'spaced', objectType: 'secret' })] },
  { name: 'objectFormat pem on a plain secret', entries: [obj({ objectName: 'text', objectType: 'secret', objectFormat: 'pem' })] },
  { name: 'no objects', entries: [] },
  { name: 'objectVersionHistory 0', entries: [obj({ objectName: 'salt', objectType: 'secret', objectVersionHistory: 0 })] },
  { name: 'userAssignedIdentityID (client id)', entries: [obj({ objectName: 'text', objectType: 'secret' })], extra: { userAssignedIdentityID: UAI_CLIENT } },
  { name: 'legacy PFX files (RC2-40, 3DES): RSA, EC, a chain of four', entries: ['rsa-rc2', 'ec-rc2', 'chain4-rc2', 'ec-nopub'].map((n) => obj({ objectName: n, objectType: 'secret' })) },
  { name: 'legacy PFX files, no chain construction', entries: ['rsa-rc2', 'ec-rc2', 'chain4-rc2'].map((n) => obj({ objectName: n, objectType: 'secret' })), variant: 'noChain' },
  { name: 'legacy PFX files, separate files', entries: ['rsa-rc2', 'ec-rc2', 'chain4-rc2', 'ec-nopub'].map((n) => obj({ objectName: n, objectType: 'secret' })), variant: 'split' },
  ...PEM_BUNDLES.flatMap((n): Case[] => [
    { name: `PEM bundle ${n}`, entries: [obj({ objectName: n, objectType: 'secret' })] },
    { name: `PEM bundle ${n}, separate files`, entries: [obj({ objectName: n, objectType: 'secret' })], variant: 'split' },
    { name: `PEM bundle ${n}, no chain construction`, entries: [obj({ objectName: n, objectType: 'secret' })], variant: 'noChain' },
  ]),
  // Deliberate differences (README): more accepted, never less.
  { name: 'filePermission "0o600"', entries: [obj({ objectName: 'text', objectType: 'secret', filePermission: '0o600' })] },
  { name: 'objectType in another case (Secret)', entries: [obj({ objectName: 'text', objectType: 'Secret' })] },
  { name: 'objectVersionHistory quoted ("2")', entries: [obj({ objectName: 'salt', objectType: 'secret', objectVersionHistory: '2' })] },
  { name: 'objectEncoding utf-8 on a key', entries: [obj({ objectName: 'rsa-key', objectType: 'key', objectEncoding: 'utf-8' })] },
  { name: 'a PFX the reference cannot read (AES-256)', entries: [obj({ objectName: 'rsa-aes', objectType: 'secret' })] },
];

/** Requests that must fail on both sides. */
const FAILURES: Case[] = [
  { name: 'unknown objectType', entries: [obj({ objectName: 'text', objectType: 'blob' })] },
  { name: 'bad objectEncoding', entries: [obj({ objectName: 'text', objectType: 'secret', objectEncoding: 'base32' })] },
  { name: 'missing keyvaultName', entries: [obj({ objectName: 'text', objectType: 'secret' })], extra: { keyvaultName: '' } },
  { name: 'an object that does not exist (404)', entries: [obj({ objectName: 'no-such-secret', objectType: 'secret' })] },
  { name: 'objectVersion that does not exist', entries: [obj({ objectName: 'text', objectType: 'secret', objectVersion: 'ffffffffffffffffffffffffffffffff' })] },
  { name: 'objectEncoding base64 on a value that is not base64', entries: [obj({ objectName: 'multiline', objectType: 'secret', objectEncoding: 'base64' })] },
  { name: 'objectEncoding hex on a value that is not hex', entries: [obj({ objectName: 'text', objectType: 'secret', objectEncoding: 'hex' })] },
  { name: 'objectEncoding on a PFX (hex)', entries: [obj({ objectName: 'web', objectType: 'secret', objectEncoding: 'hex' })] },
  { name: 'unknown objectFormat', entries: [obj({ objectName: 'web', objectType: 'secret', objectFormat: 'der' })] },
  { name: 'a vault that denies the identity (403)', entries: [obj({ objectName: 'text', objectType: 'secret' })], extra: { keyvaultName: DENIED_VAULT } },
];

/**
 * Where ours differs from the reference on purpose (README, "Deliberate differences"): both sides' actual outputs,
 * as file paths or the failure's gRPC status.
 */
const KNOWN_DIFFERENCES: Record<string, { why: string; reference: string[] | string; ours: string[] | string }> = {
  'objectVersionHistory 2': {
    why: 'the reference writes N+1 versions when enough exist (its loop stops one late); we write exactly N',
    reference: ['salt/0 644', 'salt/1 644', 'salt/2 644'],
    ours: ['salt/0 644', 'salt/1 644'],
  },
  'objectVersionHistory with alias': {
    why: 'the same N+1, under the alias folder',
    reference: ['salts/0 644', 'salts/1 644', 'salts/2 644'],
    ours: ['salts/0 644', 'salts/1 644'],
  },
  // The reference returns plain Go errors (status Unknown) for every failure; ours say what kind of failure it is.
  // The driver fails the mount on any status, so only people (and dashboards by grpc_code) see the difference.
  'unknown objectType': { why: 'a class error is InvalidArgument', reference: 'UNKNOWN', ours: 'INVALID_ARGUMENT' },
  'bad objectEncoding': { why: 'a class error is InvalidArgument', reference: 'UNKNOWN', ours: 'INVALID_ARGUMENT' },
  'missing keyvaultName': { why: 'a class error is InvalidArgument', reference: 'UNKNOWN', ours: 'INVALID_ARGUMENT' },
  'an object that does not exist (404)': { why: "Key Vault's 404 is NotFound", reference: 'UNKNOWN', ours: 'NOT_FOUND' },
  'a vault that denies the identity (403)': { why: "Key Vault's 403 is PermissionDenied", reference: 'UNKNOWN', ours: 'PERMISSION_DENIED' },
  'objectVersion that does not exist': { why: "Key Vault's 404 is NotFound", reference: 'UNKNOWN', ours: 'NOT_FOUND' },
  'objectEncoding base64 on a value that is not base64': { why: 'a value the class cannot decode is InvalidArgument', reference: 'UNKNOWN', ours: 'INVALID_ARGUMENT' },
  'objectEncoding hex on a value that is not hex': { why: 'a value the class cannot decode is InvalidArgument', reference: 'UNKNOWN', ours: 'INVALID_ARGUMENT' },
  // The reference hex-decodes the PEM it made from the PFX, which cannot succeed; ours refuses the class.
  'objectEncoding on a PFX (hex)': { why: 'a class error is InvalidArgument', reference: 'UNKNOWN', ours: 'INVALID_ARGUMENT' },
  'unknown objectFormat': { why: 'a class error is InvalidArgument', reference: 'UNKNOWN', ours: 'INVALID_ARGUMENT' },
  // More accepted, never less: what the reference refuses or gets wrong, and a working manifest never has.
  'filePermission "0o600"': { why: 'the reference cannot parse the 0o prefix and writes mode 0', reference: ['text 0'], ours: ['text 600'] },
  'objectType in another case (Secret)': { why: 'objectType in any case', reference: 'UNKNOWN', ours: ['text 644'] },
  'objectVersionHistory quoted ("2")': { why: 'a quoted number is the number', reference: 'UNKNOWN', ours: ['salt/0 644', 'salt/1 644'] },
  'objectEncoding utf-8 on a key': { why: 'utf-8 is what a key or certificate is written as anyway', reference: 'UNKNOWN', ours: ['rsa-key 644'] },
  'a PFX the reference cannot read (AES-256)': {
    why: 'golang.org/x/crypto/pkcs12 reads only the legacy PKCS#12 forms; ours reads PBES2 (what OpenSSL 3 writes)',
    reference: 'UNKNOWN',
    ours: ['rsa-aes 644'],
  },
};

/** A known difference: both sides' actual outputs as listed (paths and modes), and every file both write has the same bytes. */
function expectKnownDifference(name: string, theirs: Outcome, mine: Outcome): void {
  const known = KNOWN_DIFFERENCES[name]!;
  expect({ reference: summary(theirs), ours: summary(mine) }).toEqual({ reference: known.reference, ours: known.ours });
  if (!theirs.ok || !mine.ok) return;
  for (const f of mine.files) expect(f.contents).toEqual(theirs.files.find((t) => t.path === f.path)?.contents);
  for (const v of mine.objectVersion) expect(theirs.objectVersion).toContainEqual(v);
}

beforeAll(async () => {
  const binary = referenceBinary();
  azure = await startAzureStandIns({
    identities: { systemAssigned: { id: NODE }, userAssigned: [{ id: 'parity-diff-uai', clientId: UAI_CLIENT, resourceId: '/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/diff' }] },
  });
  forwarder = await startImdsForwarder(azure.imds.url);
  const kv = azure.keyVault;
  kv.addVault(VAULT, { allow: [NODE, 'parity-diff-uai'] });
  kv.addVault(DENIED_VAULT, { allow: [] });
  kv.setSecret(VAULT, 'text', 'hunter2');
  kv.setSecret(VAULT, 'multiline', 'line one\nline two\r\n\n  indented\n');
  kv.setSecret(VAULT, 'blob', BINARY.toString('base64'), { contentType: 'application/octet-stream' });
  kv.setSecret(VAULT, 'hexblob', BINARY.toString('hex'));
  kv.setSecret(VAULT, 'unicode', 'grüße, 日本, 🙂');
  saltVersions = [0, 1, 2, 3].map((i) => kv.setSecret(VAULT, 'salt', `salt-${i}`));
  keyVersions.push(kv.setKey(VAULT, 'rsa-key', rsaPublicKey(2048).export({ format: 'jwk' })));
  kv.setKey(VAULT, 'ec-key', ecPublicKey('P-256').export({ format: 'jwk' }));
  kv.setKey(VAULT, 'ec384', ecPublicKey('P-384').export({ format: 'jwk' }));
  kv.setKey(VAULT, 'ec521', ecPublicKey('P-521').export({ format: 'jwk' }));
  kv.setKey(VAULT, 'rsa-hsm', rsaPublicKey(3072, 3).export({ format: 'jwk' }), { kty: 'RSA-HSM' });
  keyVersions.push(kv.setKey(VAULT, 'rsa-key', rsaPublicKey(2048).export({ format: 'jwk' })));
  kv.setSecret(VAULT, 'plain-pem', root.pem, { contentType: 'application/x-pem-file' });
  kv.setSecret(VAULT, 'spaced', '  padded value \n\n');
  kv.setCertificate(VAULT, 'web', int.pem, { privateKeyPem: forge.pki.privateKeyToPem(int.key.forgePrivate), chainPem: [root.pem] });
  // A PFX whose chain is stored root first: the leaf, then root, then intermediate.
  kv.setCertificate(VAULT, 'web', leaf.pem, { privateKeyPem: forge.pki.privateKeyToPem(leaf.key.forgePrivate), chainPem: [root.pem, int.pem] });
  kv.setCertificate(VAULT, 'pem-web', leaf.pem, { privateKeyPem: keyPemOf(leaf), chainPem: [root.pem, int.pem], secretContentType: 'application/x-pem-file' });
  kv.setSecret(VAULT, 'rsa-aes', content('rsa-aes256.p12').toString('base64'), {
    contentType: PKCS12,
    kid: `https://${VAULT}.vault.azure.net/keys/rsa-aes/0123456789abcdef0123456789abcdef`,
    managed: true,
  });
  const backing = (name: string, value: string, contentType: string): void => {
    kv.setSecret(VAULT, name, value, { contentType, kid: `https://${VAULT}.vault.azure.net/keys/${name}/0123456789abcdef0123456789abcdef`, managed: true });
  };
  for (const n of ['rsa-rc2', 'ec-rc2', 'chain4-rc2']) backing(n, content(`${n}.p12`).toString('base64'), PKCS12);
  backing('ec-nopub', readFileSync(join(PARITY, 'ec-nopub.p12')).toString('base64'), PKCS12);
  for (const n of PEM_BUNDLES) backing(n, readFileSync(join(PARITY, `${n}.pem`), 'utf8'), 'application/x-pem-file');
  kv.setCertificate(VAULT, 'ec-web', content('ec-leaf.crt'));
  kv.setSecret(VAULT, 'ec-web', content('ec-3des.p12').toString('base64'), {
    contentType: PKCS12,
    kid: `https://${VAULT}.vault.azure.net/keys/ec-web/0123456789abcdef0123456789abcdef`,
    managed: true,
  });
  const env = referenceEnv(azure, forwarder.url);
  const started = await Promise.all(
    (Object.keys(VARIANTS) as Variant[]).flatMap((v) => [
      startProvider({ env: azure.providerEnv(), args: [...VARIANTS[v]] }).then((p) => (ours[v] = p)),
      startProvider({ env, args: [...VARIANTS[v]], wrapCommand: (argv) => [binary, ...argv.slice(2)] }).then((p) => (reference[v] = p)),
    ]),
  );
  expect(started).toHaveLength(6);
});

afterAll(async () => {
  await Promise.all([...Object.values(ours), ...Object.values(reference)].map((p) => p.stop()));
  await forwarder?.close();
  await azure?.close();
});

/** `@saltN` / `@keyN` in an entry is the Nth version id of `salt` / `rsa-key` (known once the vault is filled). */
function resolve(c: Case): MountRequestInput {
  const entries = c.entries.map((e) =>
    e.replace(/@salt(\d)/g, (_, i: string) => saltVersions[Number(i)]!).replace(/@key(\d)/g, (_, i: string) => keyVersions[Number(i)]!),
  );
  return request(entries, c.extra ?? {});
}

async function both(c: Case): Promise<{ theirs: Outcome; mine: Outcome }> {
  const variant = c.variant ?? 'default';
  const req = resolve(c);
  const [theirs, mine] = await Promise.all([outcome(reference[variant], req), outcome(ours[variant], req)]);
  return { theirs, mine };
}

describe('the same files and object versions as the reference', () => {
  it.each(MOUNTS.map((c) => [c.name, c] as const))('%s', async (name, c) => {
    const { theirs, mine } = await both(c);
    if (name in KNOWN_DIFFERENCES) return expectKnownDifference(name, theirs, mine);
    expect(theirs.ok).toBe(true);
    expect(mine).toEqual(theirs);
  });
});

describe('the two sides are the two providers', () => {
  it('the reference reports v1.8.2, ours its own version', async () => {
    const [theirs, mine] = await Promise.all([reference.default.client.version(), ours.default.client.version()]);
    expect(theirs.runtimeVersion).toBe('v1.8.2');
    expect(mine.runtimeVersion).not.toBe('v1.8.2');
  });
});

describe('the table of known differences names only cases that exist', () => {
  it('every entry is a case', () => {
    const names = new Set([...MOUNTS, ...FAILURES].map((c) => c.name));
    expect(Object.keys(KNOWN_DIFFERENCES).filter((n) => !names.has(n))).toEqual([]);
  });
});

describe('bad input fails on both sides', () => {
  it.each(FAILURES.map((c) => [c.name, c] as const))('%s', async (name, c) => {
    const { theirs, mine } = await both(c);
    if (name in KNOWN_DIFFERENCES) return expectKnownDifference(name, theirs, mine);
    expect(theirs.ok).toBe(false);
    expect(mine).toEqual(theirs);
  });
});
