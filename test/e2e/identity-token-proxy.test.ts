/**
 * End to end: identity binding through the cluster's token proxy (useAzureTokenProxy). The stand-in is the
 * AKS API server endpoint with SNI routing: the identity binding proxy answers only a TLS handshake for its own
 * server name ("a<hash>.ests.aks", from the cluster id), anything else reaches the "API server". The provider gets
 * the proxy's URL and server name from --token-proxy-url and --sni-name, and trusts the proxy's certificate through
 * NODE_EXTRA_CA_CERTS because this machine has no service account CA mounted (the product uses that CA when present).
 */
import { status as grpcStatus, type ServiceError } from '@grpc/grpc-js';
import { existsSync } from 'node:fs';
import { startAzureStandIns, type AzureStandIns } from '../support/azure-standins';
import type { MountRequestInput } from '../support/driver-client';
import {
  createServiceAccountIssuer,
  IDENTITY_BINDING_AUDIENCE,
  LOGIN_HOSTS,
  serviceAccountTokensAttribute,
  startIdentityBindingProxy,
  type IdentityBindingProxy,
  type ServiceAccountIssuer,
} from '../support/entra';
import { registerProviderCleanup, startProvider, type ProviderProcess } from '../support/provider-process';
import { rejectionOf } from '../support/spc';

registerProviderCleanup();

const SERVICE_ACCOUNT_CA = '/var/run/secrets/kubernetes.io/serviceaccount/ca.crt';
// On a machine that is itself a pod, the provider would trust only that CA, not the test CA: skip rather than lie.
const describeHere = existsSync(SERVICE_ACCOUNT_CA) ? describe.skip : describe;

const BOUND = { clientId: 'b0b0b0b0-0000-4000-8000-0000000000b0', identityId: 'tp-bound-identity' };
const VALUE = 'canary-token-proxy-value-6a1c';

let azure: AzureStandIns;
let proxy: IdentityBindingProxy;
let cluster: ServiceAccountIssuer;
let provider: ProviderProcess;
const presented: string[] = [];

function tokens(serviceAccount: string, audience = IDENTITY_BINDING_AUDIENCE): string {
  const { token, expirationTimestamp } = cluster.issue({ namespace: 'shop', serviceAccount, audience });
  presented.push(token);
  return serviceAccountTokensAttribute({ [audience]: { token, expirationTimestamp } });
}

function request(serviceAccount: string, parameters: Record<string, string | undefined> = {}): MountRequestInput {
  const attributes: Record<string, string> = {
    'csi.storage.k8s.io/pod.name': `${serviceAccount}-pod`,
    'csi.storage.k8s.io/pod.namespace': 'shop',
    'csi.storage.k8s.io/pod.uid': `uid-${serviceAccount}`,
    'csi.storage.k8s.io/serviceAccount.name': serviceAccount,
    'csi.storage.k8s.io/serviceAccount.tokens': tokens(serviceAccount),
    secretProviderClass: 'tp-class',
    useAzureTokenProxy: 'true',
    clientID: BOUND.clientId,
    keyvaultName: 'tp-kv',
    tenantID: azure.tenantId,
    objects: 'array:\n  - |\n    objectName: db\n    objectType: secret\n',
  };
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
  azure = await startAzureStandIns();
  proxy = await startIdentityBindingProxy({
    pki: azure.pki,
    tokens: azure.tokens,
    clusterId: '696995ccb303450001b31a18',
    issuer: cluster,
    bindings: [{ namespace: 'shop', serviceAccount: 'bound-sa', ...BOUND, tenantId: azure.tenantId }],
  });
  azure.keyVault.addVault('tp-kv', { allow: [BOUND.identityId] });
  azure.keyVault.setSecret('tp-kv', 'db', VALUE);
});

afterAll(async () => {
  await proxy?.close();
  await azure?.close();
});

