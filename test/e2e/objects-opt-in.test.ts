/**
 * End to end: the opt-in object fields this provider adds to the reference's (optional objects, a vault per object,
 * fields of a JSON secret), through the real provider process and socket, Key Vault replaced at the network edge.
 */
import { status as grpcStatus } from '@grpc/grpc-js';
import { startAzureStandIns, type AzureStandIns } from '../support/azure-standins';
import type { MountRequestInput, MountResult } from '../support/driver-client';
import { registerProviderCleanup, startProvider, type ProviderProcess } from '../support/provider-process';
import { objects, rejectionOf } from '../support/spc';

registerProviderCleanup();

const SYSTEM = 'opt-in-system-identity';
const VAULT = 'opt-in-kv';
const OTHER = 'opt-in-other-kv';
/** A vault the node's identity may not read. */
const LOCKED = 'opt-in-locked-kv';
const FOREIGN = 'opt-in-foreign-kv';

/** A value that must never appear in a message or a log line. */
const CANARY = 'canary-7f3e9b2a-secret';
const DB_JSON = { username: 'app', credentials: { password: CANARY, port: 5432, tls: true }, hosts: ['a', 'b'], 'dashed-key': 'd' };

const TAG_CANARY = 'tag-canary-0d9c8b7a';

let azure: AzureStandIns;
let provider: ProviderProcess;

function request(entries: string[], vault = VAULT): MountRequestInput {
  return {
    attributes: {
      'csi.storage.k8s.io/pod.name': 'api-0',
      'csi.storage.k8s.io/pod.namespace': 'shop',
      'csi.storage.k8s.io/pod.uid': '7a6b5c4d',
      'csi.storage.k8s.io/serviceAccount.name': 'api',
      secretProviderClass: 'api-objects',
      useVMManagedIdentity: 'true',
      keyvaultName: vault,
      tenantID: azure.tenantId,
      objects: objects(entries),
    },
    permission: '420',
    targetPath: '/var/lib/kubelet/pods/7a6b5c4d/volumes/kubernetes.io~csi/objects/mount',
  };
}

const mount = (entries: string[]): Promise<MountResult> => provider.client.mount(request(entries));
const fileNames = (result: MountResult): string[] => result.files.map((f) => f.path).sort();
const text = (result: MountResult, path: string): string => {
  const file = result.files.find((f) => f.path === path);
  if (!file) throw new Error(`no file ${path} in ${fileNames(result).join(', ')}`);
  return file.contents.toString('utf8');
};

async function metric(name: string): Promise<string[]> {
  const body = await (await fetch(`http://127.0.0.1:${provider.prometheusPort}/metrics`)).text();
  return body.split('\n').filter((l) => l.startsWith(name));
}

beforeAll(async () => {
  azure = await startAzureStandIns({ identities: { systemAssigned: { id: SYSTEM } } });
  const kv = azure.keyVault;
  kv.addVault(VAULT, { allow: [SYSTEM] });
  kv.addVault(OTHER, { allow: [SYSTEM] });
  kv.addVault(LOCKED, { allow: [], accessModel: 'rbac' });
  // A vault of another tenant: it answers the node's tokens 401 (AKV10032 invalid issuer), every time.
  kv.addVault(FOREIGN, { allow: [SYSTEM], tenantId: '3c2b1a09-8f7e-4d6c-9b5a-4f3e2d1c0b9a' });
  kv.setSecret(FOREIGN, 'elsewhere', 'elsewhere-value');
  kv.setSecret(VAULT, 'present', 'present-value');
  kv.setSecret(VAULT, 'db', 'main-vault-db');
  kv.setSecret(OTHER, 'db', 'other-vault-db');
  kv.setSecret(OTHER, 'only-there', 'only-there-value');
  kv.setSecret(LOCKED, 'hidden', 'hidden-value');
  kv.setSecret(VAULT, 'db-json', JSON.stringify(DB_JSON));
  kv.setSecret(VAULT, 'not-json', `${CANARY} is not json`);
  kv.setSecret(VAULT, 'tagged', 'tagged-value', {
    tags: { team: 'payments', owner: TAG_CANARY },
    created: 1_700_000_000,
    expires: 1_900_000_000,
    notBefore: 1_600_000_000,
  });
  provider = await startProvider({ env: azure.providerEnv(), args: ['-v=2', '--metrics-backend=prometheus'] });
});

