/**
 * End to end: workload identity. The driver passes the pod's service account token for audience
 * api://AzureADTokenExchange; the provider presents exactly that token to the Entra ID stand-in as the client
 * assertion, which checks it against the application's federated identity credentials as Entra ID does.
 */
import { status as grpcStatus, type ServiceError } from '@grpc/grpc-js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startAzureStandIns, type AzureStandIns } from '../support/azure-standins';
import type { MountRequestInput } from '../support/driver-client';
import {
  createServiceAccountIssuer,
  IDENTITY_BINDING_AUDIENCE,
  serviceAccountTokensAttribute,
  startEntra,
  WORKLOAD_IDENTITY_AUDIENCE,
  type EntraStandIn,
  type ServiceAccountIssuer,
} from '../support/entra';
import { registerProviderCleanup, startProvider, type ProviderProcess } from '../support/provider-process';
import { rejectionOf } from '../support/spc';

registerProviderCleanup();

const WI = { clientId: 'e1e1e1e1-0000-4000-8000-0000000000e1', identityId: 'wi-shop' };
const WI_PROVIDER_POD = { clientId: 'e2e2e2e2-0000-4000-8000-0000000000e2', identityId: 'wi-provider-pod' };
const VALUE = 'canary-wi-secret-value-31f7';

let entra: EntraStandIn | undefined;
let azure: AzureStandIns;
let provider: ProviderProcess;
let cluster: ServiceAccountIssuer;
let stranger: ServiceAccountIssuer;
const issuedTokens: string[] = [];

function saToken(serviceAccount: string, options: { issuer?: ServiceAccountIssuer; audience?: string; namespace?: string } = {}): string {
  const { token, expirationTimestamp } = (options.issuer ?? cluster).issue({
    namespace: options.namespace ?? 'shop',
    serviceAccount,
    audience: options.audience ?? WORKLOAD_IDENTITY_AUDIENCE,
  });
  issuedTokens.push(token);
  return serviceAccountTokensAttribute({ [options.audience ?? WORKLOAD_IDENTITY_AUDIENCE]: { token, expirationTimestamp } });
}

function request(serviceAccount: string, tokens: string | undefined, parameters: Record<string, string | undefined> = {}): MountRequestInput {
  const attributes: Record<string, string> = {
    'csi.storage.k8s.io/pod.name': `${serviceAccount}-pod`,
    'csi.storage.k8s.io/pod.namespace': 'shop',
    'csi.storage.k8s.io/pod.uid': `uid-${serviceAccount}`,
    'csi.storage.k8s.io/serviceAccount.name': serviceAccount,
    secretProviderClass: 'wi-class',
    clientID: WI.clientId,
    keyvaultName: 'wi-kv',
    tenantID: azure.tenantId,
    objects: 'array:\n  - |\n    objectName: db\n    objectType: secret\n',
  };
  if (tokens !== undefined) attributes['csi.storage.k8s.io/serviceAccount.tokens'] = tokens;
  for (const [k, v] of Object.entries(parameters)) {
    if (v === undefined) delete attributes[k];
    else attributes[k] = v;
  }
  return { attributes };
}

async function mountError(p: ProviderProcess, req: MountRequestInput): Promise<ServiceError> {
  return rejectionOf(p.client.mount(req));
}

beforeAll(async () => {
  cluster = createServiceAccountIssuer();
  stranger = createServiceAccountIssuer();
  azure = await startAzureStandIns({
    identities: { systemAssigned: { id: 'node-identity' } },
    route: (host, port) => entra?.route(host, port),
  });
  entra = await startEntra({
    pki: azure.pki,
    tokens: azure.tokens,
    trustedIssuers: [
      { issuer: cluster.issuer, publicKey: cluster.publicKey },
      { issuer: stranger.issuer, publicKey: stranger.publicKey },
    ],
    applications: [
      { ...WI, tenantId: azure.tenantId, federatedCredentials: [{ issuer: cluster.issuer, subject: 'system:serviceaccount:shop:shop-sa' }] },
      {
        ...WI_PROVIDER_POD,
        tenantId: azure.tenantId,
        federatedCredentials: [{ issuer: cluster.issuer, subject: 'system:serviceaccount:kube-system:csi-provider-azure' }],
      },
    ],
  });
  azure.keyVault.addVault('wi-kv', { allow: [WI.identityId, WI_PROVIDER_POD.identityId, 'node-identity'] });
  azure.keyVault.setSecret('wi-kv', 'db', VALUE);
  provider = await startProvider({ env: azure.providerEnv(), args: ['-v=5'] });
});