describeHere('identity binding through the token proxy (--token-proxy-url, --sni-name)', () => {
  beforeAll(async () => {
    provider = await startProvider({
      env: azure.providerEnv(),
      args: ['-v=5', '--token-proxy-url', proxy.url, '--sni-name', proxy.sniName],
    });
  });

  afterAll(async () => {
    await provider?.stop();
  });

  it('exchanges the api://AKSIdentityBinding token at the proxy, over TLS with the proxy\'s server name', async () => {
    const result = await provider.client.mount(request('bound-sa'));
    expect(result.files[0]!.contents.toString()).toBe(VALUE);
    const token = proxy.requests.filter((r) => r.kind === 'token').at(-1)!;
    expect(token).toMatchObject({
      servername: proxy.sniName,
      method: 'POST',
      path: `/${azure.tenantId}/oauth2/v2.0/token`,
      clientId: BOUND.clientId,
      subject: 'system:serviceaccount:shop:bound-sa',
      status: 200,
    });
    expect(proxy.sniName).toBe('aeaf29ip1hi5q38ebc3u4daum81u0unk52t5bg50j25234fmuj78g.ests.aks');
    // Every request reached the proxy under its own name, and Entra ID itself was never asked.
    expect(proxy.requests.every((r) => r.servername === proxy.sniName)).toBe(true);
    expect(azure.proxy.tunnels.some((t) => LOGIN_HOSTS.some((h) => t.startsWith(`${h}:`)))).toBe(false);
    expect(azure.keyVault.requests.filter((r) => r.status === 200).at(-1)!.identityId).toBe(BOUND.identityId);
  });

  it('100 mounts presenting the same token (50 at once, 50 in a row) cost one token request at the proxy', async () => {
    const req = request('bound-sa');
    const before = proxy.tokenRequestCount();
    const results = await Promise.all(Array.from({ length: 50 }, () => provider.client.mount(req)));
    expect(results.every((r) => r.files.length === 1)).toBe(true);
    for (let i = 0; i < 50; i++) await provider.client.mount(req);
    expect(proxy.tokenRequestCount() - before).toBe(1);
  });

  it('a service account without a binding, right after an accepted one, is refused by the proxy', async () => {
    await provider.client.mount(request('bound-sa'));
    const err = await mountError(provider, request('unbound-sa'));
    expect(err.code).toBe(grpcStatus.UNAUTHENTICATED);
    expect(err.details).toContain('AADSTS70021');
    expect(err.details).toContain('identity binding');
    expect(err.details).toContain('shop/unbound-sa');
    expect(proxy.requests.filter((r) => r.kind === 'token').at(-1)).toMatchObject({ subject: 'system:serviceaccount:shop:unbound-sa', status: 400 });
  });

  it('never logs a service account token or an access token (canaries)', () => {
    const logs = provider.logs();
    expect(logs).not.toContain(VALUE);
    for (const token of presented) expect(logs).not.toContain(token.split('.')[2]!);
    for (const token of azure.tokens.all().map((t) => t.token)) expect(logs).not.toContain(token);
  });
});

describeHere('the token proxy fails clearly when it cannot be reached as AKS serves it', () => {
  it('without --sni-name and without a service account CA, it says how to give the server name', async () => {
    const p = await startProvider({ env: azure.providerEnv(), args: ['--token-proxy-url', proxy.url] });
    try {
      const err = await mountError(p, request('bound-sa'));
      expect(err.code).toBe(grpcStatus.FAILED_PRECONDITION);
      expect(err.details).toContain(SERVICE_ACCOUNT_CA);
      expect(err.details).toContain('--sni-name');
    } finally {
      await p.stop();
    }
  });

  it('with a wrong --sni-name the handshake reaches the API server, whose certificate does not match: Unavailable', async () => {
    const p = await startProvider({ env: azure.providerEnv(), args: ['--token-proxy-url', proxy.url, '--sni-name', 'awrongname.ests.aks'] });
    try {
      const err = await mountError(p, request('bound-sa'));
      expect(err.code).toBe(grpcStatus.UNAVAILABLE);
      expect(err.details).toContain('awrongname.ests.aks');
      expect(err.details).toContain('--sni-name');
      expect(proxy.handshakes).toContain('awrongname.ests.aks');
    } finally {
      await p.stop();
    }
  });

  it('a --token-proxy-url that is not https is refused with the rule it breaks', async () => {
    const p = await startProvider({ env: azure.providerEnv(), args: ['--token-proxy-url', 'http://127.0.0.1:1', '--sni-name', proxy.sniName] });
    try {
      const err = await mountError(p, request('bound-sa'));
      expect(err.code).toBe(grpcStatus.FAILED_PRECONDITION);
      expect(err.details).toContain('--token-proxy-url "http://127.0.0.1:1" must use https');
    } finally {
      await p.stop();
    }
  });
});
