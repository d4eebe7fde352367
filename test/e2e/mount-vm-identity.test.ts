/**
 * End to end: the real provider process, the driver's gRPC over a real unix socket, and Azure replaced only at
 * the network edge (IMDS on loopback, Key Vault over TLS through a CONNECT proxy with a test CA).
 */
import { status as grpcStatus, type ServiceError } from '@grpc/grpc-js';
import { statSync } from 'node:fs';
import { startAzureStandIns, type AzureStandIns } from '../support/azure-standins';
import { registerProviderCleanup, startProvider, type ProviderProcess } from '../support/provider-process';
import type { MountRequestInput } from '../support/driver-client';
import { objects, rejectionOf } from '../support/spc';

registerProviderCleanup();

const SYSTEM = 'node-system-identity';
const UAI_READER = { id: 'uai-reader', clientId: '0a1b2c3d-0000-4000-8000-000000000001', resourceId: '/subscriptions/sub-1/resourceGroups/rg-nodes/providers/Microsoft.ManagedIdentity/userAssignedIdentities/reader' };
const UAI_OUTSIDER = { id: 'uai-outsider', clientId: '0a1b2c3d-0000-4000-8000-000000000002', resourceId: '/subscriptions/sub-1/resourceGroups/rg-nodes/providers/Microsoft.ManagedIdentity/userAssignedIdentities/outsider' };

// Canary values: they must reach the pod's files and never the provider's logs.
const DB_PASSWORD = 'canary-db-password-5d1f0c';
const OLD_SALT = 'canary-old-salt-91ab';
const NEW_SALT = 'canary-new-salt-77ce';
const API_KEY_BYTES = Buffer.from([0x00, 0xff, 0x10, 0x80, 0x7f, 0x63, 0x61, 0x6e, 0x61, 0x72, 0x79]);

let azure: AzureStandIns;
let provider: ProviderProcess;
let oldSaltVersion: string;
let dbPasswordVersion: string;
let apiKeyVersion: string;


const THREE_SECRETS = () =>
  objects([
    'objectName: db-password\nobjectType: secret\nobjectAlias: config/db.password',
    'objectName: api-key\nobjectType: secret\nobjectEncoding: base64\nfilePermission: "0400"',
    `objectName: signing-salt\nobjectType: secret\nobjectVersion: ${oldSaltVersion}`,
  ]);

function request(parameters: Record<string, string | undefined>): MountRequestInput {
  const attributes: Record<string, string> = {
    'csi.storage.k8s.io/pod.name': 'shop-0',
    'csi.storage.k8s.io/pod.namespace': 'shop',
    'csi.storage.k8s.io/pod.uid': '9a8b7c6d',
    'csi.storage.k8s.io/serviceAccount.name': 'shop',
    'csi.storage.k8s.io/ephemeral': 'false',
    secretProviderClass: 'shop-secrets',
    useVMManagedIdentity: 'true',
    keyvaultName: 'shop-kv',
    tenantID: azure.tenantId,
    objects: THREE_SECRETS(),
  };
  for (const [k, v] of Object.entries(parameters)) {
    if (v === undefined) delete attributes[k];
    else attributes[k] = v;
  }
  return { attributes, permission: '420', targetPath: '/var/lib/kubelet/pods/9a8b7c6d/volumes/kubernetes.io~csi/secrets/mount' };
}

async function mountError(req: MountRequestInput): Promise<ServiceError> {
  return rejectionOf(provider.client.mount(req));
}

beforeAll(async () => {
  azure = await startAzureStandIns({
    identities: { systemAssigned: { id: SYSTEM }, userAssigned: [UAI_READER, UAI_OUTSIDER] },
  });
  const kv = azure.keyVault;
  kv.addVault('shop-kv', { allow: [SYSTEM, UAI_READER.id] });
  dbPasswordVersion = kv.setSecret('shop-kv', 'db-password', DB_PASSWORD);
  apiKeyVersion = kv.setSecret('shop-kv', 'api-key', API_KEY_BYTES.toString('base64'));
  oldSaltVersion = kv.setSecret('shop-kv', 'signing-salt', OLD_SALT);
  kv.setSecret('shop-kv', 'signing-salt', NEW_SALT);
  kv.setSecret('shop-kv', 'not-base64', 'this is not base64!');
  // Maximum verbosity: the canary check at the end covers every log level.
  provider = await startProvider({ env: azure.providerEnv(), args: ['-v=5'] });
});

afterAll(async () => {
  await provider?.stop();
  await azure?.close();
});