afterAll(async () => {
  await provider?.stop();
  await entra?.close();
  await azure?.close();
});

describe('workload identity (clientID, service account token as client assertion)', () => {
  it('mounts with the token for api://AzureADTokenExchange as the client assertion', async () => {
    const result = await provider.client.mount(request('shop-sa', saToken('shop-sa')));
    expect(result.files[0]!.contents.toString()).toBe(VALUE);
    expect(entra!.requests.filter((r) => r.kind === 'token').at(-1)).toMatchObject({
      host: 'login.microsoftonline.com',
      clientId: WI.clientId,
      credential: 'assertion',
      subject: 'system:serviceaccount:shop:shop-sa',
      status: 200,
    });
    expect(azure.keyVault.requests.filter((r) => r.status === 200).at(-1)!.identityId).toBe(WI.identityId);
  });

  it('100 mounts presenting the same service account token (50 at once, 50 in a row) cost one token request', async () => {
    const tokens = saToken('shop-sa');
    const before = entra!.tokenRequestCount({ clientId: WI.clientId });
    const results = await Promise.all(Array.from({ length: 50 }, () => provider.client.mount(request('shop-sa', tokens))));
    expect(results.every((r) => r.files.length === 1)).toBe(true);
    for (let i = 0; i < 50; i++) await provider.client.mount(request('shop-sa', tokens));
    expect(entra!.tokenRequestCount({ clientId: WI.clientId }) - before).toBe(1);
  });

  it('a different service account, right after an accepted one, is refused as Entra ID refuses it', async () => {
    await provider.client.mount(request('shop-sa', saToken('shop-sa')));
    const before = entra!.tokenRequestCount({ clientId: WI.clientId, subject: 'system:serviceaccount:shop:other-sa' });
    const err = await mountError(provider, request('other-sa', saToken('other-sa')));
    expect(err.code).toBe(grpcStatus.UNAUTHENTICATED);
    expect(err.details).toContain('AADSTS70021');
    expect(err.details).toContain('service account shop/other-sa');
    expect(err.details).toContain('federated identity credential');
    expect(err.details).toContain('system:serviceaccount:shop:other-sa');
    expect(entra!.tokenRequestCount({ clientId: WI.clientId, subject: 'system:serviceaccount:shop:other-sa' }) - before).toBe(1);
    // And the accepted one still works.
    expect((await provider.client.mount(request('shop-sa', saToken('shop-sa')))).files).toHaveLength(1);
  });

  it('a token for the right service account from another issuer (another cluster) is refused', async () => {
    const err = await mountError(provider, request('shop-sa', saToken('shop-sa', { issuer: stranger })));
    expect(err.code).toBe(grpcStatus.UNAUTHENTICATED);
    expect(err.details).toContain('AADSTS70021');
  });

  it('a rotated token of the same service account is presented afresh (one new request), and works', async () => {
    const before = entra!.tokenRequestCount({ clientId: WI.clientId });
    expect((await provider.client.mount(request('shop-sa', saToken('shop-sa')))).files).toHaveLength(1);
    expect(entra!.tokenRequestCount({ clientId: WI.clientId }) - before).toBe(1);
  });

  it.each([
    ['no serviceAccount.tokens attribute', undefined, ['clientID is set (workload identity)', 'CSIDriver', 'api://AzureADTokenExchange', 'tokenRequests']],
    [
      'tokens only for another audience',
      serviceAccountTokensAttribute({ 'api://other': { token: 'canary-other-audience-token', expirationTimestamp: '2099-01-01T00:00:00Z' } }),
      ['no token for audience api://AzureADTokenExchange', 'api://other', 'CSIDriver'],
    ],
    ['tokens that are not JSON', '{"api://AzureADTokenExchange": canary-broken-json', ['is not valid JSON', 'CSIDriver']],
    ['an empty token', serviceAccountTokensAttribute({ [WORKLOAD_IDENTITY_AUDIENCE]: { token: '', expirationTimestamp: '' } }), ['no token for audience']],
  ])('%s fails before any call to Azure, saying what the CSIDriver must request', async (_name, tokens, fragments) => {
    const entraBefore = entra!.requests.length;
    const err = await mountError(provider, request('shop-sa', tokens));
    expect(err.code).toBe(grpcStatus.INVALID_ARGUMENT);
    for (const fragment of fragments) expect(err.details).toContain(fragment);
    expect(err.details).not.toContain('canary');
    expect(entra!.requests.length).toBe(entraBefore);
  });

  it('useAzureTokenProxy looks for the api://AKSIdentityBinding audience instead', async () => {
    const err = await mountError(provider, request('shop-sa', saToken('shop-sa'), { useAzureTokenProxy: 'true' }));
    expect(err.code).toBe(grpcStatus.INVALID_ARGUMENT);
    expect(err.details).toContain(`no token for audience ${IDENTITY_BINDING_AUDIENCE}`);
  });

  it('never logs a service account token or an access token (canaries)', async () => {
    await provider.waitForLog(/mount failed/);
    const logs = provider.logs();
    expect(logs).not.toContain(VALUE);
    expect(logs).not.toContain('canary');
    expect(issuedTokens.length).toBeGreaterThan(5);
    for (const token of issuedTokens) {
      expect(logs).not.toContain(token);
      // Not even the signature part alone.
      expect(logs).not.toContain(token.split('.')[2]!);
    }
    for (const token of azure.tokens.all().map((t) => t.token)) expect(logs).not.toContain(token);
  });
});

