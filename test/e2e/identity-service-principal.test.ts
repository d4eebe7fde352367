/**
 * End to end: service principals through nodePublishSecretRef, against an Entra ID stand-in over TLS (reached
 * under its real host names through the CONNECT proxy) in each named cloud. Counts token requests at the stand-in,
 * shows that a wrong secret fails even right after a right one, and that the secret never reaches a log.
 */
import { status as grpcStatus, type ServiceError } from '@grpc/grpc-js';
import { startAzureStandIns, type AzureStandIns } from '../support/azure-standins';
import type { MountRequestInput } from '../support/driver-client';
import { startEntra, type EntraStandIn } from '../support/entra';
import { registerProviderCleanup, startProvider, type ProviderProcess } from '../support/provider-process';
import { rejectionOf } from '../support/spc';

registerProviderCleanup();

// Canaries: client secrets and secret values that must never appear in the provider's logs.
const SECRET_A = 'canary-client-secret-A-7d3f9e21';
const SECRET_COUNT = 'canary-client-secret-C-1b4c8a02';
const WRONG_SECRET = 'canary-wrong-secret-55e0aa13';
const VALUE = 'canary-sp-secret-value-0c41';

const SP_A = { clientId: 'a1a1a1a1-0000-4000-8000-00000000000a', identityId: 'sp-a' };
const SP_COUNT = { clientId: 'c0c0c0c0-0000-4000-8000-00000000000c', identityId: 'sp-count' };
const SP_OUTSIDER = { clientId: 'b2b2b2b2-0000-4000-8000-00000000000b', identityId: 'sp-outsider' };
const OUTSIDER_SECRET = 'canary-outsider-secret-9a9a';

let entra: EntraStandIn | undefined;
let azure: AzureStandIns;
let provider: ProviderProcess;

function objects(names: string[]): string {
  return `array:\n${names.map((n) => `  - |\n    objectName: ${n}\n    objectType: secret`).join('\n')}\n`;
}

function request(parameters: Record<string, string | undefined>, secrets: Record<string, string> = {}): MountRequestInput {
  const attributes: Record<string, string> = {
    'csi.storage.k8s.io/pod.name': 'sp-pod',
    'csi.storage.k8s.io/pod.namespace': 'payments',
    'csi.storage.k8s.io/pod.uid': 'uid-sp-pod',
    'csi.storage.k8s.io/serviceAccount.name': 'default',
    secretProviderClass: 'sp-class',
    keyvaultName: 'sp-kv',
    tenantID: azure.tenantId,
    objects: objects(['db']),
  };
  for (const [k, v] of Object.entries(parameters)) {
    if (v === undefined) delete attributes[k];
    else attributes[k] = v;
  }
  return { attributes, secrets };
}

const spSecrets = (clientId: string, secret: string): Record<string, string> => ({ clientid: clientId, clientsecret: secret });

async function mountError(req: MountRequestInput): Promise<ServiceError> {
  return rejectionOf(provider.client.mount(req));
}

beforeAll(async () => {
  azure = await startAzureStandIns({ route: (host, port) => entra?.route(host, port) });
  entra = await startEntra({
    pki: azure.pki,
    tokens: azure.tokens,
    applications: [
      { ...SP_A, tenantId: azure.tenantId, secrets: [SECRET_A] },
      { ...SP_COUNT, tenantId: azure.tenantId, secrets: [SECRET_COUNT] },
      { ...SP_OUTSIDER, tenantId: azure.tenantId, secrets: [OUTSIDER_SECRET] },
    ],
  });
  const kv = azure.keyVault;
  kv.addVault('sp-kv', { allow: [SP_A.identityId, SP_COUNT.identityId] });
  kv.addVault('sp-kv2', { allow: [SP_A.identityId, SP_COUNT.identityId] });
  kv.addVault('gov-kv', { suffix: 'vault.usgovcloudapi.net', allow: [SP_A.identityId] });
  kv.addVault('cn-kv', { suffix: 'vault.azure.cn', allow: [SP_A.identityId] });
  kv.addVault('de-kv', { suffix: 'vault.microsoftazure.de', allow: [SP_A.identityId] });
  for (const vault of ['sp-kv', 'sp-kv2', 'gov-kv', 'cn-kv', 'de-kv']) kv.setSecret(vault, 'db', `${VALUE}-${vault}`);
  provider = await startProvider({ env: azure.providerEnv(), args: ['-v=5'] });
});

