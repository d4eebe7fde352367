import { CredentialCache } from '../../../src/identity/credentials';
import { ProviderError } from '../../../src/errors';
import { knownCloud, type Cloud } from '../../../src/spec/clouds';
import type { IdentitySpec, ServiceAccountToken } from '../../../src/spec/types';
import { noopMetrics, type ProviderMetrics } from '../../../src/observability/metrics';

const cloud = knownCloud('AzurePublicCloud')!;
const gov = knownCloud('AzureUSGovernmentCloud')!;
const tenant = '00000000-0000-4000-8000-000000000001';

const sa = (token: string, overrides: Partial<ServiceAccountToken> = {}): ServiceAccountToken => ({
  namespace: 'shop',
  name: 'web',
  audience: 'api://AzureADTokenExchange',
  token,
  expiresAt: Date.now() + 3600_000,
  ...overrides,
});

function lookups(): ProviderMetrics & { hits: boolean[] } {
  const hits: boolean[] = [];
  return { ...noopMetrics, hits, countCacheLookup: (_cache, hit) => void hits.push(hit) };
}

describe('CredentialCache keys: everything that decides who the caller is', () => {
  const same = (a: IdentitySpec, b: IdentitySpec, cloudA: Cloud = cloud, cloudB: Cloud = cloud, tenantB = tenant): boolean => {
    const cache = new CredentialCache({ userAgentPrefix: 'test' });
    return cache.resolve(a, cloudA, tenant).credential === cache.resolve(b, cloudB, tenantB).credential;
  };
  const sp = (clientSecret: string, clientId = 'app-1'): IdentitySpec => ({ mode: 'servicePrincipal', clientId, clientSecret });
  const wi = (token: ServiceAccountToken, clientId = 'app-1'): IdentitySpec => ({ mode: 'workloadIdentity', clientId, serviceAccountToken: token });

  it('shares a credential between mounts of the same identity', () => {
    expect(same(sp('s1'), sp('s1'))).toBe(true);
    expect(same(sp('s1', 'APP-1'), sp('s1', 'app-1'))).toBe(true);
    expect(same(wi(sa('t1')), wi(sa('t1')))).toBe(true);
    expect(same({ mode: 'vmManagedIdentity', userAssigned: undefined }, { mode: 'vmManagedIdentity', userAssigned: undefined })).toBe(true);
  });

  it('never shares between different secrets, tokens, service accounts, client ids, tenants, clouds or pods', () => {
    expect(same(sp('s1'), sp('s2'))).toBe(false);
    expect(same(sp('s1'), sp('s1', 'app-2'))).toBe(false);
    expect(same(sp('s1'), sp('s1'), cloud, gov)).toBe(false);
    expect(same(sp('s1'), sp('s1'), cloud, cloud, '00000000-0000-4000-8000-000000000002')).toBe(false);
    expect(same(wi(sa('t1')), wi(sa('t2')))).toBe(false);
    expect(same(wi(sa('t1')), wi(sa('t1', { name: 'other' })))).toBe(false);
    expect(same(wi(sa('t1')), { mode: 'tokenProxy', clientId: 'app-1', serviceAccountToken: sa('t1', { audience: 'api://AKSIdentityBinding' }) })).toBe(false);
    const pod = (uid: string): IdentitySpec => ({ mode: 'podIdentity', pod: { name: 'p', namespace: 'n', uid } });
    expect(same(pod('u1'), pod('u1'))).toBe(true);
    expect(same(pod('u1'), pod('u2'))).toBe(false);
    expect(
      same(
        { mode: 'vmManagedIdentity', userAssigned: { kind: 'clientId', value: '00000000-0000-4000-8000-0000000000aa' } },
        { mode: 'vmManagedIdentity', userAssigned: { kind: 'clientId', value: '00000000-0000-4000-8000-0000000000bb' } },
      ),
    ).toBe(false);
  });

  it('keys never contain a secret or a token', () => {
    const cache = new CredentialCache({ userAgentPrefix: 'test' });
    expect(cache.resolve(sp('hunter2-secret'), cloud, tenant).key).not.toContain('hunter2');
    const resolved = cache.resolve(wi(sa('eyJ.token-text.sig')), cloud, tenant);
    expect(resolved.key).not.toContain('token-text');
    expect(resolved.description).not.toContain('token-text');
  });

  it('ends a workload identity entry when its service account token expires', () => {
    const cache = new CredentialCache({ userAgentPrefix: 'test' });
    const expired = wi(sa('t-old', { expiresAt: Date.now() - 1 }));
    expect(cache.resolve(expired, cloud, tenant).credential).not.toBe(cache.resolve(expired, cloud, tenant).credential);
  });

  it('is bounded in number, dropping the least recently used, and counts hits and misses', () => {
    const metrics = lookups();
    const cache = new CredentialCache({ userAgentPrefix: 'test', maxEntries: 2, metrics });
    const a = cache.resolve(sp('a'), cloud, tenant).credential;
    cache.resolve(sp('b'), cloud, tenant);
    expect(cache.resolve(sp('a'), cloud, tenant).credential).toBe(a);
    cache.resolve(sp('c'), cloud, tenant);
    expect(cache.size).toBe(2);
    expect(cache.resolve(sp('a'), cloud, tenant).credential).toBe(a);
    expect(metrics.hits).toEqual([false, false, true, false, true]);
    cache.resolve(sp('b'), cloud, tenant); // evicted earlier: a miss
    expect(metrics.hits.at(-1)).toBe(false);
  });

  it('entries expire after maxAgeMs', () => {
    const cache = new CredentialCache({ userAgentPrefix: 'test', maxAgeMs: -1 });
    expect(cache.resolve(sp('a'), cloud, tenant).credential).not.toBe(cache.resolve(sp('a'), cloud, tenant).credential);
  });

  it("refuses the node's managed identity when the provider's own environment would turn it into workload identity", () => {
    const cache = new CredentialCache({
      userAgentPrefix: 'test',
      ambientWorkloadIdentity: { clientId: true, tenantId: true, federatedTokenFile: true },
    });
    let error: unknown;
    try {
      cache.resolve({ mode: 'vmManagedIdentity', userAssigned: undefined }, cloud, tenant);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ProviderError);
    expect((error as ProviderError).status).toBe('FailedPrecondition');
    expect((error as Error).message).toContain('AZURE_FEDERATED_TOKEN_FILE');
    // Other modes name their identity explicitly and are unaffected.
    expect(() => cache.resolve(sp('s'), cloud, tenant)).not.toThrow();
  });
});

describe('CredentialCache memory bound (issue 14)', () => {
  it('keeps at most maxMemoryBytes of estimated identities, least recently used out first, and tells the vault readers', () => {
    const cache = new CredentialCache({ userAgentPrefix: 'test', maxMemoryBytes: 3 * 96 * 1024 });
    const dropped: string[] = [];
    cache.onDropped = (key) => dropped.push(key);
    const keys = ['s1', 's2', 's3', 's4'].map(
      (secret) => cache.resolve({ mode: 'servicePrincipal', clientId: 'app-1', clientSecret: secret }, cloud, tenant).key,
    );
    expect(cache.size).toBe(3);
    expect(dropped).toEqual([keys[0]]);
    // Managed identities weigh far less: many fit beside them.
    for (let i = 0; i < 10; i++) {
      cache.resolve({ mode: 'vmManagedIdentity', userAssigned: { kind: 'clientId', value: `00000000-0000-4000-8000-0000000000${i}0` } }, cloud, tenant);
    }
    expect(cache.size).toBeGreaterThan(3);
  });
});
