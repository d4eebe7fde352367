/**
 * End to end: fetching under load. The real provider process, the driver's gRPC over a unix socket, Azure replaced at
 * the network edge (IMDS on loopback, Key Vault over TLS through a CONNECT proxy). What is checked here is correctness
 * of the fetch machinery, never speed:
 *  - the objects of one mount are fetched in parallel (bounded by --max-fetches-per-mount), results in declared order;
 *  - requests to one vault are bounded by --max-requests-per-vault across mounts;
 *  - the first failure fails the mount and cancels the fetches not yet started;
 *  - identical reads in flight are shared between mounts of one identity, never between identities;
 *  - 429 / 503 with Retry-After are waited out as asked; 500s and resets are retried a bounded number of times;
 *  - a mount whose deadline passes while throttled says so, and the provider keeps serving;
 *  - keep-alive connections (and proxy tunnels) are reused across mounts;
 *  - a new SDK client pays the 401 authentication challenge once, not once per parallel read.
 *
 * Ordering facts come only from the stand-in's own request timestamps (one clock), with a little slack.
 */
import { status as grpcStatus } from '@grpc/grpc-js';
import { X509Certificate } from 'node:crypto';
import { startAzureStandIns, type AzureStandIns } from '../support/azure-standins';
import type { MountRequestInput, MountResult } from '../support/driver-client';
import type { KeyVaultRequestRecord } from '../support/keyvault';
import { registerProviderCleanup, startProvider, type ProviderProcess } from '../support/provider-process';
import { objects, rejectionOf } from '../support/spc';
import { ecPublicKey } from '../support/keys';

registerProviderCleanup();

const SYSTEM = 'load-node-system';
const UAI_A = {
  id: 'load-uai-a',
  clientId: '5a5a5a5a-0000-4000-8000-0000000000a1',
  resourceId: '/subscriptions/sub-1/resourceGroups/rg-nodes/providers/Microsoft.ManagedIdentity/userAssignedIdentities/load-a',
};
const UAI_B = {
  id: 'load-uai-b',
  clientId: '5b5b5b5b-0000-4000-8000-0000000000b2',
  resourceId: '/subscriptions/sub-1/resourceGroups/rg-nodes/providers/Microsoft.ManagedIdentity/userAssignedIdentities/load-b',
};

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);
const pad = (i: number): string => String(i).padStart(2, '0');
const secretEntry = (name: string): string => `objectName: ${name}\nobjectType: secret`;
/** Secret value stored under `name` in every vault of this file. */
const valueOf = (name: string): string => `value-of-${name}`;

function start(azure: AzureStandIns, args: string[] = []): Promise<ProviderProcess> {
  return startProvider({ env: azure.providerEnv(), args });
}

function mountRequest(azure: AzureStandIns, vault: string, entries: string[], extra: Record<string, string> = {}): MountRequestInput {
  return {
    attributes: {
      'csi.storage.k8s.io/pod.name': 'load-0',
      'csi.storage.k8s.io/pod.namespace': 'load',
      'csi.storage.k8s.io/pod.uid': '0d0e0a0d',
      'csi.storage.k8s.io/serviceAccount.name': 'load',
      secretProviderClass: 'load-secrets',
      useVMManagedIdentity: 'true',
      keyvaultName: vault,
      tenantID: azure.tenantId,
      objects: objects(entries),
      ...extra,
    },
    permission: '420',
    targetPath: '/var/lib/kubelet/pods/0d0e0a0d/volumes/kubernetes.io~csi/load/mount',
  };
}

/** Stores secrets `<prefix>-00` … and returns their names and versions. */
function storeSecrets(azure: AzureStandIns, vault: string, prefix: string, n: number): Array<{ name: string; version: string }> {
  return range(n).map((i) => {
    const name = `${prefix}-${pad(i)}`;
    return { name, version: azure.keyVault.setSecret(vault, name, valueOf(name)) };
  });
}

/** Every file is the secret of the same name, with its stored value, in the order asked; one version per secret. */
function expectSecretFiles(result: MountResult, secrets: Array<{ name: string; version: string }>): void {
  expect(result.files.map((f) => [f.path, f.contents.toString()])).toEqual(secrets.map((s) => [s.name, valueOf(s.name)]));
  expect(result.objectVersion).toEqual(secrets.map((s) => ({ id: `secret/${s.name}`, version: s.version })));
}

