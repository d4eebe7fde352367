/**
 * End to end: objects entries that select secrets by objectNamePrefix, objectNameRegex and objectTags, through the
 * real provider process and socket, Key Vault replaced at the network edge (listing pages of 2 secrets, so every
 * listing follows nextLinks as with a real vault's 25).
 */
import { status as grpcStatus } from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { startAzureStandIns, type AzureStandIns } from '../support/azure-standins';
import type { MountRequestInput, MountResult } from '../support/driver-client';
import { registerProviderCleanup, startProvider, type ProviderProcess } from '../support/provider-process';
import { objects, rejectionOf } from '../support/spc';

registerProviderCleanup();

const SYSTEM = 'selection-system-identity';
const VAULT = 'selection-kv';
const OTHER = 'selection-other-kv';
/** Vaults the node's identity may not read (nor list), one per access model. */
const LOCKED_RBAC = 'selection-rbac-kv';
const LOCKED_POLICY = 'selection-policy-kv';
/** A vault with more secrets than a selection lists (80 pages of 2 here). */
const HUGE = 'selection-huge-kv';
/** Values that must never appear in a message or a log line. */
const CANARY = 'canary-51d0c2e4-secret';
const TAG_CANARY = 'tag-canary-9a8b7c6d';
const FIXTURES = join(__dirname, '..', 'fixtures', 'content');
const fixtureText = (name: string): string => readFileSync(join(FIXTURES, name), 'utf8');

let azure: AzureStandIns;
let provider: ProviderProcess;

function request(entries: string[], vault = VAULT): MountRequestInput {
  return {
    attributes: {
      'csi.storage.k8s.io/pod.name': 'shop-0',
      'csi.storage.k8s.io/pod.namespace': 'shop',
      'csi.storage.k8s.io/pod.uid': '9c8d7e6f',
      'csi.storage.k8s.io/serviceAccount.name': 'shop',
      secretProviderClass: 'shop-selection',
      useVMManagedIdentity: 'true',
      keyvaultName: vault,
      tenantID: azure.tenantId,
      objects: objects(entries),
    },
    permission: '420',
    targetPath: '/var/lib/kubelet/pods/9c8d7e6f/volumes/kubernetes.io~csi/selection/mount',
  };
}

const mount = (entries: string[], vault = VAULT): Promise<MountResult> => provider.client.mount(request(entries, vault));
const fileNames = (result: MountResult): string[] => result.files.map((f) => f.path).sort();
const text = (result: MountResult, path: string): string => {
  const file = result.files.find((f) => f.path === path);
  if (!file) throw new Error(`no file ${path} in ${fileNames(result).join(', ')}`);
  return file.contents.toString('utf8');
};
const latest = (vault: string, name: string): string => azure.keyVault.versions(vault, 'secret', name).at(-1)!;

beforeAll(async () => {
  azure = await startAzureStandIns({ identities: { systemAssigned: { id: SYSTEM } }, pageSize: 2 });
  const kv = azure.keyVault;
  kv.addVault(VAULT, { allow: [SYSTEM] });
  kv.addVault(OTHER, { allow: [SYSTEM] });
  kv.addVault(LOCKED_RBAC, { allow: [], accessModel: 'rbac' });
  kv.addVault(LOCKED_POLICY, { allow: [] });
  kv.setSecret(VAULT, 'app-db', `db-${CANARY}`, { tags: { team: 'shop', owner: TAG_CANARY } });
  kv.setSecret(VAULT, 'App-Cache', 'cache-value', { tags: { team: 'shop' } });
  kv.setSecret(VAULT, 'app-off', 'off-value', { enabled: false });
  kv.setSecret(VAULT, 'app-old', 'old-value', { expires: Math.floor(Date.now() / 1000) - 3600 });
  kv.setSecret(VAULT, 'app-later', 'later-value', { notBefore: Math.floor(Date.now() / 1000) + 86_400 });
  kv.setSecret(VAULT, 'billing-db', 'billing-value', { tags: { team: 'billing' } });
  kv.setSecret(VAULT, 'svc-db', 'svc-db-value', { tags: { team: 'shop', env: 'prod' } });
  kv.setSecret(VAULT, 'svc-cache', 'svc-cache-value', { tags: { team: 'shop', env: 'dev' } });
  kv.setSecret(VAULT, 'svc-web', 'svc-web-value', { tags: { team: 'shop', env: 'prod' } });
  // A certificate created the Key Vault way: its backing secret (managed, PEM bundle, kid) is listed with the secrets.
  kv.setCertificate(VAULT, 'app-tls', fixtureText('ec-leaf.crt'), {
    privateKeyPem: fixtureText('ec-leaf.key'),
    chainPem: ['ec-int', 'ec-root'].map((n) => fixtureText(`${n}.crt`)),
    secretContentType: 'application/x-pem-file',
  });
  for (let i = 0; i < 12; i++) kv.setSecret(VAULT, `bulk-${String(i).padStart(2, '0')}`, `bulk-value-${i}`);
  kv.setSecret(OTHER, 'app-db', 'other-vault-db');
  kv.addVault(HUGE, { allow: [SYSTEM] });
  for (let i = 0; i < 170; i++) kv.setSecret(HUGE, `many-${String(i).padStart(3, '0')}`, 'v');
  kv.setSecret(LOCKED_RBAC, 'app-db', 'hidden');
  kv.setSecret(LOCKED_POLICY, 'app-db', 'hidden');
  provider = await startProvider({ env: azure.providerEnv(), args: ['-v=5'] });
});

