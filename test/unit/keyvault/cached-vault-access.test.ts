import pino from 'pino';
import { ProviderError, type StatusName } from '../../../src/errors';
import { CachingVaultAccess, type ValueCacheOptions } from '../../../src/keyvault/cached-vault-access';
import { cacheIdentityKey } from '../../../src/keyvault/cache-key';
import type { FetchedCertificate, FetchedKey, FetchedSecret, ObjectMetadata, VaultAccess, VaultReader } from '../../../src/spec/ports';
import type { IdentitySpec, MountSpec } from '../../../src/spec/types';
import { noopMetrics, type ProviderMetrics } from '../../../src/observability/metrics';

/**
 * A vault in memory, as Key Vault decides: each read checks the identity's role at the moment of the read, and a
 * disabled secret is refused (Key Vault answers 403 for a disabled secret). Counts what reached it.
 */
class FakeVault implements VaultAccess {
  readonly secrets = new Map<string, { value: string; version: string; enabled: boolean }>();
  /** Identity key -> may read secrets. */
  readonly roles = new Map<string, boolean>();
  reads = 0;
  outage: StatusName | undefined;

  async open(spec: MountSpec): Promise<VaultReader> {
    const who = cacheIdentityKey(spec);
    const fail = (status: StatusName, statusCode: number, name: string): ProviderError =>
      new ProviderError(status, `secret "${name}" in Key Vault "${spec.vaultName}": ${statusCode}`, {
        cause: Object.assign(new Error('rest'), { name: 'RestError', statusCode }),
      });
    return {
      vaultName: spec.vaultName,
      getSecret: async (name: string): Promise<FetchedSecret> => {
        this.reads++;
        if (this.outage === 'ResourceExhausted') throw fail('ResourceExhausted', 429, name);
        if (this.outage === 'Unavailable') throw fail('Unavailable', 503, name);
        if (!this.roles.get(who)) throw fail('PermissionDenied', 403, name);
        const secret = this.secrets.get(name);
        if (!secret) throw fail('NotFound', 404, name);
        if (!secret.enabled) throw fail('PermissionDenied', 403, name);
        return { value: secret.value, version: secret.version, contentType: undefined, certificateKeyId: undefined };
      },
      getKey: () => Promise.reject(new Error('not used')),
      getCertificate: () => Promise.reject(new Error('not used')),
      listVersions: () => Promise.resolve([]),
      listSecrets: () => Promise.resolve([]),
    };
  }
}

const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const CLIENT_A = '11111111-1111-1111-1111-111111111111';
const CLIENT_B = '22222222-2222-2222-2222-222222222222';