describe('a Mount with the node managed identity', () => {
  it('answers Version and the gRPC health check', async () => {
    expect(await provider.client.version()).toEqual({
      version: 'v1alpha1',
      runtimeName: 'secrets-store-csi-driver-provider-azure',
      runtimeVersion: expect.stringMatching(/^\d+\.\d+\.\d+/),
    });
    expect(await provider.client.healthCheck()).toBe('SERVING');
  });

  it('serves on a socket only its owner can use', () => {
    const stat = statSync(provider.socketPath);
    expect(stat.isSocket()).toBe(true);
    expect(stat.mode & 0o077).toBe(0);
  });

  it('returns exactly the three secrets with the right bytes, modes and versions (system-assigned)', async () => {
    const result = await provider.client.mount(request({}));
    expect(result.files.map((f) => ({ path: f.path, mode: f.mode, contents: f.contents.toString('base64') }))).toEqual([
      { path: 'config/db.password', mode: 0o644, contents: Buffer.from(DB_PASSWORD).toString('base64') },
      { path: 'api-key', mode: 0o400, contents: API_KEY_BYTES.toString('base64') },
      { path: 'signing-salt', mode: 0o644, contents: Buffer.from(OLD_SALT).toString('base64') },
    ]);
    expect(result.objectVersion).toEqual([
      { id: 'secret/db-password', version: dbPasswordVersion },
      { id: 'secret/api-key', version: apiKeyVersion },
      { id: 'secret/signing-salt', version: oldSaltVersion },
    ]);
    const imdsQueries = azure.imds.requests.filter((r) => r.status === 200).map((r) => r.query);
    expect(imdsQueries.at(-1)).toMatchObject({ resource: 'https://vault.azure.net' });
    expect(imdsQueries.at(-1)).not.toHaveProperty('client_id');
  });

  it('uses a user-assigned identity selected by client id', async () => {
    const result = await provider.client.mount(request({ userAssignedIdentityID: UAI_READER.clientId }));
    expect(result.files).toHaveLength(3);
    const last = azure.imds.requests.filter((r) => r.status === 200).at(-1)!;
    expect(last.query).toMatchObject({ client_id: UAI_READER.clientId });
    expect(azure.keyVault.requests.filter((r) => r.status === 200).at(-1)!.identityId).toBe(UAI_READER.id);
  });

  it('uses a user-assigned identity selected by ARM resource id', async () => {
    const result = await provider.client.mount(request({ userAssignedIdentityID: UAI_READER.resourceId }));
    expect(result.files).toHaveLength(3);
    const last = azure.imds.requests.filter((r) => r.status === 200).at(-1)!;
    expect(last.query).toMatchObject({ msi_res_id: UAI_READER.resourceId });
  });

  it('reuses the token across mounts of the same identity', async () => {
    const before = azure.imds.tokenRequestCount();
    for (let i = 0; i < 5; i++) await provider.client.mount(request({}));
    expect(azure.imds.tokenRequestCount()).toBe(before);
  });

  it('fails with NotFound naming the object and the vault, and returns no files', async () => {
    const err = await mountError(
      request({ objects: objects(['objectName: db-password\nobjectType: secret', 'objectName: missing-one\nobjectType: secret']) }),
    );
    expect(err.code).toBe(grpcStatus.NOT_FOUND);
    expect(err.details).toContain('secret "missing-one"');
    expect(err.details).toContain('Key Vault "shop-kv"');
    expect(err.details).toContain('404 SecretNotFound');
  });

  it('fails with PermissionDenied when the identity has no access, naming the identity and the fix', async () => {
    const err = await mountError(request({ userAssignedIdentityID: UAI_OUTSIDER.clientId }));
    expect(err.code).toBe(grpcStatus.PERMISSION_DENIED);
    expect(err.details).toContain(UAI_OUTSIDER.clientId);
    expect(err.details).toContain('403');
    expect(err.details).toContain('Key Vault Secrets User');
  });

  it('fails with Unauthenticated when IMDS does not know the user-assigned identity', async () => {
    const err = await mountError(request({ userAssignedIdentityID: '0a1b2c3d-0000-4000-8000-0000000000ff' }));
    expect(err.code).toBe(grpcStatus.UNAUTHENTICATED);
    expect(err.details).toContain('0a1b2c3d-0000-4000-8000-0000000000ff');
    expect(err.details).toMatch(/identity not found/i);
  });

  it('fails with FailedPrecondition, not a permission error, when the latest version is disabled', async () => {
    azure.keyVault.setSecret('shop-kv', 'retired', 'old');
    azure.keyVault.setEnabled('shop-kv', 'secret', 'retired', false);
    const err = await mountError(request({ objects: objects(['objectName: retired\nobjectType: secret']) }));
    expect(err.code).toBe(grpcStatus.FAILED_PRECONDITION);
    expect(err.details).toContain('secret "retired" is disabled in Key Vault "shop-kv"');
  });

  it('fails with Unavailable when the vault cannot be reached', async () => {
    const err = await mountError(request({ keyvaultName: 'no-such-vault' }));
    expect(err.code).toBe(grpcStatus.UNAVAILABLE);
    expect(err.details).toContain('could not reach Key Vault "no-such-vault" at https://no-such-vault.vault.azure.net/');
  });

  it('mounts nothing, successfully, for an empty objects array', async () => {
    const result = await provider.client.mount(request({ objects: 'array: []' }));
    expect(result.files).toEqual([]);
    expect(result.objectVersion).toEqual([]);
  });

  describe('bad input fails the mount before any call to Azure, and the provider keeps serving', () => {
    const cases: Array<[string, () => MountRequestInput, string[]]> = [
      ['malformed attributes JSON', () => ({ ...request({}), attributes: undefined as never, rawAttributes: '{"a": ' } as never), ['attributes is not valid JSON']],
      ['missing keyvaultName', () => request({ keyvaultName: undefined }), ['keyvaultName is required']],
      ['missing tenantId', () => request({ tenantID: undefined }), ['tenantID is required']],
      ['missing pod name', () => request({ 'csi.storage.k8s.io/pod.name': undefined }), ['csi.storage.k8s.io/pod.name', 'podInfoOnMount']],
      ['two identity switches', () => request({ usePodIdentity: 'true' }), ['usePodIdentity and useVMManagedIdentity']],
      ['a bad vault name', () => request({ keyvaultName: 'shop_kv!' }), ['keyvaultName "shop_kv!"']],
      ['unparseable objects YAML', () => request({ objects: 'array: [' }), ['objects is not valid YAML']],
      ['an unknown objectType', () => request({ objects: objects(['objectName: a\nobjectType: blob']) }), ['objectType "blob"']],
      ['an alias with ..', () => request({ objects: objects(['objectName: a\nobjectType: secret\nobjectAlias: ../../etc/shadow']) }), ['".."']],
      ['an absolute alias', () => request({ objects: objects(['objectName: a\nobjectType: secret\nobjectAlias: /etc/shadow']) }), ['relative']],
      // Two objects writing one file, and filePermission "0900", mount as with the reference: see
      // parity-reference.test.ts.
      ['a negative filePermission', () => request({ objects: objects(['objectName: a\nobjectType: secret\nfilePermission: "-644"']) }), ['filePermission "-644"']],
    ];

    it.each(cases)('%s', async (_name, build, fragments) => {
      const vaultRequests = azure.keyVault.requests.length;
      const imdsRequests = azure.imds.requests.length;
      const req = build();
      const err = await (async () => {
        const raw = (req as { rawAttributes?: string }).rawAttributes;
        if (raw !== undefined) return rawMountError(raw);
        return mountError(req);
      })();
      expect(err.code).toBe(grpcStatus.INVALID_ARGUMENT);
      for (const fragment of fragments) expect(err.details).toContain(fragment);
      expect(azure.keyVault.requests.length).toBe(vaultRequests);
      expect(azure.imds.requests.length).toBe(imdsRequests);
      // The provider is still serving.
      expect((await provider.client.mount(request({}))).files).toHaveLength(3);
    });

    it('invalid base64 content for objectEncoding: base64 (after the fetch, nothing returned)', async () => {
      const err = await mountError(
        request({ objects: objects(['objectName: db-password\nobjectType: secret', 'objectName: not-base64\nobjectType: secret\nobjectEncoding: base64']) }),
      );
      expect(err.code).toBe(grpcStatus.INVALID_ARGUMENT);
      expect(err.details).toContain('secret "not-base64"');
      expect(err.details).toContain('base64');
      expect(err.details).not.toContain('this is not base64!');
      expect((await provider.client.mount(request({}))).files).toHaveLength(3);
    });
  });

  it('writes one log line per mount with pod, namespace, class, object count, duration and result', async () => {
    await provider.client.mount(request({}));
    await provider.waitForLog(/mount succeeded/);
    const line = provider.logs().split('\n').reverse().find((l) => l.includes('mount succeeded'))!;
    for (const fragment of ['shop-0', 'shop-secrets', 'objects', 'durationMs', 'result']) expect(line).toContain(fragment);
  });

  it('never logs a secret value or a token (canaries)', () => {
    const logs = provider.logs();
    expect(logs.length).toBeGreaterThan(0);
    for (const canary of [DB_PASSWORD, OLD_SALT, NEW_SALT, API_KEY_BYTES.toString('base64'), 'canary']) {
      expect(logs).not.toContain(canary);
    }
    for (const token of azure.tokens.all().map((t) => t.token)) expect(logs).not.toContain(token);
  });
});

/** Sends attributes that are not JSON, as a broken driver or a hand-made call would. */
async function rawMountError(rawAttributes: string): Promise<ServiceError> {
  const { rawMount } = await import('../support/driver-client');
  try {
    await rawMount(provider.socketPath, { attributes: rawAttributes, secrets: '{}', permission: '420', targetPath: '/x' });
  } catch (err) {
    return err as ServiceError;
  }
  throw new Error('expected the mount to fail');
}
