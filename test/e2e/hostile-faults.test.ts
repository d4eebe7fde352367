/**
 * Issue #14, faults: one bad answer from IMDS, Entra ID or Key Vault (hung, huge, garbled, throttling for an hour,
 * rejecting a cached token) must cost one request or one mount, never the node's provider, and the next mount after
 * the fault clears must succeed. Against the real provider process and the stand-ins, which reach it only through
 * AZURE_POD_IDENTITY_AUTHORITY_HOST, HTTPS_PROXY and NODE_EXTRA_CA_CERTS. Timing bounds are generous correctness
 * bounds (a fault that is not bounded would take minutes or hours), never performance targets.
 */
import { status as grpcStatus } from '@grpc/grpc-js';
import { startAzureStandIns, type AzureStandIns } from '../support/azure-standins';
import type { MountRequestInput } from '../support/driver-client';
import { startEntra, type EntraStandIn } from '../support/entra';
import { registerProviderCleanup, startProvider, type ProviderProcess } from '../support/provider-process';
import { objects, rejectionOf } from '../support/spc';

registerProviderCleanup();

const MB = 1024 * 1024;
const SP = { clientId: '5c5c5c5c-0000-4000-8000-00000000005c', identityId: 'hostile-sp', secret: 'sp-secret-canary-31d9f0' };

/** One user-assigned identity per test, so that one test's cached token never hides another test's fault. */
const identities = Array.from({ length: 12 }, (_, i) => ({
  id: `hostile-uai-${i}`,
  clientId: `0e0e0e0e-0000-4000-8000-0000000000${String(i).padStart(2, '0')}`,
  resourceId: `/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/hostile-${i}`,
}));
let nextIdentity = 0;
const takeIdentity = (): (typeof identities)[number] => identities[nextIdentity++]!;

let azure: AzureStandIns;
let entra: EntraStandIn | undefined;
let provider: ProviderProcess;

function miRequest(clientId: string, vault = 'faults-kv', extra: Record<string, string> = {}): MountRequestInput {
  return {
    attributes: {
      'csi.storage.k8s.io/pod.name': 'faults-0',
      'csi.storage.k8s.io/pod.namespace': 'faults',
      useVMManagedIdentity: 'true',
      userAssignedIdentityID: clientId,
      keyvaultName: vault,
      tenantID: azure.tenantId,
      objects: objects(['objectName: db\nobjectType: secret']),
      ...extra,
    },
  };
}

function spRequest(vault = 'sp-faults-kv', tenantId = azure.tenantId): MountRequestInput {
  return {
    attributes: {
      'csi.storage.k8s.io/pod.name': 'faults-0',
      'csi.storage.k8s.io/pod.namespace': 'faults',
      keyvaultName: vault,
      tenantID: tenantId,
      objects: objects(['objectName: db\nobjectType: secret']),
    },
    secrets: { clientid: SP.clientId, clientsecret: SP.secret },
  };
}

async function expectMounts(p: ProviderProcess, req: MountRequestInput): Promise<void> {
  const result = await p.client.mount(req, { deadlineMs: 30_000 });
  expect(result.files.map((f) => f.contents.toString())).toEqual(['db-value']);
}

async function metricsText(p: ProviderProcess): Promise<string> {
  const response = await fetch(`http://127.0.0.1:${p.prometheusPort}/metrics`);
  return response.text();
}

beforeAll(async () => {
  azure = await startAzureStandIns({
    identities: { userAssigned: identities },
    route: (host, port) => entra?.route(host, port),
  });
  entra = await startEntra({
    pki: azure.pki,
    tokens: azure.tokens,
    applications: [{ clientId: SP.clientId, identityId: SP.identityId, tenantId: azure.tenantId, secrets: [SP.secret] }],
  });
  azure.keyVault.addVault('faults-kv', { allow: identities.map((i) => i.id) });
  azure.keyVault.addVault('sp-faults-kv', { allow: [SP.identityId] });
  for (const vault of ['faults-kv', 'sp-faults-kv']) azure.keyVault.setSecret(vault, 'db', 'db-value');
  provider = await startProvider({ env: azure.providerEnv() });
}, 60_000);

afterEach(() => {
  azure.imds.hostile = undefined;
  azure.keyVault.hostile = undefined;
  if (entra) entra.hostile = undefined;
  azure.imds.clearFaults();
  azure.keyVault.clearFaults();
});

afterAll(async () => {
  await provider?.stop();
  await entra?.close();
  await azure?.close();
});

