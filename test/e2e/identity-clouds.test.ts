/**
 * End to end: clouds. Azure Stack Hub (AzureStackCloud) with its environment file read per mount — with
 * Entra ID and with AD FS (tenantID "adfs") — concurrent mounts with different files, --cloud-name as the default, and
 * the node's managed identity asking IMDS for each named cloud's Key Vault resource.
 */
import { status as grpcStatus, type ServiceError } from '@grpc/grpc-js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startAzureStandIns, type AzureStandIns } from '../support/azure-standins';
import type { MountRequestInput } from '../support/driver-client';
import { startEntra, type EntraStandIn } from '../support/entra';
import { registerProviderCleanup, startProvider, type ProviderProcess } from '../support/provider-process';
import { rejectionOf } from '../support/spc';

registerProviderCleanup();

const STACK_SUFFIX = 'vault.local.azurestack.external';
const STACK2_SUFFIX = 'vault.stack2.example';
const ADFS_HOST = 'adfs.local.azurestack.external';
const STACK_SP = { clientId: '5a5a5a5a-0000-4000-8000-00000000005a', identityId: 'stack-sp', secret: 'canary-stack-secret-77ab' };
const ADFS_SP = { clientId: '5b5b5b5b-0000-4000-8000-00000000005b', identityId: 'adfs-sp', secret: 'canary-adfs-secret-90cd' };

let entra: EntraStandIn | undefined;
let azure: AzureStandIns;
let provider: ProviderProcess;
let dir: string;
const files: Record<string, string> = {};

function request(parameters: Record<string, string | undefined>, secrets: Record<string, string> = {}): MountRequestInput {
  const attributes: Record<string, string> = {
    'csi.storage.k8s.io/pod.name': 'stack-pod',
    'csi.storage.k8s.io/pod.namespace': 'edge',
    'csi.storage.k8s.io/pod.uid': 'uid-stack-pod',
    secretProviderClass: 'stack-class',
    keyvaultName: 'stack-kv',
    tenantID: azure.tenantId,
    cloudName: 'AzureStackCloud',
    cloudEnvFileName: files['aad']!,
    objects: 'array:\n  - |\n    objectName: db\n    objectType: secret\n',
  };
  for (const [k, v] of Object.entries(parameters)) {
    if (v === undefined) delete attributes[k];
    else attributes[k] = v;
  }
  return { attributes, secrets };
}

const stackSecrets = { clientid: STACK_SP.clientId, clientsecret: STACK_SP.secret };
const adfsSecrets = { clientid: ADFS_SP.clientId, clientsecret: ADFS_SP.secret };