afterAll(async () => {
  await provider?.stop();
  await azure?.close();
});

describe('optional: "true"', () => {
  it('leaves out an object Key Vault answers 404 for: logged, counted, and visible in the object versions', async () => {
    const before = await metric('csi_provider_azure_optional_objects_skipped_total{');
    const result = await mount([
      'objectName: present\nobjectType: secret',
      'objectName: never-created\nobjectType: secret\noptional: "true"',
    ]);
    expect(fileNames(result)).toEqual(['present']);
    expect(result.objectVersion).toEqual([
      { id: 'secret/present', version: azure.keyVault.versions(VAULT, 'secret', 'present')[0] },
      { id: 'secret/never-created', version: 'not-found' },
    ]);
    await provider.waitForLog(/secret \\?"never-created\\?"\) is optional and was not found in Key Vault \\?"opt-in-kv\\?"/);
    const counted = (lines: string[]): number =>
      Number(lines.find((l) => l.includes('object_type="secret"'))?.split(' ').pop() ?? '0');
    expect(counted(await metric('csi_provider_azure_optional_objects_skipped_total{'))).toBe(counted(before) + 1);
  });

  it('a version that does not exist is a 404 too', async () => {
    const result = await mount([
      'objectName: present\nobjectType: secret',
      'objectName: present\nobjectType: secret\nobjectAlias: pinned\nobjectVersion: 0123456789abcdef0123456789abcdef\noptional: "true"',
    ]);
    expect(fileNames(result)).toEqual(['present']);
  });

  it('removes the file of an object that was there at the last mount and is deleted since', async () => {
    azure.keyVault.setSecret(VAULT, 'short-lived', 'soon-gone');
    const entries = ['objectName: present\nobjectType: secret', 'objectName: short-lived\nobjectType: secret\noptional: "true"'];
    const first = await mount(entries);
    expect(fileNames(first)).toEqual(['present', 'short-lived']);
    azure.keyVault.deleteObject(VAULT, 'secret', 'short-lived');
    const second = await mount(entries);
    expect(fileNames(second)).toEqual(['present']);
    expect(second.objectVersion.find((v) => v.id === 'secret/short-lived')?.version).toBe('not-found');
  });

  it('a missing object that is not optional still fails the mount', async () => {
    const err = await rejectionOf(mount(['objectName: present\nobjectType: secret', 'objectName: never-created\nobjectType: secret']));
    expect(err.code).toBe(grpcStatus.NOT_FOUND);
    expect(err.details).toContain('secret "never-created" was not found');
  });

  it('a 403 is never skipped: the identity may not read the vault', async () => {
    const err = await rejectionOf(
      mount(['objectName: present\nobjectType: secret', `objectName: hidden\nobjectType: secret\nkeyvaultName: ${LOCKED}\noptional: "true"`]),
    );
    expect(err.code).toBe(grpcStatus.PERMISSION_DENIED);
    expect(err.details).toContain(`Key Vault "${LOCKED}"`);
  });

  it('a 401 is never skipped: Key Vault refused the token, it did not say the object is gone', async () => {
    const err = await rejectionOf(
      mount(['objectName: present\nobjectType: secret', `objectName: elsewhere\nobjectType: secret\nkeyvaultName: ${FOREIGN}\noptional: "true"`]),
    );
    expect(err.code).toBe(grpcStatus.UNAUTHENTICATED);
    expect(err.details).toContain(`Key Vault "${FOREIGN}"`);
  });

  it('a 5xx is never skipped: Key Vault failing says nothing about whether the object exists', async () => {
    const fault = azure.keyVault.injectFaults({ status: 500, ratio: 1, vault: VAULT, match: (r) => r.path === '/secrets/flaky/' });
    try {
      const err = await rejectionOf(mount(['objectName: present\nobjectType: secret', 'objectName: flaky\nobjectType: secret\noptional: "true"']));
      expect(err.code).toBe(grpcStatus.UNAVAILABLE);
      expect(err.details).toContain('secret "flaky"');
      expect(fault.hits()).toBeGreaterThan(0);
    } finally {
      fault.clear();
    }
  });

  it('a 429 is never skipped: a throttled vault has not said the object is gone', async () => {
    const fault = azure.keyVault.injectFaults({ status: 429, retryAfterSeconds: 1, ratio: 1, vault: VAULT, match: (r) => r.path === '/secrets/busy/' });
    try {
      const err = await rejectionOf(
        provider.client.mount(request(['objectName: busy\nobjectType: secret\noptional: "true"']), { deadlineMs: 3000 }),
      );
      expect([grpcStatus.DEADLINE_EXCEEDED, grpcStatus.RESOURCE_EXHAUSTED]).toContain(err.code);
    } finally {
      fault.clear();
    }
  });

  it.each([
    ['optional: "yes"', /optional "yes" is not a boolean: use "true" or "false"/],
    ['Optional: "true"', /"Optional" is not a field: the field is spelt optional/],
  ])('%s fails before any request to Key Vault, naming the field', async (line, message) => {
    const before = azure.keyVault.requests.length;
    const err = await rejectionOf(mount([`objectName: present\nobjectType: secret\n${line}`]));
    expect(err.code).toBe(grpcStatus.INVALID_ARGUMENT);
    expect(err.details).toMatch(message);
    expect(err.details).toContain('objects.array[0]');
    expect(azure.keyVault.requests.length).toBe(before);
  });
});