/** The stand-in's requests for one object path (latest version: the SDK sends a trailing slash). */
const forPath = (records: KeyVaultRequestRecord[], vault: string, kind: 'secrets' | 'keys' | 'certificates', name: string): KeyVaultRequestRecord[] =>
  records.filter((r) => r.vault === vault && (r.path === `/${kind}/${name}/` || r.path === `/${kind}/${name}`));

// ---- 1 and 3: parallel fetches within one mount -------------------------------------------------------------------

describe('one mount fetches its objects in parallel, bounded, in declared order', () => {
  const VAULT = 'parallel-kv';
  let azure: AzureStandIns;
  let provider: ProviderProcess;

  beforeAll(async () => {
    azure = await startAzureStandIns({ identities: { systemAssigned: { id: SYSTEM } } });
    azure.keyVault.addVault(VAULT, { allow: [SYSTEM] });
    // The bound is given explicitly: the test checks the flag, whatever its default is.
    provider = await start(azure, ['--max-fetches-per-mount=16']);
  });

  afterAll(async () => {
    await provider?.stop();
    await azure?.close();
  });

  it('50 objects (secrets, keys, certificates): all files and versions in declared order; 1 < peak in flight ≤ --max-fetches-per-mount (16)', async () => {
    const kv = azure.keyVault;
    // Declared order deliberately neither alphabetical nor grouped by kind, and file names (aliases) run backwards.
    type Expected = { entry: string; path: string; id: string; version: string; check: (contents: Buffer) => void };
    const expected: Expected[] = range(50).map((i) => {
      const alias = `files/${pad(49 - i)}`;
      if (i % 10 === 3) {
        const name = `key-${pad((i * 7) % 50)}`;
        const pub = ecPublicKey('P-256');
        const version = kv.setKey(VAULT, name, pub.export({ format: 'jwk' }));
        const pem = pub.export({ type: 'spki', format: 'pem' }).toString();
        return { entry: `objectName: ${name}\nobjectType: key\nobjectAlias: ${alias}`, path: alias, id: `key/${name}`, version,
          check: (c) => expect(c.toString()).toBe(pem) };
      }
      if (i % 10 === 7) {
        const name = `cert-${pad((i * 7) % 50)}`;
        const certPem = azure.pki.issueServerCert([`${name}.load.test`]).certPem;
        const version = kv.setCertificate(VAULT, name, certPem);
        const raw = new X509Certificate(certPem).raw;
        return { entry: `objectName: ${name}\nobjectType: cert\nobjectAlias: ${alias}`, path: alias, id: `cert/${name}`, version,
          check: (c) => expect(new X509Certificate(c).raw).toEqual(raw) };
      }
      const name = `secret-${pad((i * 7) % 50)}`;
      const version = kv.setSecret(VAULT, name, valueOf(name));
      return { entry: `objectName: ${name}\nobjectType: secret\nobjectAlias: ${alias}`, path: alias, id: `secret/${name}`, version,
        check: (c) => expect(c.toString()).toBe(valueOf(name)) };
    });

    kv.delayMs = 20;
    try {
      const result = await provider.client.mount(mountRequest(azure, VAULT, expected.map((e) => e.entry)));
      expect(result.files.map((f) => f.path)).toEqual(expected.map((e) => e.path));
      expect(result.objectVersion).toEqual(expected.map((e) => ({ id: e.id, version: e.version })));
      result.files.forEach((f, i) => expected[i]!.check(f.contents));
    } finally {
      kv.delayMs = 0;
    }
    // Every object was read once (no duplicates), plus one 401 challenge per SDK client (secrets, keys, certificates).
    expect(kv.count({ vault: VAULT, status: 200, operation: 'get' })).toBe(50);
    expect(kv.count({ vault: VAULT, status: 401 })).toBe(3);
    // Parallel, and never more than --max-fetches-per-mount at once for a single mount.
    expect(kv.peakInFlight()).toBeGreaterThan(1);
    expect(kv.peakInFlight()).toBeLessThanOrEqual(16);
  });

  it('the first failure fails the mount NOT_FOUND naming the object, and the objects not yet started are never read', async () => {
    // --max-fetches-per-mount=2 and a slow vault: the missing object (declared first) fails while at most a couple of
    // the 29 others have been started; the rest must then never be requested.
    const narrow = await start(azure, ['--max-fetches-per-mount=2']);
    const kv = azure.keyVault;
    try {
      const present = storeSecrets(azure, VAULT, 'cancel', 29);
      const before = kv.requests.length;
      kv.delayMs = 50;
      const err = await rejectionOf(
        narrow.client.mount(mountRequest(azure, VAULT, [secretEntry('cancel-missing'), ...present.map((s) => secretEntry(s.name))])),
      );
      expect(err.code).toBe(grpcStatus.NOT_FOUND);
      expect(err.details).toContain('secret "cancel-missing"');
      expect(err.details).toContain(`Key Vault "${VAULT}"`);
      expect(err.details).toContain('404');

      const requested = (): Set<string> => new Set(kv.requests.slice(before).filter((r) => r.vault === VAULT).map((r) => r.path));
      const atFailure = requested();
      expect(atFailure.has('/secrets/cancel-missing/')).toBe(true);
      // Far fewer than the 30 objects were ever asked for…
      expect(atFailure.size).toBeLessThanOrEqual(5);
      // …and nothing more is asked for after the mount failed (the rest were cancelled, not left running).
      await sleep(600);
      expect(requested()).toEqual(atFailure);
    } finally {
      kv.delayMs = 0;
      await narrow.stop();
    }
  });

  it('a fetch already in flight when another object fails is abandoned: its retry never reaches the vault', async () => {
    const narrow = await start(azure, ['--max-fetches-per-mount=2']);
    const kv = azure.keyVault;
    try {
      const [victim] = storeSecrets(azure, VAULT, 'abandon', 1);
      // Warm: the secrets client knows the challenge, so the first two objects go out together.
      expectSecretFiles(await narrow.client.mount(mountRequest(azure, VAULT, [secretEntry(victim!.name)])), [victim!]);
      const before = kv.requests.length;
      // The second object gets a 500 (retried after a 250–500 ms backoff) while the first is answered 404.
      const handle = kv.injectFaults({ status: 500, count: 1, vault: VAULT, match: (r) => r.path === `/secrets/${victim!.name}/` });
      kv.delayMs = 50;
      const err = await rejectionOf(
        narrow.client.mount(mountRequest(azure, VAULT, [secretEntry('abandon-missing'), secretEntry(victim!.name), secretEntry('abandon-never')])),
      );
      expect(err.code).toBe(grpcStatus.NOT_FOUND);
      expect(err.details).toContain('secret "abandon-missing"');
      // Longer than the largest first backoff (500 ms): a retry that was not cancelled would have arrived by now.
      // (The stand-in picks its fault when it answers, so the 500 may be recorded just after the mount failed.)
      await sleep(1200);
      expect(handle.hits()).toBe(1);
      const records = kv.requests.slice(before).filter((r) => r.vault === VAULT);
      expect(forPath(records, VAULT, 'secrets', victim!.name).map((r) => r.faulted ?? r.status)).toEqual(['500']);
      expect(forPath(records, VAULT, 'secrets', 'abandon-never')).toEqual([]);
    } finally {
      kv.clearFaults();
      kv.delayMs = 0;
      await narrow.stop();
    }
  });
});