async function mountError(p: ProviderProcess, req: MountRequestInput): Promise<ServiceError> {
  return rejectionOf(p.client.mount(req));
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cloud-env-'));
  const write = (name: string, content: unknown): void => {
    files[name] = join(dir, `${name}.json`);
    writeFileSync(files[name]!, typeof content === 'string' ? content : JSON.stringify(content, null, 2));
  };
  // What the reference documents for an Azure Stack Hub with Entra ID, and with AD FS ("adfs" stripped from the
  // endpoint).
  write('aad', {
    name: 'AzureStackCloud',
    activeDirectoryEndpoint: 'https://login.microsoftonline.com/',
    keyVaultEndpoint: `https://${STACK_SUFFIX}/`,
    keyVaultDNSSuffix: STACK_SUFFIX,
  });
  write('adfs', {
    name: 'AzureStackCloud',
    activeDirectoryEndpoint: `https://${ADFS_HOST}/`,
    keyVaultEndpoint: `https://${STACK_SUFFIX}`,
    keyVaultDNSSuffix: STACK_SUFFIX,
  });
  // Go's JSON decoder matches field names in any case; files written for the reference must work.
  write('stack2', { Name: 'AzureStackCloud', ActiveDirectoryEndpoint: 'https://login.microsoftonline.com', KeyVaultEndpoint: `https://${STACK2_SUFFIX}`, KeyVaultDNSSuffix: STACK2_SUFFIX });
  write('broken', '{"keyVaultDNSSuffix": ');
  write('incomplete', { activeDirectoryEndpoint: 'https://login.microsoftonline.com/' });

  azure = await startAzureStandIns({
    identities: { systemAssigned: { id: 'cloud-node' } },
    extraVaultSuffixes: [STACK_SUFFIX, STACK2_SUFFIX],
    route: (host, port) => entra?.route(host, port),
  });
  entra = await startEntra({
    pki: azure.pki,
    tokens: azure.tokens,
    adfsHosts: [ADFS_HOST],
    extraResources: [`https://${STACK_SUFFIX}`, `https://${STACK2_SUFFIX}`],
    applications: [
      { clientId: STACK_SP.clientId, identityId: STACK_SP.identityId, tenantId: azure.tenantId, secrets: [STACK_SP.secret] },
      { clientId: ADFS_SP.clientId, identityId: ADFS_SP.identityId, tenantId: 'adfs', secrets: [ADFS_SP.secret] },
    ],
  });
  const kv = azure.keyVault;
  kv.addVault('stack-kv', { suffix: STACK_SUFFIX, allow: [STACK_SP.identityId] });
  kv.addVault('adfs-kv', { suffix: STACK_SUFFIX, tenantId: 'adfs', allow: [ADFS_SP.identityId] });
  kv.addVault('stack2-kv', { suffix: STACK2_SUFFIX, allow: [STACK_SP.identityId] });
  kv.setSecret('stack-kv', 'db', 'stack-value');
  kv.setSecret('adfs-kv', 'db', 'adfs-value');
  kv.setSecret('stack2-kv', 'db', 'stack2-value');
  for (const [name, suffix] of [['pub-kv', 'vault.azure.net'], ['gov-kv', 'vault.usgovcloudapi.net'], ['cn-kv', 'vault.azure.cn'], ['de-kv', 'vault.microsoftazure.de']] as const) {
    kv.addVault(name, { suffix, allow: ['cloud-node', STACK_SP.identityId] });
    kv.setSecret(name, 'db', `${name}-value`);
  }
  provider = await startProvider({ env: azure.providerEnv(), args: ['-v=5', `--cloud-env-file-dir=${dir}`] });
});

