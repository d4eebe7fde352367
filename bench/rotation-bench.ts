/**
 * `npm run bench` (rotation): what rotation costs Key Vault, with the value cache off and on. One node: N pods over K
 * SecretProviderClasses and I user-assigned identities, 10 objects per class, every object rotated (a new version)
 * each interval. Every pod mounts once (its first mount), then once per interval, as kubelet's republish drives it:
 * a full Mount over the provider's unix socket with the pod's attributes, to the real provider process. Key Vault
 * is the local stand-in, throttling above BENCH_VAULT_RPS requests a second (429 with Retry-After, as Key Vault does).
 *
 * Prints per run: Key Vault requests per interval (first mounts, then rotation intervals), token requests, 429s, p99
 * mount latency, failed mounts and the provider's peak RSS; and the reference's arithmetic (pods x objects per
 * interval) beside the target with the cache on (distinct identity-object pairs x ceil(interval / TTL)).
 *
 * Environment: BENCH_PODS (1000), BENCH_CLASSES (20), BENCH_IDENTITIES (5), BENCH_INTERVALS (3 rotation intervals),
 * BENCH_INTERVAL_MS (10000), BENCH_TTL_MS (10000), BENCH_VAULT_RPS (1000), BENCH_CONCURRENCY (64).
 */
import { startAzureStandIns } from '../test/support/azure-standins';
import type { MountRequestInput } from '../test/support/driver-client';
import { startProvider } from '../test/support/provider-process';

const PODS = Number(process.env['BENCH_PODS'] ?? 1000);
const CLASSES = Number(process.env['BENCH_CLASSES'] ?? 20);
const IDENTITIES = Number(process.env['BENCH_IDENTITIES'] ?? 5);
const INTERVALS = Number(process.env['BENCH_INTERVALS'] ?? 3);
const INTERVAL_MS = Number(process.env['BENCH_INTERVAL_MS'] ?? 10_000);
const TTL_MS = Number(process.env['BENCH_TTL_MS'] ?? 10_000);
const VAULT_RPS = Number(process.env['BENCH_VAULT_RPS'] ?? 1000);
const CONCURRENCY = Number(process.env['BENCH_CONCURRENCY'] ?? 64);
const OBJECTS_PER_CLASS = 10;
const VAULT = 'rotation-kv';

/**
 * Classes read objects of an "application"; two classes (with different identities) share each application's objects.
 */
const appOf = (k: number): number => Math.floor(k / 2);
const identityOf = (k: number): number => k % IDENTITIES;
const objectName = (app: number, j: number): string => `app${app}-obj${j}`;