describe("the provider's own workload identity environment never becomes a mount's identity", () => {
  let dir: string;
  let own: ProviderProcess;

  beforeAll(async () => {
    // As if the workload identity webhook had mutated the provider DaemonSet: its own client id, tenant and token file.
    dir = mkdtempSync(join(tmpdir(), 'wi-provider-env-'));
    const tokenFile = join(dir, 'azure-identity-token');
    writeFileSync(tokenFile, cluster.issue({ namespace: 'kube-system', serviceAccount: 'csi-provider-azure', audience: WORKLOAD_IDENTITY_AUDIENCE }).token);
    own = await startProvider({
      env: {
        ...azure.providerEnv(),
        AZURE_CLIENT_ID: WI_PROVIDER_POD.clientId,
        AZURE_TENANT_ID: azure.tenantId,
        AZURE_FEDERATED_TOKEN_FILE: tokenFile,
        AZURE_AUTHORITY_HOST: 'https://login.microsoftonline.com/',
      },
    });
  });

  afterAll(async () => {
    await own?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("a workload identity mount authenticates as the SecretProviderClass's clientID, not as the provider pod", async () => {
    const result = await own.client.mount(request('shop-sa', saToken('shop-sa')));
    expect(result.files).toHaveLength(1);
    expect(azure.keyVault.requests.filter((r) => r.status === 200).at(-1)!.identityId).toBe(WI.identityId);
    expect(entra!.tokenRequestCount({ clientId: WI_PROVIDER_POD.clientId })).toBe(0);
  });

  it('a node managed identity mount fails clearly instead of silently using the provider pod\'s identity', async () => {
    const err = await mountError(own, request('shop-sa', undefined, { clientID: undefined, useVMManagedIdentity: 'true' }));
    expect(err.code).toBe(grpcStatus.FAILED_PRECONDITION);
    expect(err.details).toContain('AZURE_FEDERATED_TOKEN_FILE');
    expect(err.details).toContain('provider DaemonSet');
    expect(entra!.tokenRequestCount({ clientId: WI_PROVIDER_POD.clientId })).toBe(0);
  });
});