afterAll(async () => {
  await provider?.stop();
  await entra?.close();
  await azure?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('AzureStackCloud with cloudEnvFileName', () => {
  it('reads the vault under the file\'s DNS suffix with a token for the file\'s Key Vault resource (Entra ID)', async () => {
    const result = await provider.client.mount(request({}, stackSecrets));
    expect(result.files[0]!.contents.toString()).toBe('stack-value');
    expect(azure.proxy.tunnels).toContain(`stack-kv.${STACK_SUFFIX}:443`);
    const token = entra!.requests.filter((r) => r.kind === 'token').at(-1)!;
    expect(token).toMatchObject({ host: 'login.microsoftonline.com', clientId: STACK_SP.clientId, resource: `https://${STACK_SUFFIX}`, status: 200 });
    // A custom cloud skips MSAL's instance discovery: nothing asked login.microsoftonline.com about the Stack's hosts.
    expect(entra!.requests.some((r) => r.kind === 'instance-discovery')).toBe(false);
  });

  it('with AD FS (tenantID "adfs") asks the AD FS token endpoint of the file\'s activeDirectoryEndpoint', async () => {
    const result = await provider.client.mount(request({ keyvaultName: 'adfs-kv', tenantID: 'adfs', cloudEnvFileName: files['adfs'] }, adfsSecrets));
    expect(result.files[0]!.contents.toString()).toBe('adfs-value');
    const token = entra!.requests.filter((r) => r.kind === 'token').at(-1)!;
    expect(token).toMatchObject({ host: ADFS_HOST, path: '/adfs/oauth2/token', clientId: ADFS_SP.clientId, status: 200 });
  });

  it('concurrent mounts with different environment files do not interfere', async () => {
    const mounts = Array.from({ length: 20 }, (_, i) =>
      i % 2 === 0
        ? provider.client.mount(request({}, stackSecrets)).then((r) => ['stack-value', r.files[0]!.contents.toString()])
        : provider.client
            .mount(request({ keyvaultName: 'stack2-kv', cloudEnvFileName: files['stack2'] }, stackSecrets))
            .then((r) => ['stack2-value', r.files[0]!.contents.toString()]),
    );
    for (const [expected, actual] of await Promise.all(mounts)) expect(actual).toBe(expected);
    expect(azure.proxy.tunnels).toContain(`stack2-kv.${STACK2_SUFFIX}:443`);
  });

  it('missing cloudEnvFileName fails before any call to Azure', async () => {
    const kvBefore = azure.keyVault.requests.length;
    const err = await mountError(provider, request({ cloudEnvFileName: undefined }, stackSecrets));
    expect(err.code).toBe(grpcStatus.INVALID_ARGUMENT);
    expect(err.details).toContain('cloudEnvFileName is empty');
    expect(azure.keyVault.requests.length).toBe(kvBefore);
  });

  it.each([
    ['a file that does not exist', () => join(dir, 'nope.json'), grpcStatus.FAILED_PRECONDITION, ['cannot be used', 'regular file', 'mount the cloud environment file']],
    ['a file that is not JSON', () => files['broken']!, grpcStatus.INVALID_ARGUMENT, ['is not valid JSON']],
    ['a file without keyVaultDNSSuffix', () => files['incomplete']!, grpcStatus.INVALID_ARGUMENT, ['has no keyVaultDNSSuffix']],
  ])('%s fails with a message naming the file and the fix', async (_name, path, code, fragments) => {
    const err = await mountError(provider, request({ cloudEnvFileName: path() }, stackSecrets));
    expect(err.code).toBe(code);
    expect(err.details).toContain(path());
    for (const fragment of fragments) expect(err.details).toContain(fragment);
  });
});

describe("the node's managed identity in each named cloud", () => {
  it.each([
    ['AzurePublicCloud', 'pub-kv', 'https://vault.azure.net'],
    ['AzureUSGovernmentCloud', 'gov-kv', 'https://vault.usgovcloudapi.net'],
    ['AzureChinaCloud', 'cn-kv', 'https://vault.azure.cn'],
    ['AzureGermanCloud', 'de-kv', 'https://vault.microsoftazure.de'],
  ])('%s: IMDS is asked for %s\'s resource %s', async (cloudName, vault, resource) => {
    const result = await provider.client.mount(request({ cloudName, keyvaultName: vault, cloudEnvFileName: undefined, useVMManagedIdentity: 'true' }));
    expect(result.files[0]!.contents.toString()).toBe(`${vault}-value`);
    expect(azure.imds.requests.filter((r) => r.status === 200).map((r) => r.query['resource'])).toContain(resource);
  });
});

describe('--cloud-name sets the default cloud', () => {
  it('a SecretProviderClass without cloudName uses the --cloud-name cloud (vault suffix and Entra ID host)', async () => {
    const gov = await startProvider({ env: azure.providerEnv(), args: ['--cloud-name', 'azureusgovernmentcloud'] });
    try {
      const result = await gov.client.mount(request({ cloudName: undefined, cloudEnvFileName: undefined, keyvaultName: 'gov-kv' }, stackSecrets));
      expect(result.files[0]!.contents.toString()).toBe('gov-kv-value');
      expect(entra!.requests.filter((r) => r.kind === 'token').at(-1)).toMatchObject({ host: 'login.microsoftonline.us', status: 200 });
      // A SecretProviderClass's own cloudName still wins.
      const pub = await gov.client.mount(request({ cloudName: 'AzurePublicCloud', cloudEnvFileName: undefined, keyvaultName: 'pub-kv' }, stackSecrets));
      expect(pub.files[0]!.contents.toString()).toBe('pub-kv-value');
    } finally {
      await gov.stop();
    }
  });

  it('an unknown --cloud-name stops the provider at start with the list of valid names', async () => {
    await expect(startProvider({ env: azure.providerEnv(), args: ['--cloud-name', 'AzureMarsCloud'], startTimeoutMs: 5000 })).rejects.toThrow(
      /AzureMarsCloud.*AzurePublicCloud, AzureUSGovernmentCloud, AzureChinaCloud, AzureGermanCloud, AzureStackCloud/s,
    );
  });
});

it('never logs a client secret or a token (canaries)', () => {
  const logs = provider.logs();
  for (const canary of [STACK_SP.secret, ADFS_SP.secret, 'canary']) expect(logs).not.toContain(canary);
  for (const token of azure.tokens.all().map((t) => t.token)) expect(logs).not.toContain(token);
});