interface RunFigures {
  readsPerInterval: number[];
  tokenRequests: number;
  throttled: number;
  p99Ms: number;
  /** p99 of the rotation intervals' mounts only (first mounts excluded). */
  p99RotationMs: number;
  failed: number;
  peakRssMiB: number;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function run(cacheOn: boolean): Promise<RunFigures> {
  const identities = Array.from({ length: IDENTITIES }, (_, i) => ({
    id: `rot-id-${i}`,
    clientId: `${String(i).padStart(8, '0')}-0000-4000-8000-000000000000`,
    resourceId: `/subscriptions/s/resourceGroups/r/providers/Microsoft.ManagedIdentity/userAssignedIdentities/rot-id-${i}`,
  }));
  const azure = await startAzureStandIns({ identities: { systemAssigned: { id: 'rot-node' }, userAssigned: identities } });
  azure.keyVault.addVault(VAULT, { allow: identities.map((i) => i.id) });
  const apps = appOf(CLASSES - 1) + 1;
  const rotate = (round: number): void => {
    for (let a = 0; a < apps; a++) for (let j = 0; j < OBJECTS_PER_CLASS; j++) azure.keyVault.setSecret(VAULT, objectName(a, j), `value-${a}-${j}-${round}`);
  };
  rotate(0);
  // Key Vault's throttling, per vault: above VAULT_RPS requests in the last second, 429 with Retry-After.
  const window: number[] = [];
  azure.keyVault.injectFaults({
    status: 429,
    retryAfterSeconds: 1,
    ratio: 1,
    match: () => {
      const now = Date.now();
      while (window.length > 0 && window[0]! <= now - 1000) window.shift();
      if (window.length >= VAULT_RPS) return true;
      window.push(now);
      return false;
    },
  });

  const provider = await startProvider({
    env: azure.providerEnv(),
    args: cacheOn ? [`--keyvault-cache-max-ttl=${TTL_MS}ms`] : [],
  });
  let peakRss = provider.rssBytes();
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, provider.rssBytes())), 200);

  const objectsOf = (k: number): string =>
    `array:\n${Array.from({ length: OBJECTS_PER_CLASS }, (_, j) => `  - |\n    objectName: ${objectName(appOf(k), j)}\n    objectType: secret\n`).join('')}`;
  const requestOf = (pod: number): MountRequestInput => {
    const k = pod % CLASSES;
    return {
      attributes: {
        'csi.storage.k8s.io/pod.name': `app-${k}-${pod}`,
        'csi.storage.k8s.io/pod.namespace': 'rotation',
        'csi.storage.k8s.io/pod.uid': `uid-${pod}`,
        'csi.storage.k8s.io/serviceAccount.name': 'default',
        secretProviderClass: `class-${k}`,
        useVMManagedIdentity: 'true',
        userAssignedIdentityID: identities[identityOf(k)]!.clientId,
        keyvaultName: VAULT,
        tenantID: azure.tenantId,
        ...(cacheOn ? { cacheTTL: `${TTL_MS}ms` } : {}),
        objects: objectsOf(k),
      },
    };
  };

  let latencies: number[] = [];
  const allLatencies: number[] = [];
  let failed = 0;
  /** One interval: every pod mounts once, spread over the first half of the interval, at most CONCURRENCY at once. */
  const interval = async (): Promise<void> => {
    const started = Date.now();
    let next = 0;
    const spread = INTERVAL_MS / 2 / PODS;
    const worker = async (): Promise<void> => {
      for (let pod = next++; pod < PODS; pod = next++) {
        const due = started + pod * spread;
        if (due > Date.now()) await sleep(due - Date.now());
        const t0 = performance.now();
        try {
          await provider.client.mount(requestOf(pod));
        } catch {
          failed++;
        }
        latencies.push(performance.now() - t0);
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    const left = started + INTERVAL_MS - Date.now();
    if (left > 0) await sleep(left);
  };

  const reads = (): number => azure.keyVault.requests.filter((r) => r.status !== 401).length;
  const readsPerInterval: number[] = [];
  const rotationLatencies: number[] = [];
  for (let round = 0; round <= INTERVALS; round++) {
    const before = reads();
    if (round > 0) rotate(round);
    latencies = [];
    await interval();
    readsPerInterval.push(reads() - before);
    allLatencies.push(...latencies);
    if (round > 0) rotationLatencies.push(...latencies);
  }
  clearInterval(sampler);
  const figures: RunFigures = {
    readsPerInterval,
    tokenRequests: azure.imds.tokenRequestCount(),
    throttled: azure.keyVault.requests.filter((r) => r.status === 429).length,
    p99Ms: percentile(allLatencies.sort((a, b) => a - b), 99),
    p99RotationMs: percentile(rotationLatencies.sort((a, b) => a - b), 99),
    failed,
    peakRssMiB: peakRss / 1024 / 1024,
  };
  await provider.stop();
  await azure.close();
  return figures;
}

async function main(): Promise<void> {
  const pairs = new Set<string>();
  for (let k = 0; k < CLASSES; k++) for (let j = 0; j < OBJECTS_PER_CLASS; j++) pairs.add(`${identityOf(k)}/${objectName(appOf(k), j)}`);
  const off = await run(false);
  const on = await run(true);
  const rotationReads = (f: RunFigures): string => f.readsPerInterval.slice(1).join(' / ');
  console.log(
    `rotation: ${PODS} pods, ${CLASSES} classes, ${IDENTITIES} identities, ${OBJECTS_PER_CLASS} objects per class, ` +
      `${INTERVALS} rotation intervals of ${INTERVAL_MS / 1000}s, cacheTTL ${TTL_MS / 1000}s, vault throttles above ${VAULT_RPS} req/s`,
  );
  console.table({
    'Key Vault requests, first mounts': { off: off.readsPerInterval[0], on: on.readsPerInterval[0] },
    'Key Vault requests per rotation interval': { off: rotationReads(off), on: rotationReads(on) },
    'token requests (IMDS)': { off: off.tokenRequests, on: on.tokenRequests },
    '429 answers': { off: off.throttled, on: on.throttled },
    'p99 mount latency, all mounts (ms)': { off: off.p99Ms.toFixed(1), on: on.p99Ms.toFixed(1) },
    'p99 mount latency, rotation mounts (ms)': { off: off.p99RotationMs.toFixed(1), on: on.p99RotationMs.toFixed(1) },
    'failed mounts': { off: off.failed, on: on.failed },
    'peak provider RSS (MiB)': { off: off.peakRssMiB.toFixed(1), on: on.peakRssMiB.toFixed(1) },
  });
  console.log(`reference's arithmetic, pods x objects per interval: ${PODS * OBJECTS_PER_CLASS}`);
  console.log(
    `target with the cache on, distinct (identity, object) pairs x ceil(interval / TTL): ${pairs.size} x ` +
      `${Math.ceil(INTERVAL_MS / TTL_MS)} = ${pairs.size * Math.ceil(INTERVAL_MS / TTL_MS)}`,
  );
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