// ---- 2: the per-vault bound across mounts -------------------------------------------------------------------------

describe('--max-requests-per-vault bounds the requests to one vault across mounts', () => {
  const VAULT = 'bounded-kv';
  let azure: AzureStandIns;
  let provider: ProviderProcess;

  beforeAll(async () => {
    // A stand-in of its own: peakInFlight() counts from the stand-in's start.
    azure = await startAzureStandIns({ identities: { systemAssigned: { id: SYSTEM } } });
    azure.keyVault.addVault(VAULT, { allow: [SYSTEM] });
    provider = await start(azure, ['--max-requests-per-vault=4']);
  });

  afterAll(async () => {
    await provider?.stop();
    await azure?.close();
  });

  it('three concurrent mounts of 10 distinct objects each: all succeed, and the vault never sees more than 4 at once', async () => {
    const sets = [0, 1, 2].map((m) => storeSecrets(azure, VAULT, `m${m}`, 10));
    azure.keyVault.delayMs = 20;
    try {
      const results = await Promise.all(
        sets.map((secrets) => provider.client.mount(mountRequest(azure, VAULT, secrets.map((s) => secretEntry(s.name))))),
      );
      results.forEach((result, m) => expectSecretFiles(result, sets[m]!));
    } finally {
      azure.keyVault.delayMs = 0;
    }
    expect(azure.keyVault.count({ vault: VAULT, status: 200 })).toBe(30);
    expect(azure.keyVault.peakInFlight()).toBeGreaterThan(1);
    expect(azure.keyVault.peakInFlight()).toBeLessThanOrEqual(4);
  });
});