describe('1. a hung or throttling token endpoint costs one request, not every mount of the node', () => {
  it('a hung IMDS request fails its mount within the 10 s bound, naming IMDS; the next mount succeeds', async () => {
    const uai = takeIdentity();
    let hung = 0;
    azure.imds.hostile = (r) => (r.query['client_id'] === uai.clientId && hung++ === 0 ? { hang: true } : undefined);
    const started = Date.now();
    const err = await rejectionOf(provider.client.mount(miRequest(uai.clientId), { deadlineMs: 60_000 }));
    expect(Date.now() - started).toBeLessThan(40_000);
    expect(err.code).toBe(grpcStatus.UNAVAILABLE);
    expect(err.details).toContain("the node's managed identity endpoint (IMDS) at http://127.0.0.1:");
    expect(err.details).toContain('did not answer within 10s');
    expect(err.details).not.toContain('Key Vault "faults-kv" at');
    expect(err.details).not.toContain("vault's firewall");
    expect(err.details).not.toContain('Cannot read properties');
    // Recovery: the very next mount (the hung request is still open at IMDS).
    expect(azure.imds.hangingCount()).toBeGreaterThanOrEqual(0);
    await expectMounts(provider, miRequest(uai.clientId));
  }, 60_000);

  it('a mount whose deadline passes while IMDS hangs says it was waiting for a token from IMDS, not for Key Vault', async () => {
    const uai = takeIdentity();
    azure.imds.hostile = (r) => (r.query['client_id'] === uai.clientId ? { hang: true } : undefined);
    const err = await rejectionOf(provider.client.mount(miRequest(uai.clientId), { deadlineMs: 3_000 }));
    expect(err.code).toBe(grpcStatus.DEADLINE_EXCEEDED);
    expect(err.details).toContain("waiting for a token for the user-assigned managed identity with client ID");
    expect(err.details).toContain("from the node's managed identity endpoint (IMDS)");
    azure.imds.hostile = undefined;
    // The hung request is given up at its 10 s bound; the mount after it starts a fresh one and succeeds. (A waiter
    // that arrives while a shared request is older than STALE_FLIGHT_MS starts its own: caching-credential.test.ts.)
    const recovered = Date.now();
    for (;;) {
      const attempt = await provider.client.mount(miRequest(uai.clientId)).then(
        () => true,
        () => false,
      );
      if (attempt) break;
      expect(Date.now() - recovered).toBeLessThan(20_000);
    }
  }, 60_000);

  it('IMDS answering 429 with Retry-After: 3600 delays a mount by seconds, not an hour', async () => {
    const uai = takeIdentity();
    azure.imds.injectFaults({ status: 429, retryAfterSeconds: 3600, count: 1 });
    const started = Date.now();
    await expectMounts(provider, miRequest(uai.clientId));
    expect(Date.now() - started).toBeLessThan(30_000);
  }, 60_000);
});

describe('IMDS refused or silent: messages that name the endpoint and what to check', () => {
  it('a refused IMDS connection names the endpoint, says it is the node\'s managed identity endpoint and what to check', async () => {
    const closed = await startProvider({ env: { ...azure.providerEnv(), AZURE_POD_IDENTITY_AUTHORITY_HOST: 'http://127.0.0.1:9' } });
    try {
      const err = await rejectionOf(closed.client.mount(miRequest(identities[0]!.clientId), { deadlineMs: 30_000 }));
      expect(err.code).toBe(grpcStatus.UNAVAILABLE);
      expect(err.details).toContain("the node's managed identity endpoint (IMDS) at http://127.0.0.1:9 refused the connection");
      expect(err.details).toContain("it is the node's own Azure Instance Metadata Service");
      expect(err.details).toContain('hostNetwork');
      expect(err.details).toContain('169.254.169.254');
    } finally {
      await closed.stop();
    }
  }, 60_000);

  it('an IMDS that never answers is described as such, never as an internal JavaScript error', async () => {
    const uai = takeIdentity();
    azure.imds.hostile = (r) => (r.query['client_id'] === uai.clientId ? { hang: true } : undefined);
    const err = await rejectionOf(provider.client.mount(miRequest(uai.clientId), { deadlineMs: 60_000 }));
    expect(err.details).toMatch(/IMDS\) at http:\/\/127\.0\.0\.1:\d+ did not answer within 10s/);
    expect(err.details).not.toMatch(/Cannot read properties|undefined/);
  }, 60_000);
});

describe('2. a cached token Key Vault rejects is replaced once', () => {
  it('after Key Vault starts answering 401 to the cached token, the next mount gets a fresh token and succeeds, counted', async () => {
    const uai = takeIdentity();
    await expectMounts(provider, miRequest(uai.clientId));
    const imdsBefore = azure.imds.tokenRequestCount();
    // Revoked (identity re-created, clock skew…): Key Vault now answers 401 to the token the provider holds.
    azure.tokens.revokeIdentity(uai.id);
    await expectMounts(provider, miRequest(uai.clientId));
    expect(azure.imds.tokenRequestCount()).toBe(imdsBefore + 1);
    expect(await metricsText(provider)).toMatch(/csi_provider_azure_token_rejections_total\{identity_mode="vmManagedIdentity"[^}]*\} [1-9]/);
    // Only a rejected token is renewed: a 403 (no access) asks no new token.
    const again = azure.imds.tokenRequestCount();
    azure.keyVault.revoke('faults-kv', uai.id);
    const err = await rejectionOf(provider.client.mount(miRequest(uai.clientId)));
    expect(err.code).toBe(grpcStatus.PERMISSION_DENIED);
    expect(azure.imds.tokenRequestCount()).toBe(again);
    azure.keyVault.grant('faults-kv', uai.id);
  }, 60_000);
});

