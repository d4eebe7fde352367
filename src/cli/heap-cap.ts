/**
 * The V8 heap cap, derived from the container's memory limit instead of baked into the image.
 *
 * Node sizes its default heap from the cgroup limit but never below about 256 MiB (measured: 259 MiB under a 128, 256
 * or 512 MiB limit), so under the chart's 256Mi limit the heap could grow until the kernel kills the pod instead of
 * collecting sooner. The provider keeps little on the heap (credentials, clients, in-flight responses), so a share of
 * the limit is plenty; the rest is code, buffers and native memory.
 */

/** Share of the memory limit given to the old generation. */
export const HEAP_SHARE = 0.4;
/** Below this the provider spends its time collecting; a limit this small is a misconfiguration anyway. */
export const MIN_HEAP_MIB = 48;

const MIB = 1024 * 1024;

/** The container's memory limit in bytes, as the chart passes it (resourceFieldRef limits.memory, divisor 1). */
export const MEMORY_LIMIT_ENV = 'CSI_PROVIDER_AZURE_MEMORY_LIMIT';

/**
 * The limit the environment names, in bytes, or undefined when it names none: unset, empty, or not a positive whole
 * number (a mistyped value leaves the cap to the cgroup or to Node, rather than stopping a node's provider at start).
 */
export function limitFromEnv(value: string | undefined): number | undefined {
  if (value === undefined || !/^\s*\d+\s*$/.test(value)) return undefined;
  const bytes = Number(value);
  return Number.isSafeInteger(bytes) && bytes > 0 ? bytes : undefined;
}

/**
 * The cap in MiB for a memory limit, or undefined when there is no real limit (none, or not below the machine's
 * memory).
 */
export function heapCapMiB(limitBytes: number, totalMemoryBytes: number): number | undefined {
  if (!Number.isFinite(limitBytes) || limitBytes <= 0 || limitBytes >= totalMemoryBytes) return undefined;
  return Math.max(MIN_HEAP_MIB, Math.floor((limitBytes / MIB) * HEAP_SHARE));
}

export interface HeapCapInput {
  /** process.execArgv */
  execArgv: readonly string[];
  /** process.env.NODE_OPTIONS */
  nodeOptions: string | undefined;
  /** process.constrainedMemory() */
  constrainedMemory: number;
  /** process.env[MEMORY_LIMIT_ENV]: wins over the cgroup when it names a limit. */
  memoryLimitEnv?: string | undefined;
  /** os.totalmem() */
  totalMemory: number;
  /** process.execPath */
  execPath: string;
  /** process.argv: [node, script, ...flags] */
  argv: readonly string[];
}

const HEAP_FLAG = /(^|\s)--max[-_]old[-_]space[-_]size(=|\s|$)/;

/**
 * The argv to re-execute with (node, the cap, node's own flags, script, flags), or undefined to run as is.
 *
 * Where the limit comes from: the memory cgroup (process.constrainedMemory(), Linux), unless the environment names it
 * (MEMORY_LIMIT_ENV, in bytes, which the chart fills from the container's own limit with a resourceFieldRef). Windows
 * containers have no cgroup files, so there the environment is the only source; where both exist it wins, being what
 * the pod spec says.
 *
 * How it is applied: the entry point (bin/) re-executes the same process image with --max-old-space-size
 * (process.execve: same PID, no second process; Node 22.15+ on Linux, the image's runtime). Node has no execve on
 * Windows, and V8 reads the cap only when the process starts, so there, when the limit comes from the environment,
 * the entry point runs the provider as its child with the cap (run-capped.ts); the parent only waits. Otherwise (Node
 * 20 without the variable) the process runs with Node's default. An explicit --max-old-space-size (in the command line
 * or NODE_OPTIONS) always wins.
 */
export function heapCapArgv(input: HeapCapInput): string[] | undefined {
  if (input.execArgv.some((a) => HEAP_FLAG.test(a)) || HEAP_FLAG.test(input.nodeOptions ?? '')) return undefined;
  const cap = heapCapMiB(limitFromEnv(input.memoryLimitEnv) ?? input.constrainedMemory, input.totalMemory);
  if (cap === undefined) return undefined;
  return [input.execPath, `--max-old-space-size=${cap}`, ...input.execArgv, ...input.argv.slice(1)];
}