function jwt(sub: string, nonce: string): string {
  const part = (o: object): string => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${part({ alg: 'RS256' })}.${part({ sub, jti: nonce })}.sig`;
}

function workload(clientId: string, sa: string, nonce: string): IdentitySpec {
  return {
    mode: 'workloadIdentity',
    clientId,
    serviceAccountToken: { namespace: 'apps', name: sa, audience: 'api://AzureADTokenExchange', token: jwt(`system:serviceaccount:apps:${sa}`, nonce), expiresAt: undefined },
  };
}

function spec(uid: string, identity: IdentitySpec, cacheTtlMs = 60_000): MountSpec {
  return {
    pod: { name: `pod-${uid}`, namespace: 'apps', uid, serviceAccountName: 'sa' },
    secretProviderClass: 'spc',
    vaultName: 'kv1',
    tenantId: TENANT,
    cloudName: 'AzurePublicCloud',
    cloudEnvFileName: '',
    identity,
    objects: [],
    ...(cacheTtlMs > 0 ? { cacheTtlMs } : {}),
    warnings: [],
  };
}

interface Counts {
  hits: number;
  misses: number;
  evictions: number;
  stale: number;
  bytes: number;
}

function setup(overrides: Partial<ValueCacheOptions> = {}): { vault: FakeVault; access: CachingVaultAccess; clock: { now: number }; counts: Counts; logs: string[] } {
  const vault = new FakeVault();
  vault.secrets.set('db', { value: 'the-secret-value', version: 'v1', enabled: true });
  const clock = { now: 1_000_000 };
  const counts: Counts = { hits: 0, misses: 0, evictions: 0, stale: 0, bytes: 0 };
  const metrics: ProviderMetrics = {
    ...noopMetrics,
    countCacheLookup: (cache, hit) => {
      if (cache === 'keyvault_value') hit ? counts.hits++ : counts.misses++;
    },
    countValueCacheEviction: () => void counts.evictions++,
    countValueCacheStale: () => void counts.stale++,
    setValueCacheBytes: (bytes) => void (counts.bytes = bytes),
  };
  const logs: string[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void logs.push(line) });
  const access = new CachingVaultAccess(vault, {
    maxTtlMs: 300_000,
    maxEntries: 100,
    maxBytes: 1024 * 1024,
    allowFirstMounts: false,
    staleGraceMs: 0,
    maxPods: 1000,
    metrics,
    logger,
    now: () => clock.now,
    random: () => 1,
    ...overrides,
  });
  return { vault, access, clock, counts, logs };
}

const signal = new AbortController().signal;
/** One mount of one secret, as the mount service runs it: the cache hears of the mount's success afterwards. */
const read = async (access: VaultAccess, s: MountSpec, name = 'db'): Promise<string> => {
  const { value } = await (await access.open(s, signal)).getSecret(name, '', signal);
  if (access instanceof CachingVaultAccess) access.succeeded({}, s);
  return value;
};

describe('Key Vault value cache', () => {
  test('a class without cacheTTL reads Key Vault on every mount', async () => {
    const { vault, access } = setup();
    const inner = new FakeVault();
    const plain = new CachingVaultAccess(inner, (access as unknown as { options: ValueCacheOptions }).options);
    const s = spec('u1', { mode: 'vmManagedIdentity', userAssigned: undefined }, 0);
    inner.roles.set(cacheIdentityKey(s), true);
    inner.secrets.set('db', { value: 'x', version: 'v1', enabled: true });
    await read(plain, s);
    await read(plain, s);
    expect(inner.reads).toBe(2);
    expect(vault.reads).toBe(0);
  });

  test("a pod's first mount reads Key Vault; its republish mounts are served within the TTL", async () => {
    const { vault, access, clock, counts } = setup();
    const mi = { mode: 'vmManagedIdentity', userAssigned: undefined } as const;
    vault.roles.set(cacheIdentityKey(spec('p1', mi)), true);
    await read(access, spec('p1', mi));
    await read(access, spec('p2', mi)); // another pod's first mount: Key Vault again
    expect(vault.reads).toBe(2);
    clock.now += 30_000;
    expect(await read(access, spec('p1', mi))).toBe('the-secret-value');
    expect(await read(access, spec('p2', mi))).toBe('the-secret-value');
    expect(vault.reads).toBe(2);
    expect(counts.hits).toBe(2);
    clock.now += 31_000; // past the TTL
    await read(access, spec('p1', mi));
    expect(vault.reads).toBe(3);
  });

  test('the operator may let first mounts be served too (scale-up bursts)', async () => {
    const { vault, access } = setup({ allowFirstMounts: true });
    const mi = { mode: 'vmManagedIdentity', userAssigned: undefined } as const;
    vault.roles.set(cacheIdentityKey(spec('p1', mi)), true);
    for (let i = 0; i < 50; i++) await read(access, spec(`p${i}`, mi));
    expect(vault.reads).toBe(1);
  });

  test('two identities, one denied, overlapping in time: the denied one is never served the other one\'s answer', async () => {
    const { vault, access, counts } = setup({ allowFirstMounts: true });
    const allowed = workload(CLIENT_A, 'frontend', 'a');
    const denied = workload(CLIENT_B, 'frontend', 'b'); // same service account, another client id
    vault.roles.set(cacheIdentityKey(spec('a1', allowed)), true);
    // Two rounds of interleaved mounts: the second finds the allowed identity's answer stored while the denied one
    // asks.
    for (let round = 0; round < 2; round++) {
      const results = await Promise.allSettled(
        Array.from({ length: 20 }, (_, i) => read(access, i % 2 === 0 ? spec(`a${i}`, allowed) : spec(`b${i}`, denied))),
      );
      for (const [i, result] of results.entries()) {
        if (i % 2 === 0) expect(result).toEqual({ status: 'fulfilled', value: 'the-secret-value' });
        else expect(result.status === 'rejected' && (result.reason as ProviderError).status).toBe('PermissionDenied');
      }
    }
    // Later republish mounts of the denied identity still go to Key Vault, and are still refused.
    const before = vault.reads;
    await expect(read(access, spec('b1', denied))).rejects.toMatchObject({ status: 'PermissionDenied' });
    expect(vault.reads).toBe(before + 1);
    expect(counts.hits).toBeGreaterThan(0);
  });

  test('pods of one service account share answers; another subject or tenant does not', () => {
    const a = cacheIdentityKey(spec('x', workload(CLIENT_A, 'frontend', 'token-1')));
    expect(cacheIdentityKey(spec('y', workload(CLIENT_A, 'frontend', 'token-2')))).toBe(a);
    expect(cacheIdentityKey(spec('y', workload(CLIENT_A, 'backend', 'token-2')))).not.toBe(a);
    expect(cacheIdentityKey({ ...spec('y', workload(CLIENT_A, 'frontend', 'token-2')), tenantId: 'contoso.onmicrosoft.com' })).not.toBe(a);
    const sp = (secret: string): string => cacheIdentityKey(spec('z', { mode: 'servicePrincipal', clientId: CLIENT_A, clientSecret: secret }));
    expect(sp('one')).not.toBe(sp('two'));
    expect(sp('one')).not.toContain('one');
    const tp = cacheIdentityKey(spec('x', { ...workload(CLIENT_A, 'frontend', 'token-1'), mode: 'tokenProxy' } as IdentitySpec));
    expect(tp).not.toBe(a);
  });

  test('a role revoked mid-run is enforced within the TTL, and the entry goes', async () => {
    const { vault, access, clock } = setup();
    const mi = { mode: 'vmManagedIdentity', userAssigned: undefined } as const;
    const who = cacheIdentityKey(spec('p1', mi));
    vault.roles.set(who, true);
    await read(access, spec('p1', mi));
    vault.roles.set(who, false); // revoked
    clock.now += 60_000; // one TTL later (random() = 1: the full TTL)
    await expect(read(access, spec('p1', mi))).rejects.toMatchObject({ status: 'PermissionDenied' });
    vault.roles.set(who, true);
    vault.roles.set(who, false);
    await expect(read(access, spec('p1', mi))).rejects.toMatchObject({ status: 'PermissionDenied' });
    expect(access.cache.size).toBe(0);
  });

  test('a secret disabled in Key Vault stops being served within the TTL', async () => {
    const { vault, access, clock } = setup();
    const mi = { mode: 'vmManagedIdentity', userAssigned: undefined } as const;
    vault.roles.set(cacheIdentityKey(spec('p1', mi)), true);
    await read(access, spec('p1', mi));
    vault.secrets.get('db')!.enabled = false;
    clock.now += 59_000;
    expect(await read(access, spec('p1', mi))).toBe('the-secret-value'); // within the TTL: the documented lag
    clock.now += 1_000;
    await expect(read(access, spec('p1', mi))).rejects.toMatchObject({ status: 'PermissionDenied' });
  });

  test('throttling or an outage serves the last answer within the grace window, logged and counted, never its value in the log', async () => {
    const { vault, access, clock, counts, logs } = setup({ staleGraceMs: 120_000 });
    const mi = { mode: 'vmManagedIdentity', userAssigned: undefined } as const;
    vault.roles.set(cacheIdentityKey(spec('p1', mi)), true);
    await read(access, spec('p1', mi));
    clock.now += 90_000;
    vault.outage = 'ResourceExhausted';
    expect(await read(access, spec('p1', mi))).toBe('the-secret-value');
    vault.outage = 'Unavailable';
    expect(await read(access, spec('p1', mi))).toBe('the-secret-value');
    expect(counts.stale).toBe(2);
    expect(logs.join('')).toContain('throttled');
    expect(logs.join('')).not.toContain('the-secret-value');
    clock.now += 100_000; // past TTL + grace
    await expect(read(access, spec('p1', mi))).rejects.toMatchObject({ status: 'Unavailable' });
  });

  test('no stale answer after a refusal, and none without a grace window', async () => {
    const { vault, access, clock } = setup();
    const mi = { mode: 'vmManagedIdentity', userAssigned: undefined } as const;
    vault.roles.set(cacheIdentityKey(spec('p1', mi)), true);
    await read(access, spec('p1', mi));
    clock.now += 61_000;
    vault.outage = 'ResourceExhausted';
    await expect(read(access, spec('p1', mi))).rejects.toMatchObject({ status: 'ResourceExhausted' });
  });

  test('entries and bytes are bounded; what leaves is zeroed', async () => {
    const { vault, access, counts } = setup({ maxEntries: 3, allowFirstMounts: true });
    const mi = { mode: 'vmManagedIdentity', userAssigned: undefined } as const;
    vault.roles.set(cacheIdentityKey(spec('p1', mi)), true);
    for (let i = 0; i < 10; i++) vault.secrets.set(`s${i}`, { value: `value-${i}`, version: 'v1', enabled: true });
    const stored: Buffer[] = [];
    const store = access.cache.store.bind(access.cache);
    access.cache.store = (key, value, fresh, grace) => {
      stored.push(...value.buffers);
      store(key, value, fresh, grace);
    };
    for (let i = 0; i < 10; i++) await read(access, spec('p1', mi), `s${i}`);
    expect(access.cache.size).toBe(3);
    expect(counts.evictions).toBe(7);
    expect(counts.bytes).toBe(access.cache.bytes);
    expect(stored.slice(0, 7).every((b) => b.every((byte) => byte === 0))).toBe(true);
    expect(stored[9]!.toString()).toBe('value-9');
    const small = setup({ maxBytes: 2000, allowFirstMounts: true });
    small.vault.roles.set(cacheIdentityKey(spec('p1', mi)), true);
    for (let i = 0; i < 10; i++) small.vault.secrets.set(`s${i}`, { value: 'x'.repeat(600), version: 'v1', enabled: true });
    for (let i = 0; i < 10; i++) await read(small.access, spec('p1', mi), `s${i}`);
    expect(small.access.cache.bytes).toBeLessThanOrEqual(2000);
  });

  test('a served answer is a copy: zeroing the store never changes what a mount got', async () => {
    const { vault, access } = setup({ allowFirstMounts: true, maxEntries: 1 });
    const mi = { mode: 'vmManagedIdentity', userAssigned: undefined } as const;
    vault.roles.set(cacheIdentityKey(spec('p1', mi)), true);
    vault.secrets.set('other', { value: 'other', version: 'v1', enabled: true });
    const first = await read(access, spec('p1', mi));
    const hit = await read(access, spec('p2', mi));
    await read(access, spec('p3', mi), 'other'); // evicts db
    expect([first, hit]).toEqual(['the-secret-value', 'the-secret-value']);
  });

  test('jitter spreads the refresh of pods that mounted together over the last part of the TTL', async () => {
    let r = 0;
    const { vault, access, clock } = setup({ allowFirstMounts: true, random: () => (r++ % 10) / 10 });
    const mi = { mode: 'vmManagedIdentity', userAssigned: undefined } as const;
    vault.roles.set(cacheIdentityKey(spec('p1', mi)), true);
    for (let i = 0; i < 10; i++) vault.secrets.set(`s${i}`, { value: 'v', version: 'v1', enabled: true });
    for (let i = 0; i < 10; i++) await read(access, spec('p1', mi), `s${i}`);
    clock.now += 47_000; // under 0.8 of the TTL: all fresh
    const before = vault.reads;
    for (let i = 0; i < 10; i++) await read(access, spec('p1', mi), `s${i}`);
    expect(vault.reads).toBe(before);
    clock.now += 7_000; // 0.9: about half have expired
    for (let i = 0; i < 10; i++) await read(access, spec('p1', mi), `s${i}`);
    expect(vault.reads - before).toBeGreaterThan(0);
    expect(vault.reads - before).toBeLessThan(10);
  });

  test('a pinned version keeps the whole TTL (the latest is refreshed earlier, at random), never more', async () => {
    const { vault, access, clock } = setup({ random: () => 0 });
    const mi = { mode: 'vmManagedIdentity', userAssigned: undefined } as const;
    vault.roles.set(cacheIdentityKey(spec('p1', mi)), true);
    const get = async (version: string): Promise<void> => {
      await (await access.open(spec('p1', mi), signal)).getSecret('db', version, signal);
      access.succeeded({}, spec('p1', mi));
    };
    await get('v1');
    await get('');
    clock.now += 50_000; // past 0.8 of the TTL: the latest is due, the pinned version is not
    await get('v1');
    await get('');
    expect(vault.reads).toBe(3);
    clock.now += 10_000; // the TTL
    await get('v1');
    expect(vault.reads).toBe(4);
  });

  test("a hit returns the version's tags and attributes as the read did (writeTags/writeAttributes files stay identical)", async () => {
    const metadata = (tag: string): ObjectMetadata => ({
      tags: { owner: tag, 'z-last': 'z' },
      enabled: true,
      createdOn: new Date('2024-01-02T03:04:05Z'),
      updatedOn: new Date('2024-02-03T04:05:06Z'),
      expiresOn: undefined,
      notBefore: new Date('2024-01-01T00:00:00Z'),
    });
    let reads = 0;
    const inner: VaultAccess = {
      open: async (s) => ({
        vaultName: s.vaultName,
        getSecret: async (): Promise<FetchedSecret> => {
          reads++;
          return { value: 'v', version: 'v1', contentType: 'text/plain', certificateKeyId: undefined, metadata: metadata(`${s.vaultName}-secret`) };
        },
        getKey: async (): Promise<FetchedKey> => {
          reads++;
          return { jwk: { kty: 'EC', crv: 'P-256', x: new Uint8Array([1, 2]), y: new Uint8Array([3]) }, version: 'k1', metadata: metadata('key') };
        },
        getCertificate: async (): Promise<FetchedCertificate> => {
          reads++;
          return { cer: new Uint8Array([9, 8, 7]), version: 'c1', metadata: metadata('cert') };
        },
        listVersions: () => Promise.resolve([]),
        listSecrets: () => Promise.resolve([]),
      }),
    };
    const { access } = setup();
    const cached = new CachingVaultAccess(inner, { ...(access as unknown as { options: ValueCacheOptions }).options, allowFirstMounts: true });
    const mi = { mode: 'vmManagedIdentity', userAssigned: undefined } as const;
    const readAll = async (): Promise<unknown[]> => {
      const reader = await cached.open(spec('p1', mi), signal);
      return [await reader.getSecret('s', '', signal), await reader.getKey('k', '', signal), await reader.getCertificate('c', '', signal)];
    };
    const first = await readAll();
    const hit = await readAll();
    expect(reads).toBe(3);
    expect(hit).toEqual(first);
    expect((hit[0] as FetchedSecret).metadata).toEqual(metadata('kv1-secret'));
    // A copy per mount: changing what one mount got does not change the next hit.
    (hit[0] as FetchedSecret).metadata!.tags['owner'] = 'changed';
    expect(((await readAll())[0] as FetchedSecret).metadata!.tags['owner']).toBe('kv1-secret');
    // An answer without metadata stays without it.
    const bare = new CachingVaultAccess(
      { open: async (s) => ({ ...(await inner.open(s, signal)), getSecret: async () => ({ value: 'v', version: 'v1', contentType: undefined, certificateKeyId: undefined }) }) },
      { ...(access as unknown as { options: ValueCacheOptions }).options, allowFirstMounts: true },
    );
    await (await bare.open(spec('p1', mi), signal)).getSecret('s', '', signal);
    expect('metadata' in (await (await bare.open(spec('p1', mi), signal)).getSecret('s', '', signal))).toBe(false);
  });

  test("an object's own keyvaultName is its own entry: one name in two vaults is never served across them", async () => {
    const { vault, access } = setup({ allowFirstMounts: true });
    const mi = { mode: 'vmManagedIdentity', userAssigned: undefined } as const;
    vault.roles.set(cacheIdentityKey(spec('p1', mi)), true);
    const inVault = (name: string): MountSpec => ({ ...spec('p1', mi), vaultName: name });
    const byVault: VaultAccess = {
      open: async (s) => {
        const reader = await vault.open(s);
        return { ...reader, getSecret: async (n, v, sig) => ({ ...(await reader.getSecret(n, v, sig)), value: `${s.vaultName}-value` }) };
      },
    };
    const cached = new CachingVaultAccess(byVault, (access as unknown as { options: ValueCacheOptions }).options);
    expect(await read(cached, inVault('kv1'))).toBe('kv1-value');
    expect(await read(cached, inVault('kv2'))).toBe('kv2-value');
    expect(await read(cached, inVault('kv1'))).toBe('kv1-value');
    expect(await read(cached, inVault('KV2'))).toBe('kv2-value');
    expect(vault.reads).toBe(2);
  });

  test('a pod counts as seen only once a mount of it succeeded: after a failed first mount, its retry reads Key Vault', async () => {
    const { vault, access, counts } = setup();
    const mi = { mode: 'vmManagedIdentity', userAssigned: undefined } as const;
    vault.roles.set(cacheIdentityKey(spec('p1', mi)), true);
    // The first mount: one object read, another not found, so the mount fails whole and the driver will retry it.
    const first = await access.open(spec('p1', mi), signal);
    await first.getSecret('db', '', signal);
    await expect(first.getSecret('not-there-yet', '', signal)).rejects.toMatchObject({ status: 'NotFound' });
    vault.secrets.set('not-there-yet', { value: 'now-here', version: 'v1', enabled: true });
    // The retry is still a first mount: every object from Key Vault.
    expect(await read(access, spec('p1', mi))).toBe('the-secret-value');
    expect(await read(access, spec('p1', mi), 'not-there-yet')).toBe('now-here');
    expect(vault.reads).toBe(4);
    expect(counts.hits).toBe(0);
    // It succeeded: the next mount (a republish) is answered from memory.
    expect(await read(access, spec('p1', mi))).toBe('the-secret-value');
    expect(vault.reads).toBe(4);
    expect(counts.hits).toBe(1);
    // Another volume of the pod (its own target path) has its own first mount.
    const volume = (path: string, s: MountSpec = spec('p1', mi)): MountSpec => ({ ...s, targetPath: `/var/lib/kubelet/pods/p1/volumes/kubernetes.io~csi/${path}/mount` });
    await read(access, volume('a'));
    expect(vault.reads).toBe(5);
    await read(access, volume('b'));
    expect(vault.reads).toBe(6);
    await read(access, volume('a'));
    expect(vault.reads).toBe(6);
    // v1.5's rotation reconciler leaves the class attribute out: the same volume, still a republish.
    await read(access, volume('b', { ...spec('p1', mi), secretProviderClass: '' }));
    expect(vault.reads).toBe(6);
  });

  test('remembered pods are bounded; a pod pushed out reads Key Vault at its next mount (never the other way round)', async () => {
    const { vault, access } = setup({ maxPods: 2 });
    const mi = { mode: 'vmManagedIdentity', userAssigned: undefined } as const;
    vault.roles.set(cacheIdentityKey(spec('p1', mi)), true);
    for (const pod of ['p1', 'p2', 'p3']) await read(access, spec(pod, mi));
    expect(vault.reads).toBe(3);
    await read(access, spec('p3', mi)); // remembered: served
    expect(vault.reads).toBe(3);
    await read(access, spec('p1', mi)); // pushed out by p3: a first mount again
    expect(vault.reads).toBe(4);
  });

  test('the stale warning is logged once per vault and object per interval; the metric counts every stale answer', async () => {
    const { vault, access, clock, counts, logs } = setup({ staleGraceMs: 600_000 });
    const mi = { mode: 'vmManagedIdentity', userAssigned: undefined } as const;
    vault.roles.set(cacheIdentityKey(spec('p1', mi)), true);
    vault.secrets.set('other', { value: 'other-value', version: 'v1', enabled: true });
    const pods = Array.from({ length: 20 }, (_, i) => `p${i}`);
    for (const pod of pods) await read(access, spec(pod, mi));
    for (const pod of pods) await read(access, spec(pod, mi), 'other');
    clock.now += 61_000;
    vault.outage = 'ResourceExhausted';
    const staleLines = (): Array<Record<string, unknown>> =>
      logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => String(l['msg']).includes('last read'));
    for (const pod of pods) expect(await read(access, spec(pod, mi))).toBe('the-secret-value');
    expect(counts.stale).toBe(20);
    expect(staleLines()).toHaveLength(1);
    // Another object of the vault has its own line.
    for (const pod of pods) await read(access, spec(pod, mi), 'other');
    expect(counts.stale).toBe(40);
    expect(staleLines()).toHaveLength(2);
    clock.now += 30_000; // within the interval: still no new line
    for (const pod of pods) await read(access, spec(pod, mi));
    expect(staleLines()).toHaveLength(2);
    clock.now += 30_000; // the interval has passed: one line, saying how many went unlogged
    for (const pod of pods) await read(access, spec(pod, mi));
    expect(counts.stale).toBe(80);
    const lines = staleLines();
    expect(lines).toHaveLength(3);
    expect(lines[2]).toMatchObject({ object: 'secret/db', alsoServedStaleSinceLastLine: 19 + 20 });
    expect(logs.join('')).not.toContain('the-secret-value');
  });

  test('listings (version history, selections) reach Key Vault on every mount; the values they lead to are cached', async () => {
    let listings = 0;
    const { vault, access } = setup();
    const listing: VaultAccess = {
      open: async (s) => ({
        ...(await vault.open(s)),
        listSecrets: async () => {
          listings++;
          return [{ name: 'db', enabled: true, expiresOn: undefined, notBefore: undefined, tags: {}, managed: false, contentType: undefined }];
        },
      }),
    };
    const cached = new CachingVaultAccess(listing, (access as unknown as { options: ValueCacheOptions }).options);
    const mi = { mode: 'vmManagedIdentity', userAssigned: undefined } as const;
    vault.roles.set(cacheIdentityKey(spec('p1', mi)), true);
    for (let i = 0; i < 3; i++) {
      const reader = await cached.open(spec('p1', mi), signal);
      const [listed] = await reader.listSecrets(signal);
      await reader.getSecret(listed!.name, '', signal);
      cached.succeeded({}, spec('p1', mi));
    }
    expect(listings).toBe(3);
    expect(vault.reads).toBe(1);
  });
});