describe('3. one Retry-After: 3600 from a vault pauses it node-wide for seconds, not minutes', () => {
  it('the throttled mount succeeds once the vault recovers, within the 10 s cap, and so does the next', async () => {
    const uai = takeIdentity();
    await expectMounts(provider, miRequest(uai.clientId));
    azure.keyVault.injectFaults({ status: 429, retryAfterSeconds: 3600, count: 1, vault: 'faults-kv' });
    const started = Date.now();
    await expectMounts(provider, miRequest(uai.clientId));
    expect(Date.now() - started).toBeLessThan(25_000);
    await expectMounts(provider, miRequest(uai.clientId));
  }, 60_000);
});

describe('4. a huge answer fails one request and the provider keeps serving', () => {
  it.each([
    ['Key Vault', 48 * MB, '256 KiB'],
    ['IMDS', 32 * MB, '64 KiB'],
    ['Entra ID', 32 * MB, '64 KiB'],
  ])('%s answering %d bytes', async (who, bytes, limit) => {
    const uai = takeIdentity();
    const huge = { status: 200, body: '{"value":"', fillBytes: bytes };
    let served = 0;
    const once = <T>(match: (r: T) => boolean) => (r: T) => (match(r) && served++ === 0 ? huge : undefined);
    if (who === 'Key Vault') azure.keyVault.hostile = once((r) => r.path.startsWith('/secrets/db'));
    if (who === 'IMDS') azure.imds.hostile = once((r) => r.query['client_id'] === uai.clientId);
    if (who === 'Entra ID') entra!.hostile = once(() => true);
    const req = who === 'Entra ID' ? spRequest() : miRequest(uai.clientId);
    const err = await rejectionOf(provider.client.mount(req, { deadlineMs: 30_000 }));
    expect(err.code).toBe(grpcStatus.UNAVAILABLE);
    expect(err.details).toContain(`with a body larger than ${limit}`);
    expect(provider.exitInfo()).toBeUndefined();
    expect(provider.rssBytes()).toBeLessThan(400 * MB);
    await expectMounts(provider, req);
  }, 60_000);
});

describe('7. failures of the components in between are described, never as internal JavaScript errors', () => {
  it('IMDS answering 200 without expires_on says so', async () => {
    const uai = takeIdentity();
    azure.imds.hostile = (r) =>
      r.query['client_id'] === uai.clientId ? { status: 200, body: JSON.stringify({ access_token: 'x', token_type: 'Bearer' }) } : undefined;
    const err = await rejectionOf(provider.client.mount(miRequest(uai.clientId)));
    expect(err.code).toBe(grpcStatus.UNAVAILABLE);
    expect(err.details).toContain('answered 200 without a usable token');
    expect(err.details).not.toContain('expiresOn');
  });

  it('a proxy that refuses the CONNECT to the vault is named, with its status', async () => {
    const refusing = await startAzureStandIns({ identities: { userAssigned: identities }, refuseHosts: ['walled-kv.vault.azure.net'] });
    refusing.keyVault.addVault('walled-kv', { allow: identities.map((i) => i.id) });
    const p = await startProvider({ env: refusing.providerEnv() });
    try {
      const err = await rejectionOf(p.client.mount(miRequest(identities[0]!.clientId, 'walled-kv')));
      expect(err.code).toBe(grpcStatus.UNAVAILABLE);
      expect(err.details).toContain(`answered 403 by the HTTPS proxy ${refusing.proxy.url}`);
      expect(err.details).not.toContain('Cannot read properties');
      expect(err.details).not.toContain('grant it');
    } finally {
      await p.stop();
      await refusing.close();
    }
  }, 60_000);

  it('a proxy that refuses the CONNECT to Entra ID is named, never "Cannot read properties of undefined"', async () => {
    const refusing = await startAzureStandIns({ identities: { userAssigned: identities } });
    refusing.keyVault.addVault('sp-faults-kv', { allow: [SP.identityId] });
    const p = await startProvider({ env: refusing.providerEnv() });
    try {
      const err = await rejectionOf(p.client.mount(spRequest('sp-faults-kv', refusing.tenantId)));
      expect(err.code).toBe(grpcStatus.UNAVAILABLE);
      expect(err.details).toContain('https://login.microsoftonline.com');
      expect(err.details).toMatch(/403/);
      expect(err.details).not.toContain('Cannot read properties');
    } finally {
      await p.stop();
      await refusing.close();
    }
  }, 60_000);
});