afterAll(async () => {
  await provider?.stop();
  await entra?.close();
  await azure?.close();
});

describe('service principal (nodePublishSecretRef)', () => {
  it('mounts with clientid/clientsecret matched case-insensitively, asking Entra ID with the client secret', async () => {
    const result = await provider.client.mount(request({}, { ClientID: SP_A.clientId, ClientSecret: SECRET_A }));
    expect(result.files.map((f) => [f.path, f.contents.toString()])).toEqual([['db', `${VALUE}-sp-kv`]]);
    const token = entra!.requests.filter((r) => r.kind === 'token').at(-1)!;
    expect(token).toMatchObject({
      host: 'login.microsoftonline.com',
      path: `/${azure.tenantId}/oauth2/v2.0/token`,
      grantType: 'client_credentials',
      clientId: SP_A.clientId,
      credential: 'secret',
      status: 200,
      resource: 'https://vault.azure.net',
    });
    expect(azure.keyVault.requests.filter((r) => r.status === 200).at(-1)!.identityId).toBe(SP_A.identityId);
  });

  it('100 mounts of one service principal (50 at once, then 50 in a row) cost one token request', async () => {
    const before = entra!.tokenRequestCount({ clientId: SP_COUNT.clientId });
    const req = request({}, spSecrets(SP_COUNT.clientId, SECRET_COUNT));
    const concurrent = await Promise.all(Array.from({ length: 50 }, () => provider.client.mount(req)));
    expect(concurrent.every((r) => r.files.length === 1)).toBe(true);
    const challengesBefore = azure.keyVault.count({ vault: 'sp-kv', status: 401 });
    for (let i = 0; i < 50; i++) await provider.client.mount(req);
    expect(entra!.tokenRequestCount({ clientId: SP_COUNT.clientId }) - before).toBe(1);
    // One Key Vault client per (vault, identity), kept across mounts: once warm, no mount repeats the challenge.
    expect(azure.keyVault.count({ vault: 'sp-kv', status: 401 }) - challengesBefore).toBe(0);
  });

  it('a second vault of the same identity reuses the credential (no new token request) but gets its own client', async () => {
    const before = entra!.tokenRequestCount({ clientId: SP_COUNT.clientId });
    const result = await provider.client.mount(request({ keyvaultName: 'sp-kv2' }, spSecrets(SP_COUNT.clientId, SECRET_COUNT)));
    expect(result.files[0]!.contents.toString()).toBe(`${VALUE}-sp-kv2`);
    expect(entra!.tokenRequestCount({ clientId: SP_COUNT.clientId })).toBe(before);
  });

  it('a wrong client secret fails even right after a valid mount of the same client id, and does not poison it', async () => {
    await provider.client.mount(request({}, spSecrets(SP_A.clientId, SECRET_A)));
    const before = entra!.tokenRequestCount({ clientId: SP_A.clientId, status: 401 });
    const err = await mountError(request({}, spSecrets(SP_A.clientId, WRONG_SECRET)));
    expect(err.code).toBe(grpcStatus.UNAUTHENTICATED);
    expect(err.details).toContain(SP_A.clientId);
    expect(err.details).toContain('AADSTS7000215');
    expect(err.details).toContain('clientsecret in the nodePublishSecretRef Secret');
    expect(err.details).toContain('secret "db"');
    expect(err.details).not.toContain(WRONG_SECRET);
    expect(err.details).not.toContain(SECRET_A);
    // Entra ID was asked (and said no): the wrong secret did not ride on the cached token.
    expect(entra!.tokenRequestCount({ clientId: SP_A.clientId, status: 401 }) - before).toBe(1);
    expect((await provider.client.mount(request({}, spSecrets(SP_A.clientId, SECRET_A)))).files).toHaveLength(1);
  });

  it('a rotated secret gets its own credential and works at once', async () => {
    const rotated = 'canary-rotated-secret-4c2d';
    entra!.setSecrets(SP_A.clientId, [SECRET_A, rotated]);
    expect((await provider.client.mount(request({}, spSecrets(SP_A.clientId, rotated)))).files).toHaveLength(1);
    entra!.setSecrets(SP_A.clientId, [SECRET_A]);
  });

  it('an identity without access to the vault gets PermissionDenied naming it', async () => {
    const err = await mountError(request({}, spSecrets(SP_OUTSIDER.clientId, OUTSIDER_SECRET)));
    expect(err.code).toBe(grpcStatus.PERMISSION_DENIED);
    expect(err.details).toContain(`service principal with client ID ${SP_OUTSIDER.clientId}`);
  });

  it('an unknown client id fails with Entra ID\'s AADSTS700016 and says which parameters to check', async () => {
    const err = await mountError(request({}, spSecrets('d4d4d4d4-0000-4000-8000-00000000000d', 'canary-unknown-app-secret')));
    expect(err.code).toBe(grpcStatus.UNAUTHENTICATED);
    expect(err.details).toContain('AADSTS700016');
    expect(err.details).toContain('tenantID');
    expect(err.details).not.toContain('canary-unknown-app-secret');
  });

  it.each([
    ['no nodePublishSecretRef at all', {}, ['nodePublishSecretRef', 'clientid and clientsecret']],
    ['no clientid', { clientsecret: 'canary-only-secret' }, ['no "clientid"']],
    ['no clientsecret', { clientid: SP_A.clientId }, ['no "clientsecret"']],
    ['an empty clientsecret', { clientid: SP_A.clientId, clientsecret: '  ' }, ['no "clientsecret"']],
  ])('%s fails before any call to Azure, with a clear message', async (_name, secrets, fragments) => {
    const entraBefore = entra!.requests.length;
    const kvBefore = azure.keyVault.requests.length;
    const err = await mountError(request({}, secrets as Record<string, string>));
    expect(err.code).toBe(grpcStatus.INVALID_ARGUMENT);
    for (const fragment of fragments) expect(err.details).toContain(fragment);
    expect(err.details).not.toContain('canary-only-secret');
    expect(entra!.requests.length).toBe(entraBefore);
    expect(azure.keyVault.requests.length).toBe(kvBefore);
  });

  describe('in every named cloud: its vault DNS suffix and its Entra ID authority host', () => {
    it.each([
      ['AzureUSGovernmentCloud', 'gov-kv', 'login.microsoftonline.us', 'https://vault.usgovcloudapi.net'],
      // MSAL sends China's requests to the cloud's preferred alias of login.chinacloudapi.cn.
      ['azurechinacloud', 'cn-kv', 'login.partner.microsoftonline.cn', 'https://vault.azure.cn'],
      ['AZUREGERMANCLOUD', 'de-kv', 'login.microsoftonline.de', 'https://vault.microsoftazure.de'],
      ['azurePublicCloud', 'sp-kv', 'login.microsoftonline.com', 'https://vault.azure.net'],
    ])('cloudName %s reads %s with a token from %s', async (cloudName, vault, loginHost, resource) => {
      const result = await provider.client.mount(request({ cloudName, keyvaultName: vault }, spSecrets(SP_A.clientId, SECRET_A)));
      expect(result.files[0]!.contents.toString()).toBe(`${VALUE}-${vault}`);
      const suffix = resource.slice('https://'.length);
      expect(azure.proxy.tunnels).toContain(`${vault}.${suffix}:443`);
      const issued = entra!.requests.filter((r) => r.kind === 'token' && r.status === 200 && r.resource === resource);
      expect(issued.length).toBeGreaterThan(0);
      expect(issued.every((r) => r.host === loginHost)).toBe(true);
    });

    it('an unknown cloudName fails before any call and lists the valid names', async () => {
      const err = await mountError(request({ cloudName: 'AzureMarsCloud' }, spSecrets(SP_A.clientId, SECRET_A)));
      expect(err.code).toBe(grpcStatus.INVALID_ARGUMENT);
      for (const name of ['AzurePublicCloud', 'AzureUSGovernmentCloud', 'AzureChinaCloud', 'AzureGermanCloud', 'AzureStackCloud']) {
        expect(err.details).toContain(name);
      }
    });
  });

  it('never logs a client secret, a secret value or a token (canaries)', async () => {
    await provider.waitForLog(/mount failed/);
    const logs = provider.logs();
    expect(logs.length).toBeGreaterThan(0);
    for (const canary of [SECRET_A, SECRET_COUNT, WRONG_SECRET, OUTSIDER_SECRET, 'canary-rotated-secret-4c2d', 'canary-only-secret', VALUE, 'canary']) {
      expect(logs).not.toContain(canary);
    }
    for (const token of azure.tokens.all().map((t) => t.token)) expect(logs).not.toContain(token);
  });
});