afterAll(async () => {
  await provider?.stop();
  await azure?.close();
});

describe('objectNamePrefix', () => {
  it('writes every enabled, valid secret with the prefix as <prefix>/<name>, a certificate-backed one as PEM', async () => {
    const result = await mount(['objectNamePrefix: app-']);
    // app-off (disabled), app-old (expired) and app-later (not yet valid) are left out.
    expect(fileNames(result)).toEqual(['app-/App-Cache', 'app-/app-db', 'app-/app-tls']);
    expect(text(result, 'app-/app-db')).toBe(`db-${CANARY}`);
    expect(text(result, 'app-/App-Cache')).toBe('cache-value');
    // The certificate's secret goes the certificate path: the private key, then the leaf and its chain.
    const tls = text(result, 'app-/app-tls');
    expect(tls).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    expect(new X509Certificate(tls).subject).toBe(new X509Certificate(fixtureText('ec-leaf.crt')).subject);
    // Versions in name order (without regard to case), then the selection's own.
    expect(result.objectVersion.map((v) => v.id)).toEqual(['secret/App-Cache', 'secret/app-db', 'secret/app-tls', 'select/app-']);
    expect(result.objectVersion[1]).toEqual({ id: 'secret/app-db', version: latest(VAULT, 'app-db') });
    expect(result.objectVersion[3]!.version).toMatch(/^[0-9a-f]{32}$/);
    await provider.waitForLog(/matching secrets left out: \\?"app-off\\?" \(disabled\), \\?"app-old\\?" \(expired\), \\?"app-later\\?" \(not yet valid\)/);
  });

  it('with objectAlias, filePermission and fileNameTemplate: the folder, the mode and the file name are the user\'s', async () => {
    const result = await mount(['objectNamePrefix: svc-\nobjectAlias: conf/svc\nfilePermission: "0400"\nfileNameTemplate: "{nameWithoutPrefix}.txt"']);
    expect(fileNames(result)).toEqual(['conf/svc/cache.txt', 'conf/svc/db.txt', 'conf/svc/web.txt']);
    expect(result.files.every((f) => f.mode === 0o400)).toBe(true);
    expect(text(result, 'conf/svc/db.txt')).toBe('svc-db-value');
  });

  it('keyvaultName: lists and reads the entry\'s own vault', async () => {
    const result = await mount([`objectNamePrefix: app-\nkeyvaultName: ${OTHER}`]);
    expect(fileNames(result)).toEqual(['app-/app-db']);
    expect(text(result, 'app-/app-db')).toBe('other-vault-db');
    expect(result.objectVersion.map((v) => v.id)).toEqual([`secret/${OTHER}/app-db`, `select/${OTHER}/app-`]);
  });
});

describe('objectNameRegex and objectTags', () => {
  it('an RE2 pattern and every tag must match', async () => {
    const result = await mount(['objectNameRegex: "^svc-(db|web)$"\nobjectTags:\n  team: shop\n  env: prod\nobjectAlias: prod']);
    expect(fileNames(result)).toEqual(['prod/svc-db', 'prod/svc-web']);
  });

  it('tags alone select across names; a tag value is matched exactly', async () => {
    const result = await mount(['objectTags:\n  team: shop\nobjectAlias: shop\nmaxObjects: 20']);
    expect(fileNames(result)).toEqual(['shop/App-Cache', 'shop/app-db', 'shop/svc-cache', 'shop/svc-db', 'shop/svc-web']);
    const none = await mount(['objectTags:\n  team: SHOP\nobjectAlias: shop', 'objectName: billing-db\nobjectType: secret']);
    expect(fileNames(none)).toEqual(['billing-db']);
    expect(none.objectVersion.map((v) => v.id)).toEqual(['secret/billing-db', 'select/shop']);
  });

  it('sits beside named objects and writeTags, and the files of both come back', async () => {
    const result = await mount(['objectName: billing-db\nobjectType: secret', 'objectNamePrefix: app-db\nwriteTags: "true"']);
    expect(fileNames(result)).toEqual(['app-db/app-db', 'app-db/app-db.tags.json', 'billing-db']);
    expect(JSON.parse(text(result, 'app-db/app-db.tags.json'))).toEqual({ owner: TAG_CANARY, team: 'shop' });
  });
});

