/**
 * End to end: Entra ID token requests take the route the reference (Go's net/http) would take, like Key Vault's.
 * Each case starts the provider with a NO_PROXY value on which Go's rules and the Azure SDK's own proxy policy
 * disagree, and shows the route at the CONNECT proxy (the only way to the stand-ins' real host names).
 */
import { startAzureStandIns, type AzureStandIns } from '../support/azure-standins';
import { startEntra, type EntraStandIn } from '../support/entra';
import { registerProviderCleanup, startProvider, type ProviderProcess } from '../support/provider-process';
import { rejectionOf } from '../support/spc';

registerProviderCleanup();

const SP = { clientId: 'd4d4d4d4-0000-4000-8000-00000000000d', identityId: 'sp-proxy' };
const SECRET = 'canary-proxy-route-secret-3e7a';
const LOGIN = 'login.microsoftonline.com:443';

let entra: EntraStandIn | undefined;
let azure: AzureStandIns;
let provider: ProviderProcess | undefined;

beforeAll(async () => {
  azure = await startAzureStandIns({ route: (host, port) => entra?.route(host, port) });
  entra = await startEntra({
    pki: azure.pki,
    tokens: azure.tokens,
    applications: [{ ...SP, tenantId: azure.tenantId, secrets: [SECRET] }],
  });
  azure.keyVault.addVault('route-kv', { allow: [SP.identityId] });
  azure.keyVault.setSecret('route-kv', 'db', 'routed');
});

afterEach(async () => {
  await provider?.stop();
  provider = undefined;
});

afterAll(async () => {
  await entra?.close();
  await azure?.close();
});

async function mountWith(noProxy: string): ReturnType<ProviderProcess['client']['mount']> {
  provider = await startProvider({ env: { ...azure.providerEnv(), NO_PROXY: `127.0.0.1,localhost,::1,${noProxy}` } });
  return provider.client.mount({
    attributes: {
      'csi.storage.k8s.io/pod.name': 'route-pod',
      'csi.storage.k8s.io/pod.namespace': 'default',
      'csi.storage.k8s.io/pod.uid': 'uid-route-pod',
      keyvaultName: 'route-kv',
      tenantID: azure.tenantId,
      objects: 'array:\n  - |\n    objectName: db\n    objectType: secret\n',
    },
    secrets: { clientid: SP.clientId, clientsecret: SECRET },
  });
}

const loginTunnels = (): number => azure.proxy.tunnels.filter((t) => t === LOGIN).length;

describe('Entra ID requests follow the reference (Go) proxy rules', () => {
  it('".login.microsoftonline.com" exempts only subdomains: the token request still goes through the proxy', async () => {
    // The Azure SDK's own policy reads a leading-dot entry as the domain too, and would have gone direct.
    const before = loginTunnels();
    const result = await mountWith('.login.microsoftonline.com');
    expect(result.files.map((f) => f.contents.toString())).toEqual(['routed']);
    expect(loginTunnels()).toBeGreaterThan(before);
  });

  it('a bare "microsoftonline.com" exempts its subdomains: the token request goes direct, not through the proxy', async () => {
    // The SDK matches a bare entry exactly and would have used the proxy (and succeeded); Go goes direct, and here
    // direct reaches nothing, so the mount fails naming Entra ID — with no tunnel opened to it.
    const before = loginTunnels();
    const err = await rejectionOf(mountWith('microsoftonline.com'));
    expect(err.details).toContain('Entra ID');
    expect(err.details).not.toContain(SECRET);
    expect(loginTunnels()).toBe(before);
  });
});
