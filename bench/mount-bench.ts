/**
 * `npm run bench` (part 1): figures for the provider as a whole, against the local stand-ins (no Azure, no injected
 * latency: this measures the provider's own cost). Prints:
 *  - start-up time from spawn to an answered Version RPC on the socket,
 *  - Mount latency for one secret (warm token and connections), p50/p99 over many sequential mounts,
 *  - resident memory after start and after 100 mounts.
 */
import { startAzureStandIns } from '../test/support/azure-standins';
import { startProvider } from '../test/support/provider-process';

const MOUNTS = Number(process.env['BENCH_MOUNTS'] ?? 300);
const STARTS = Number(process.env['BENCH_STARTS'] ?? 5);

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const mib = (bytes: number): string => (bytes / 1024 / 1024).toFixed(1);

async function main(): Promise<void> {
  const azure = await startAzureStandIns({ identities: { systemAssigned: { id: 'node' } } });
  azure.keyVault.addVault('bench-kv', { allow: ['node'] });
  azure.keyVault.setSecret('bench-kv', 'one', 'x'.repeat(64));
  const attributes = {
    'csi.storage.k8s.io/pod.name': 'bench-0',
    'csi.storage.k8s.io/pod.namespace': 'bench',
    useVMManagedIdentity: 'true',
    keyvaultName: 'bench-kv',
    tenantID: azure.tenantId,
    objects: 'array:\n  - |\n    objectName: one\n    objectType: secret\n',
  };

  const startups: number[] = [];
  for (let i = 0; i < STARTS; i++) {
    const t0 = performance.now();
    const p = await startProvider({ env: azure.providerEnv() });
    startups.push(performance.now() - t0);
    await p.stop();
  }
  startups.sort((a, b) => a - b);

  const provider = await startProvider({ env: azure.providerEnv() });
  const idleRss = provider.rssBytes();
  const first = performance.now();
  await provider.client.mount({ attributes });
  const coldMs = performance.now() - first;
  const latencies: number[] = [];
  let rssAfter100 = 0;
  for (let i = 0; i < MOUNTS; i++) {
    const t0 = performance.now();
    await provider.client.mount({ attributes });
    latencies.push(performance.now() - t0);
    if (i === 99) rssAfter100 = provider.rssBytes();
  }
  latencies.sort((a, b) => a - b);
  const tokenRequests = azure.imds.tokenRequestCount();
  const vaultRequests = azure.keyVault.requests.length;
  await provider.stop();
  await azure.close();

  console.log('provider figures (local stand-ins, no injected latency)');
  console.table({
    'start-up to answered Version RPC (median ms)': percentile(startups, 50).toFixed(0),
    'first mount, 1 secret (cold token + challenge, ms)': coldMs.toFixed(1),
    [`mount, 1 secret, warm: p50 ms (${MOUNTS} mounts)`]: percentile(latencies, 50).toFixed(2),
    'mount, 1 secret, warm: p99 ms': percentile(latencies, 99).toFixed(2),
    'RSS idle after start (MiB)': mib(idleRss),
    'RSS after 100 mounts (MiB)': mib(rssAfter100),
    [`IMDS token requests for ${MOUNTS + 1} mounts`]: tokenRequests,
    [`Key Vault requests for ${MOUNTS + 1} mounts`]: vaultRequests,
  });
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