describe('bounds', () => {
  it('more matches than maxObjects fail the mount naming the entry and the count, before any secret is read', async () => {
    azure.keyVault.clearRequests();
    const err = await rejectionOf(mount(['objectName: billing-db\nobjectType: secret', 'objectNamePrefix: bulk-']));
    expect(err.code).toBe(grpcStatus.FAILED_PRECONDITION);
    expect(err.details).toContain(
      'objects.array[1] (secrets by objectNamePrefix "bulk-") selects 12 secrets in Key Vault "selection-kv", more than ' +
        'its maxObjects 10: narrow the selection, or raise maxObjects (at most 100) if that many are meant',
    );
    expect(azure.keyVault.count({ operation: 'get', path: /^\/secrets\/bulk-/ })).toBe(0);
    const raised = await mount(['objectNamePrefix: bulk-\nmaxObjects: 12']);
    expect(raised.files).toHaveLength(12);
  });

  it('a vault with more secrets than a listing reads fails the mount after the page bound, reading no secret', async () => {
    azure.keyVault.clearRequests();
    const err = await rejectionOf(mount(['objectNamePrefix: many-000'], HUGE));
    expect(err.code).toBe(grpcStatus.FAILED_PRECONDITION);
    expect(err.details).toContain(
      `Key Vault "${HUGE}" has more secrets than a selection lists (more than 160 in 80 pages; the bound is 2000 ` +
        'secrets or 80 pages): name the objects one by one, or keep the selected secrets in a vault of their own',
    );
    expect(azure.keyVault.count({ vault: HUGE, operation: 'list', status: 200 })).toBe(80);
    expect(azure.keyVault.count({ vault: HUGE, operation: 'get' })).toBe(0);
  });

  it.each([
    ['an invalid pattern', 'objectNameRegex: "(svc"\nobjectAlias: x', /objectNameRegex "\(svc" is not an RE2 regular expression/],
    ['a lookahead', 'objectNameRegex: "^(?!svc)"\nobjectAlias: x', /objectNameRegex .*no lookaround/],
    ['maxObjects above the ceiling', 'objectNamePrefix: app-\nmaxObjects: 1000', /maxObjects "1000" is not a count from 1 to 100/],
    ['objectName with a prefix', 'objectNamePrefix: app-\nobjectName: app-db', /objectName cannot be used with/],
    ['a certificate type', 'objectNamePrefix: app-\nobjectType: cert', /objectType "cert" cannot be selected/],
  ])('%s fails the mount before any request, naming the field', async (_, entry, message) => {
    const before = azure.keyVault.requests.length;
    const err = await rejectionOf(mount(['objectName: billing-db\nobjectType: secret', entry]));
    expect(err.code).toBe(grpcStatus.INVALID_ARGUMENT);
    expect(err.details).toMatch(message);
    expect(azure.keyVault.requests.length).toBe(before);
  });
});

