/**
 * A container's limits for one benchmarked process: a cgroup with a CPU quota and a memory limit, the way kubelet
 * sets them for a pod's `resources.limits` (cgroup v2 `cpu.max` / `memory.max` where the unified hierarchy is mounted
 * at /sys/fs/cgroup, v1 `cpu.cfs_quota_us` / `memory.limit_in_bytes` otherwise). Needs root.
 */
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Limits {
  /** e.g. 50 for "50m". */
  milliCpu: number;
  memoryMiB: number;
}

export interface Cgroup {
  /** Prefix for the command: enters the cgroup, then execs the rest (the pid stays the benchmarked process's). */
  launcher: string[];
  /** The cgroup's own peak memory (page cache charged to it included), bytes. */
  peakMemoryBytes(): number;
  /** OOM kills inside the cgroup so far. */
  oomKills(): number;
  remove(): void;
}

const V2_ROOT = '/sys/fs/cgroup';
const V1_CPU = '/sys/fs/cgroup/cpu';
const V1_MEMORY = '/sys/fs/cgroup/memory';
const PERIOD_US = 100_000;

const ENTER = 'for d in "$1" "$2"; do [ -n "$d" ] && echo $$ > "$d/cgroup.procs"; done; shift 2; exec "$@"';

export function createCgroup(name: string, limits: Limits): Cgroup {
  const quota = String(limits.milliCpu * (PERIOD_US / 1000));
  const memory = String(limits.memoryMiB * 1024 * 1024);
  if (existsSync(join(V2_ROOT, 'cgroup.controllers'))) {
    const dir = join(V2_ROOT, name);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'cpu.max'), `${quota} ${PERIOD_US}`);
    writeFileSync(join(dir, 'memory.max'), memory);
    writeFileSync(join(dir, 'memory.swap.max'), '0');
    return {
      launcher: ['/bin/sh', '-c', ENTER, 'enter-cgroup', dir, ''],
      peakMemoryBytes: () => readNumber(join(dir, 'memory.peak')),
      oomKills: () => Number(/oom_kill (\d+)/.exec(readFileSync(join(dir, 'memory.events'), 'utf8'))?.[1] ?? 0),
      remove: () => rmdirSync(dir),
    };
  }
  const cpu = join(V1_CPU, name);
  const mem = join(V1_MEMORY, name);
  mkdirSync(cpu, { recursive: true });
  mkdirSync(mem, { recursive: true });
  writeFileSync(join(cpu, 'cpu.cfs_period_us'), String(PERIOD_US));
  writeFileSync(join(cpu, 'cpu.cfs_quota_us'), quota);
  writeFileSync(join(mem, 'memory.limit_in_bytes'), memory);
  // No swap beyond the limit, as on a Kubernetes node.
  if (existsSync(join(mem, 'memory.memsw.limit_in_bytes'))) writeFileSync(join(mem, 'memory.memsw.limit_in_bytes'), memory);
  return {
    launcher: ['/bin/sh', '-c', ENTER, 'enter-cgroup', cpu, mem],
    peakMemoryBytes: () => readNumber(join(mem, 'memory.max_usage_in_bytes')),
    oomKills: () => Number(/oom_kill (\d+)/.exec(readFileSync(join(mem, 'memory.oom_control'), 'utf8'))?.[1] ?? 0),
    remove: () => {
      for (const d of [cpu, mem]) {
        try {
          rmdirSync(d);
        } catch {
          // still has a zombie member for a moment; the next run reuses the name
        }
      }
    },
  };
}

function readNumber(path: string): number {
  return Number(readFileSync(path, 'utf8').trim());
}

/** User + system CPU of a process so far, in ms (fields 14 and 15 of /proc/<pid>/stat, in clock ticks of 10 ms). */
export function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // After the command name, field 3 is at index 0: utime is field 14, stime field 15.
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** Peak resident set (VmHWM) of a process, bytes. */
export function peakRssBytes(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}