describe('keyvaultName per object', () => {
  it("reads each object from its own vault with the class's identity; the same name in two vaults gives two ids", async () => {
    azure.keyVault.clearRequests();
    const result = await mount([
      'objectName: db\nobjectType: secret\nobjectAlias: main-db',
      `objectName: db\nobjectType: secret\nobjectAlias: other-db\nkeyvaultName: ${OTHER}`,
      `objectName: only-there\nobjectType: secret\nkeyvaultName: ${OTHER}`,
    ]);
    expect(text(result, 'main-db')).toBe('main-vault-db');
    expect(text(result, 'other-db')).toBe('other-vault-db');
    expect(text(result, 'only-there')).toBe('only-there-value');
    expect(result.objectVersion).toEqual([
      { id: 'secret/db', version: azure.keyVault.versions(VAULT, 'secret', 'db')[0] },
      { id: `secret/${OTHER}/db`, version: azure.keyVault.versions(OTHER, 'secret', 'db')[0] },
      { id: `secret/${OTHER}/only-there`, version: azure.keyVault.versions(OTHER, 'secret', 'only-there')[0] },
    ]);
    const authorized = azure.keyVault.requests.filter((r) => r.status === 200);
    expect(new Set(authorized.filter((r) => r.vault === OTHER).map((r) => r.identityId))).toEqual(new Set([SYSTEM]));
    expect(authorized.filter((r) => r.vault === OTHER).map((r) => r.path).sort()).toEqual(['/secrets/db/', '/secrets/only-there/']);
    expect(authorized.filter((r) => r.vault === VAULT).map((r) => r.path)).toEqual(['/secrets/db/']);
  });

  it('a 404 from the other vault names that vault', async () => {
    const err = await rejectionOf(mount([`objectName: present\nobjectType: secret\nkeyvaultName: ${OTHER}`]));
    expect(err.code).toBe(grpcStatus.NOT_FOUND);
    expect(err.details).toContain(`Key Vault "${OTHER}"`);
  });

  it.each([
    ['keyvaultName: https://x.vault.azure.net', /keyvaultName "https:\/\/x.vault.azure.net" is not a valid Key Vault name/],
    ['keyvaultName: a--b', /keyvaultName "a--b" is not a valid Key Vault name/],
    ['keyVaultName: other', /"keyVaultName" is not a field: the field is spelt keyvaultName/],
  ])('%s fails before any request to Key Vault, naming the field', async (line, message) => {
    const before = azure.keyVault.requests.length;
    const err = await rejectionOf(mount(['objectName: present\nobjectType: secret', `objectName: db\nobjectType: secret\n${line}`]));
    expect(err.code).toBe(grpcStatus.INVALID_ARGUMENT);
    expect(err.details).toMatch(message);
    expect(err.details).toContain('objects.array[1]');
    expect(azure.keyVault.requests.length).toBe(before);
  });
});