// ---- 4–9: sharing, retries, throttling, connections, challenges ----------------------------------------------------

describe('shared reads, retries, throttling, connection reuse and challenges', () => {
  let azure: AzureStandIns;
  /** Default flags; used by several tests, each on a vault of its own so faults and vault pauses do not mix. */
  let provider: ProviderProcess;

  beforeAll(async () => {
    azure = await startAzureStandIns({ identities: { systemAssigned: { id: SYSTEM }, userAssigned: [UAI_A, UAI_B] } });
    provider = await start(azure);
  });

  afterEach(() => {
    azure.keyVault.clearFaults();
    azure.keyVault.delayMs = 0;
  });

  afterAll(async () => {
    await provider?.stop();
    await azure?.close();
  });

  describe('single-flight', () => {
    const VAULT = 'share-kv';
    let secrets: Array<{ name: string; version: string }>;
    const shared200s = (records: KeyVaultRequestRecord[]): number =>
      records.filter((r) => r.vault === VAULT && r.status === 200 && /^\/secrets\/shared-\d+\/?$/.test(r.path)).length;

    beforeAll(() => {
      azure.keyVault.addVault(VAULT, { allow: [SYSTEM, UAI_A.id] });
      secrets = storeSecrets(azure, VAULT, 'shared', 5);
    });

    it('20 concurrent mounts of the same 5 secrets (one identity) share the reads in flight', async () => {
      const req = mountRequest(azure, VAULT, secrets.map((s) => secretEntry(s.name)));
      // Warm: the reader, its SDK client and the token exist, so sharing (not the first-request challenge) is measured.
      expectSecretFiles(await provider.client.mount(req), secrets);
      const before = azure.keyVault.requests.length;
      azure.keyVault.delayMs = 100;
      const results = await Promise.all(range(20).map(() => provider.client.mount(req)));
      for (const result of results) expectSecretFiles(result, secrets);
      const records = azure.keyVault.requests.slice(before);
      // Unshared, this would be 100 GETs.
      expect(shared200s(records)).toBeGreaterThanOrEqual(5);
      expect(shared200s(records)).toBeLessThanOrEqual(10);
    });

    it('never across identities: A (allowed) succeeds, B (not allowed) fails PERMISSION_DENIED, both reached the vault', async () => {
      const before = azure.keyVault.requests.length;
      azure.keyVault.delayMs = 100;
      const entries = [secretEntry('shared-00')];
      const [a, b] = await Promise.allSettled([
        provider.client.mount(mountRequest(azure, VAULT, entries, { userAssignedIdentityID: UAI_A.clientId })),
        provider.client.mount(mountRequest(azure, VAULT, entries, { userAssignedIdentityID: UAI_B.clientId })),
      ]);
      expect(a.status).toBe('fulfilled');
      expectSecretFiles((a as PromiseFulfilledResult<MountResult>).value, [secrets[0]!]);
      expect(b.status).toBe('rejected');
      const err = (b as PromiseRejectedResult).reason as { code: number; details: string };
      expect(err.code).toBe(grpcStatus.PERMISSION_DENIED);
      expect(err.details).toContain(UAI_B.clientId);
      expect(err.details).toContain('secret "shared-00"');
      const records = forPath(azure.keyVault.requests.slice(before), VAULT, 'secrets', 'shared-00');
      expect(records.filter((r) => r.identityId === UAI_A.id && r.status === 200)).toHaveLength(1);
      expect(records.filter((r) => r.identityId === UAI_B.id && r.status === 403)).toHaveLength(1);
    });

    it('--credential-cache-size=0: nothing is shared (every mount reads every object itself)', async () => {
      const uncached = await start(azure, ['--credential-cache-size=0']);
      try {
        const req = mountRequest(azure, VAULT, secrets.slice(0, 2).map((s) => secretEntry(s.name)));
        const before = azure.keyVault.requests.length;
        azure.keyVault.delayMs = 100;
        const results = await Promise.all(range(5).map(() => uncached.client.mount(req)));
        for (const result of results) expectSecretFiles(result, secrets.slice(0, 2));
        expect(shared200s(azure.keyVault.requests.slice(before))).toBe(5 * 2);
      } finally {
        await uncached.stop();
      }
    });
  });

  describe('retries', () => {
    const VAULT = 'retry-kv';
    let secrets: Array<{ name: string; version: string }>;

    beforeAll(() => {
      azure.keyVault.addVault(VAULT, { allow: [SYSTEM] });
      secrets = storeSecrets(azure, VAULT, 'retry', 3);
    });

    const onlyFor = (name: string) => (r: { path: string }) => r.path === `/secrets/${name}/`;

    it.each([
      ['429', { status: 429 as const }],
      ['503', { status: 503 as const }],
    ])('%s with Retry-After: 1 is waited out (the retry comes ≥ ~1 s later) and the mount succeeds', async (_name, fault) => {
      const target = secrets[1]!.name;
      const before = azure.keyVault.requests.length;
      const handle = azure.keyVault.injectFaults({ ...fault, retryAfterSeconds: 1, count: 1, vault: VAULT, match: onlyFor(target) });
      const result = await provider.client.mount(mountRequest(azure, VAULT, secrets.map((s) => secretEntry(s.name))));
      expectSecretFiles(result, secrets);
      expect(handle.hits()).toBe(1);
      const records = forPath(azure.keyVault.requests.slice(before), VAULT, 'secrets', target);
      const faulted = records.find((r) => r.faulted === String(fault.status))!;
      expect(faulted).toBeDefined();
      const retry = records.find((r) => r.at >= faulted.at && r !== faulted && r.status === 200)!;
      expect(retry).toBeDefined();
      // Retry-After: 1 asks for a second; 50 ms of slack for timer and clock granularity.
      expect(retry.at - faulted.at).toBeGreaterThanOrEqual(950);
    });

    it.each([
      ['500 once', { status: 500 as const }, '500'],
      ['a connection reset once', { reset: true }, 'reset'],
    ])('%s: retried, and the mount succeeds', async (_name, fault, faultedAs) => {
      const target = secrets[2]!.name;
      const before = azure.keyVault.requests.length;
      const handle = azure.keyVault.injectFaults({ ...fault, count: 1, vault: VAULT, match: onlyFor(target) });
      const result = await provider.client.mount(mountRequest(azure, VAULT, secrets.map((s) => secretEntry(s.name))));
      expectSecretFiles(result, secrets);
      expect(handle.hits()).toBe(1);
      const records = forPath(azure.keyVault.requests.slice(before), VAULT, 'secrets', target);
      const faulted = records.find((r) => r.faulted === faultedAs)!;
      expect(faulted).toBeDefined();
      expect(records.some((r) => r.status === 200 && r.at >= faulted.at && r !== faulted)).toBe(true);
    });

    it('a persistent 500 fails UNAVAILABLE after 4 attempts, and says so', async () => {
      const target = secrets[0]!.name;
      const before = azure.keyVault.requests.length;
      azure.keyVault.injectFaults({ status: 500, ratio: 1, vault: VAULT, match: onlyFor(target) });
      const err = await rejectionOf(provider.client.mount(mountRequest(azure, VAULT, secrets.map((s) => secretEntry(s.name)))));
      expect(err.code).toBe(grpcStatus.UNAVAILABLE);
      expect(err.details).toContain(`secret "${target}"`);
      expect(err.details).toContain('500');
      expect(err.details).toContain('gave up after 4 attempts');
      const records = forPath(azure.keyVault.requests.slice(before), VAULT, 'secrets', target);
      expect(records.filter((r) => r.faulted === '500')).toHaveLength(4);
    });
  });

  describe('throttling', () => {
    it('a deadline that passes while throttled fails DEADLINE_EXCEEDED ("still retrying", "throttled"); the provider serves on', async () => {
      const VAULT = 'deadline-kv';
      azure.keyVault.addVault(VAULT, { allow: [SYSTEM] });
      const secrets = storeSecrets(azure, VAULT, 'slow', 2);
      const req = mountRequest(azure, VAULT, secrets.map((s) => secretEntry(s.name)));
      const handle = azure.keyVault.injectFaults({ status: 429, retryAfterSeconds: 1, ratio: 1, vault: VAULT });

      const err = await rejectionOf(provider.client.mount(req, { deadlineMs: 4000 }));
      expect(err.code).toBe(grpcStatus.DEADLINE_EXCEEDED);
      expect(err.details).toContain('still retrying');
      expect(err.details).toContain('throttled');
      expect(err.details).toMatch(/still retrying after \d+ attempts/);
      expect(handle.hits()).toBeGreaterThanOrEqual(2);

      // The abandoned reads stop: no request reaches the vault once the mount has failed.
      await sleep(100);
      const settled = azure.keyVault.count({ vault: VAULT });
      await sleep(1500);
      expect(azure.keyVault.count({ vault: VAULT })).toBe(settled);

      handle.clear();
      expectSecretFiles(await provider.client.mount(req), secrets);
      expect(provider.exitInfo()).toBeUndefined();
    });

    it('half the requests throttled (429, Retry-After: 1): 5 concurrent mounts of 10 objects all succeed', async () => {
      const VAULT = 'throttle-kv';
      azure.keyVault.addVault(VAULT, { allow: [SYSTEM] });
      const sets = range(5).map((m) => storeSecrets(azure, VAULT, `t${m}`, 10));
      const handle = azure.keyVault.injectFaults({ status: 429, retryAfterSeconds: 1, ratio: 0.5, vault: VAULT });
      const results = await Promise.all(
        sets.map((secrets) => provider.client.mount(mountRequest(azure, VAULT, secrets.map((s) => secretEntry(s.name))), { deadlineMs: 60_000 })),
      );
      results.forEach((result, m) => expectSecretFiles(result, sets[m]!));
      expect(handle.hits()).toBeGreaterThan(0);
    }, 90_000);
  });

  describe('connections', () => {
    it('20 sequential mounts through HTTPS_PROXY reuse a few keep-alive connections (tunnels), not one per request', async () => {
      const VAULT = 'pool-kv';
      azure.keyVault.addVault(VAULT, { allow: [SYSTEM] });
      const secrets = storeSecrets(azure, VAULT, 'pooled', 3);
      const fresh = await start(azure);
      try {
        const tunnelsBefore = azure.proxy.tunnels.length;
        const connectionsBefore = azure.keyVault.connectionCount();
        const requestsBefore = azure.keyVault.count({ vault: VAULT });
        const req = mountRequest(azure, VAULT, secrets.map((s) => secretEntry(s.name)));
        for (let i = 0; i < 20; i++) expectSecretFiles(await fresh.client.mount(req), secrets);
        // At least 60 requests went out (plus the challenge)…
        expect(azure.keyVault.count({ vault: VAULT }) - requestsBefore).toBeGreaterThanOrEqual(60);
        // …over a handful of tunnels and TLS connections.
        const tunnels = azure.proxy.tunnels.slice(tunnelsBefore);
        expect(tunnels.every((t) => t === `${VAULT}.vault.azure.net:443`)).toBe(true);
        expect(tunnels.length).toBeGreaterThanOrEqual(1);
        expect(tunnels.length).toBeLessThanOrEqual(4);
        expect(azure.keyVault.connectionCount() - connectionsBefore).toBeLessThanOrEqual(4);
      } finally {
        await fresh.stop();
      }
    });

    it('the first mount of a fresh provider pays the 401 challenge once per SDK client, not once per parallel read', async () => {
      const VAULT = 'challenge-kv';
      const kv = azure.keyVault;
      kv.addVault(VAULT, { allow: [SYSTEM] });
      const secrets = storeSecrets(azure, VAULT, 'first', 20);
      const keyNames = range(5).map((i) => `first-key-${i}`);
      for (const name of keyNames) kv.setKey(VAULT, name, ecPublicKey('P-256').export({ format: 'jwk' }));
      const fresh = await start(azure);
      try {
        const before = kv.requests.length;
        expectSecretFiles(await fresh.client.mount(mountRequest(azure, VAULT, secrets.map((s) => secretEntry(s.name)))), secrets);
        let records = kv.requests.slice(before).filter((r) => r.vault === VAULT);
        expect(records.filter((r) => r.status === 401 && r.path.startsWith('/secrets/'))).toHaveLength(1);
        expect(records.filter((r) => r.status === 200 && r.path.startsWith('/secrets/'))).toHaveLength(20);

        // The keys client is another SDK client: its first mount pays its own one challenge.
        const keysBefore = kv.requests.length;
        const result = await fresh.client.mount(mountRequest(azure, VAULT, keyNames.map((n) => `objectName: ${n}\nobjectType: key`)));
        expect(result.files.map((f) => f.path)).toEqual(keyNames);
        records = kv.requests.slice(keysBefore).filter((r) => r.vault === VAULT);
        expect(records.filter((r) => r.status === 401)).toHaveLength(1);
        expect(records.filter((r) => r.status === 200)).toHaveLength(5);
      } finally {
        await fresh.stop();
      }
    });
  });
});