describe('rotation', () => {
  it('a secret that joins or leaves the selection changes the files and the selection\'s version', async () => {
    const entries = ['objectNamePrefix: rot-'];
    azure.keyVault.setSecret(VAULT, 'rot-a', 'a1');
    const first = await mount(entries);
    expect(fileNames(first)).toEqual(['rot-/rot-a']);
    const again = await mount(entries);
    expect(again.objectVersion).toEqual(first.objectVersion);

    azure.keyVault.setSecret(VAULT, 'rot-b', 'b1');
    const joined = await mount(entries);
    expect(fileNames(joined)).toEqual(['rot-/rot-a', 'rot-/rot-b']);
    const selectVersion = (r: MountResult): string => r.objectVersion.find((v) => v.id === 'select/rot-')!.version;
    expect(selectVersion(joined)).not.toBe(selectVersion(first));

    azure.keyVault.setSecret(VAULT, 'rot-a', 'a2');
    const rotated = await mount(entries);
    expect(text(rotated, 'rot-/rot-a')).toBe('a2');
    expect(rotated.objectVersion.find((v) => v.id === 'secret/rot-a')!.version).toBe(latest(VAULT, 'rot-a'));
    expect(selectVersion(rotated)).toBe(selectVersion(joined));

    azure.keyVault.deleteObject(VAULT, 'secret', 'rot-a');
    const left = await mount(entries);
    expect(fileNames(left)).toEqual(['rot-/rot-b']);
    expect(left.objectVersion.map((v) => v.id)).toEqual(['secret/rot-b', 'select/rot-']);
    expect(selectVersion(left)).not.toBe(selectVersion(joined));

    azure.keyVault.setEnabled(VAULT, 'secret', 'rot-b', false);
    const disabled = await mount(entries);
    expect(disabled.files).toEqual([]);
    expect(disabled.objectVersion.map((v) => v.id)).toEqual(['select/rot-']);
  });
});

/**
 * The SDK's paging helper keeps only the status and code of a failed page ("Pagination failed with unexpected
 * statusCode 403"), not Key Vault's text with the caller and the refused action, so the message says both fixes.
 */
describe('a listing the identity may not make', () => {
  it.each([
    ['Azure RBAC', LOCKED_RBAC],
    ['access policies', LOCKED_POLICY],
  ])('%s: names the data action, the role on the vault itself, and the access policy\'s List permission', async (_, vault) => {
    azure.keyVault.clearRequests();
    const err = await rejectionOf(mount(['objectNamePrefix: app-'], vault));
    expect(err.code).toBe(grpcStatus.PERMISSION_DENIED);
    expect(err.details).toContain(
      `the node's system-assigned managed identity may not list the secrets of Key Vault "${vault}" (403 Forbidden): ` +
        'listing needs the data action Microsoft.KeyVault/vaults/secrets/readMetadata/action: with Azure RBAC grant ' +
        'that principal the "Key Vault Secrets User" role on the vault itself (a role on single secrets does not allow ' +
        'listing them); with access policies add the List permission for secrets (besides Get) to its access policy',
    );
    // Refused, not retried, and no secret read.
    expect(azure.keyVault.requests.filter((r) => r.status === 403).map((r) => r.path)).toEqual(['/secrets']);
  });
});

describe('Key Vault requests per mount (warm clients: the challenge and token are already held)', () => {
  it('one listing (one GET per page of the vault) and one GET per selected secret', async () => {
    const entries = ['objectNamePrefix: svc-'];
    await mount(entries);
    azure.keyVault.clearRequests();
    await mount(entries);
    const requests: string[] = azure.keyVault.requests.map((r) => `${r.status} ${r.operation ?? ''} ${r.path}`);
    const pages: string[] = requests.filter((r) => r === '200 list /secrets');
    // The listing's pages (2 secrets a page here, 25 with the service), then the selected secrets, nothing else.
    expect(pages.length).toBeGreaterThan(5);
    expect(requests.filter((r) => !pages.includes(r)).sort()).toEqual([
      '200 get /secrets/svc-cache/',
      '200 get /secrets/svc-db/',
      '200 get /secrets/svc-web/',
    ]);
    process.stdout.write(`selection mount (3 selected): ${requests.length} Key Vault requests = ${pages.length} listing pages + 3 GETs\n`);
  });

  it('two selections of one vault in one mount share one listing', async () => {
    const listingPages = async (entries: string[]): Promise<number> => {
      await mount(entries);
      azure.keyVault.clearRequests();
      await mount(entries);
      return azure.keyVault.count({ vault: VAULT, operation: 'list' });
    };
    const one = await listingPages(['objectNamePrefix: svc-']);
    expect(await listingPages(['objectNamePrefix: svc-', 'objectTags:\n  team: billing\nobjectAlias: billing'])).toBe(one);
  });
});

describe('nothing secret leaks', () => {
  it('no secret value and no tag value in any log line', async () => {
    await rejectionOf(mount(['objectNamePrefix: app-\nmaxObjects: 1']));
    await rejectionOf(mount([`objectTags:\n  owner: ${TAG_CANARY}\nobjectAlias: x\nobjectName: app-db`]));
    await mount([`objectTags:\n  owner: ${TAG_CANARY}\nobjectAlias: owned`]);
    const logs = provider.logs();
    expect(logs).toContain('objectNamePrefix');
    expect(logs).not.toContain(CANARY);
    expect(logs).not.toContain(TAG_CANARY);
  });
});