describe('jsonPaths', () => {
  const db = (extra: string): string => `objectName: db-json\nobjectType: secret\n${extra}`;

  it('writes each field as its own file with its own mode, beside the whole secret; versions are the secret\'s', async () => {
    const result = await mount([
      db(
        [
          'jsonPaths:',
          '  - path: username',
          '    objectAlias: db-user',
          '  - path: credentials.password',
          '    objectAlias: db/pass',
          '    filePermission: "0400"',
          '  - path: credentials.port',
          '    objectAlias: db-port',
          '  - path: \'"dashed-key"\'',
          '    objectAlias: dashed',
          '  - path: hosts[1]',
          '    objectAlias: second-host',
        ].join('\n'),
      ),
    ]);
    expect(fileNames(result)).toEqual(['dashed', 'db-json', 'db-port', 'db-user', 'db/pass', 'second-host']);
    expect(text(result, 'db-user')).toBe('app');
    expect(text(result, 'db/pass')).toBe(CANARY);
    expect(text(result, 'db-port')).toBe('5432');
    expect(text(result, 'dashed')).toBe('d');
    expect(text(result, 'second-host')).toBe('b');
    expect(JSON.parse(text(result, 'db-json'))).toEqual(DB_JSON);
    expect(result.files.find((f) => f.path === 'db/pass')!.mode).toBe(0o400);
    expect(result.files.find((f) => f.path === 'db-user')!.mode).toBe(0o644);
    const version = azure.keyVault.versions(VAULT, 'secret', 'db-json').at(-1);
    expect(result.objectVersion).toEqual([
      { id: 'secret/db-json', version },
      ...['db-user', 'db/pass', 'db-port', 'dashed', 'second-host'].map((alias) => ({ id: `secret/db-json#${alias}`, version })),
    ]);
  });

  it('writeObject: "false" writes only the fields; a new version of the secret changes every version', async () => {
    const entry = db('writeObject: "false"\njsonPaths:\n  - path: username\n    objectAlias: db-user');
    const first = await mount([entry]);
    expect(fileNames(first)).toEqual(['db-user']);
    const next = azure.keyVault.setSecret(VAULT, 'db-json', JSON.stringify({ ...DB_JSON, username: 'app2' }));
    const second = await mount([entry]);
    expect(text(second, 'db-user')).toBe('app2');
    expect(second.objectVersion).toEqual([
      { id: 'secret/db-json', version: next },
      { id: 'secret/db-json#db-user', version: next },
    ]);
    expect(first.objectVersion[1]!.version).not.toBe(next);
  });

  it.each([
    ['a path that matches nothing', db('jsonPaths:\n  - path: credentials.missing\n    objectAlias: x'), /jsonPaths\[0\] path "credentials.missing" matches nothing in the secret/],
    ['a path that selects an object', db('jsonPaths:\n  - path: credentials\n    objectAlias: x'), /jsonPaths\[0\] path "credentials" selects an object, not a single value/],
    ['a path that selects a list', db('jsonPaths:\n  - path: hosts\n    objectAlias: x'), /selects a list, not a single value/],
    ['a secret that is not JSON', 'objectName: not-json\nobjectType: secret\njsonPaths:\n  - path: a\n    objectAlias: x', /secret "not-json"\): its value is not JSON, so jsonPaths cannot be applied/],
  ])('%s fails the mount naming the object and the path, never the value', async (_what, entry, message) => {
    const err = await rejectionOf(mount(['objectName: present\nobjectType: secret', entry]));
    expect(err.code).toBe(grpcStatus.INVALID_ARGUMENT);
    expect(err.details).toMatch(message);
    expect(err.details).not.toContain(CANARY);
    expect(provider.logs()).not.toContain(CANARY);
  });

  it.each([
    ['a path that does not parse', 'jsonPaths:\n  - path: "a.["\n    objectAlias: x', /jsonPaths\[0\]: path "a.\[" is not a JMESPath expression/],
    ['a function outside the specification', 'jsonPaths:\n  - path: pad_left(username, `100000000`)\n    objectAlias: x', /calls "pad_left", which is not a function of JMESPath's specification/],
    ['no objectAlias', 'jsonPaths:\n  - path: username', /jsonPaths\[0\]: objectAlias is required/],
    ['an unknown entry field', 'jsonPaths:\n  - path: username\n    objectAlias: x\n    alias: y', /"alias" is not a field of a jsonPaths entry/],
    ['AWS\'s spelling', 'jmesPath:\n  - path: username\n    objectAlias: x', /"jmesPath" is not a field: the field is spelt jsonPaths/],
    ['writeObject false alone', 'writeObject: "false"', /writeObject "false" without jsonPaths would write nothing/],
    ['writeObject not a boolean', 'writeObject: "no"\njsonPaths:\n  - path: username\n    objectAlias: x', /writeObject "no" is not a boolean/],
  ])('%s fails before any request to Key Vault, naming the field', async (_what, extra, message) => {
    const before = azure.keyVault.requests.length;
    const err = await rejectionOf(mount([db(extra)]));
    expect(err.code).toBe(grpcStatus.INVALID_ARGUMENT);
    expect(err.details).toMatch(message);
    expect(err.details).toContain('objects.array[0]');
    expect(azure.keyVault.requests.length).toBe(before);
  });
});

describe('writeTags and writeAttributes', () => {
  it('writes the tags (sorted keys) and the attributes as JSON beside the value; no tag value is logged', async () => {
    const result = await mount(['objectName: tagged\nobjectType: secret\nwriteTags: "true"\nwriteAttributes: "true"']);
    expect(fileNames(result)).toEqual(['tagged', 'tagged.attributes.json', 'tagged.tags.json']);
    expect(text(result, 'tagged')).toBe('tagged-value');
    expect(text(result, 'tagged.tags.json')).toBe(`{"owner":"${TAG_CANARY}","team":"payments"}\n`);
    expect(JSON.parse(text(result, 'tagged.attributes.json'))).toEqual({
      enabled: true,
      created: new Date(1_700_000_000_000).toISOString(),
      updated: new Date(1_700_000_000_000).toISOString(),
      expires: new Date(1_900_000_000_000).toISOString(),
      notBefore: new Date(1_600_000_000_000).toISOString(),
    });
    // One version entry for the object: the metadata files belong to it.
    expect(result.objectVersion).toEqual([{ id: 'secret/tagged', version: azure.keyVault.versions(VAULT, 'secret', 'tagged').at(-1) }]);
    expect(provider.logs()).not.toContain(TAG_CANARY);
  });

  it('an object without tags gets an empty JSON object; writeTags alone writes no attributes file', async () => {
    const result = await mount(['objectName: present\nobjectType: secret\nwriteTags: "true"']);
    expect(fileNames(result)).toEqual(['present', 'present.tags.json']);
    expect(text(result, 'present.tags.json')).toBe('{}\n');
  });

  it.each([
    ['writeTags: "on"', /writeTags "on" is not a boolean/],
    ['WriteTags: "true"', /"WriteTags" is not a field: the field is spelt writeTags/],
    ['writeAttributes: "true"\nobjectVersionHistory: 2', /writeAttributes cannot be combined with objectVersionHistory/],
  ])('%s fails before any request to Key Vault, naming the field', async (line, message) => {
    const before = azure.keyVault.requests.length;
    const err = await rejectionOf(mount([`objectName: tagged\nobjectType: secret\n${line}`]));
    expect(err.code).toBe(grpcStatus.INVALID_ARGUMENT);
    expect(err.details).toMatch(message);
    expect(azure.keyVault.requests.length).toBe(before);
  });
});

describe('Key Vault requests per mount of each kind (warm clients: the challenge and token are already held)', () => {
  /** Requests to Key Vault one mount makes, as `<status> <vault> <path>`. */
  async function requestsOf(entries: string[]): Promise<string[]> {
    await mount(entries).catch(() => undefined); // warms every client this mount uses
    azure.keyVault.clearRequests();
    await mount(entries).catch(() => undefined);
    return azure.keyVault.requests.map((r) => `${r.status} ${r.vault} ${r.path}`);
  }

  it('optional, missing: one GET answered 404', async () => {
    expect(await requestsOf(['objectName: never-created\nobjectType: secret\noptional: "true"'])).toEqual([`404 ${VAULT} /secrets/never-created/`]);
  });

  it('keyvaultName: one GET to the object\'s own vault', async () => {
    expect(await requestsOf([`objectName: only-there\nobjectType: secret\nkeyvaultName: ${OTHER}`])).toEqual([`200 ${OTHER} /secrets/only-there/`]);
  });

  it('jsonPaths with two fields, writeTags and writeAttributes: one GET of the secret', async () => {
    expect(
      await requestsOf([
        'objectName: db-json\nobjectType: secret\njsonPaths:\n  - path: username\n    objectAlias: u\n  - path: credentials.port\n    objectAlias: p',
        'objectName: tagged\nobjectType: secret\nwriteTags: "true"\nwriteAttributes: "true"',
      ]).then((r) => r.sort()),
    ).toEqual([`200 ${VAULT} /secrets/db-json/`, `200 ${VAULT} /secrets/tagged/`]);
  });
});
