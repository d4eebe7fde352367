import { heapCapArgv, heapCapMiB, HEAP_SHARE, limitFromEnv, MEMORY_LIMIT_ENV, MIN_HEAP_MIB } from '../../../src/cli/heap-cap';

const MIB = 1024 * 1024;
const TOTAL = 16 * 1024 * MIB;

describe('heapCapMiB', () => {
  it('is a share of the memory limit', () => {
    expect(HEAP_SHARE).toBe(0.4);
    expect(heapCapMiB(256 * MIB, TOTAL)).toBe(102);
    expect(heapCapMiB(512 * MIB, TOTAL)).toBe(204);
    expect(heapCapMiB(1024 * MIB, TOTAL)).toBe(409);
  });

  it('never goes below the minimum', () => {
    expect(heapCapMiB(64 * MIB, TOTAL)).toBe(MIN_HEAP_MIB);
  });

  it('is undefined without a real limit: none, zero, or not below the machine (cgroup "max" reads as 2^64)', () => {
    expect(heapCapMiB(0, TOTAL)).toBeUndefined();
    expect(heapCapMiB(2 ** 64, TOTAL)).toBeUndefined();
    expect(heapCapMiB(TOTAL, TOTAL)).toBeUndefined();
    expect(heapCapMiB(Number.NaN, TOTAL)).toBeUndefined();
  });
});

describe('heapCapArgv', () => {
  const base = { execArgv: [], nodeOptions: undefined, constrainedMemory: 256 * MIB, totalMemory: TOTAL, execPath: '/nodejs/bin/node' };

  it('re-executes node with the cap first, then node flags, script and flags', () => {
    expect(heapCapArgv({ ...base, execArgv: ['--enable-source-maps'], argv: ['/nodejs/bin/node', '/app/bin/x.js', '-v=2'] })).toEqual([
      '/nodejs/bin/node',
      '--max-old-space-size=102',
      '--enable-source-maps',
      '/app/bin/x.js',
      '-v=2',
    ]);
  });

  it('leaves an explicit cap alone (command line or NODE_OPTIONS), which also ends the re-execution', () => {
    const argv = ['/nodejs/bin/node', '/app/bin/x.js'];
    expect(heapCapArgv({ ...base, argv, execArgv: ['--max-old-space-size=102'] })).toBeUndefined();
    expect(heapCapArgv({ ...base, argv, execArgv: ['--max_old_space_size=64'] })).toBeUndefined();
    expect(heapCapArgv({ ...base, argv, nodeOptions: '--trace-gc --max-old-space-size=300' })).toBeUndefined();
  });

  it('runs as is without a memory limit', () => {
    expect(heapCapArgv({ ...base, constrainedMemory: 2 ** 64, argv: ['/n', '/s'] })).toBeUndefined();
  });

  it('takes the limit from the environment where there is no cgroup (Windows), and prefers it where there is', () => {
    expect(MEMORY_LIMIT_ENV).toBe('CSI_PROVIDER_AZURE_MEMORY_LIMIT');
    const argv = ['C:\\app\\node\\node.exe', 'C:\\app\\bin\\csi-provider-azure.js'];
    // Windows: process.constrainedMemory() is 0; the chart's resourceFieldRef gives 256Mi in bytes.
    expect(heapCapArgv({ ...base, constrainedMemory: 0, memoryLimitEnv: String(256 * MIB), argv })).toEqual([
      '/nodejs/bin/node',
      '--max-old-space-size=102',
      ...argv.slice(1),
    ]);
    // Linux: the environment wins over the cgroup (both are the pod's limit when the chart sets it).
    expect(heapCapArgv({ ...base, constrainedMemory: 256 * MIB, memoryLimitEnv: String(512 * MIB), argv })?.[1]).toBe('--max-old-space-size=204');
    // An explicit cap still wins over both.
    expect(heapCapArgv({ ...base, memoryLimitEnv: String(512 * MIB), nodeOptions: '--max-old-space-size=300', argv })).toBeUndefined();
    // No limit set on the container: resourceFieldRef reports the node's allocatable memory (below its total).
    expect(heapCapArgv({ ...base, constrainedMemory: 0, memoryLimitEnv: String(TOTAL), argv })).toBeUndefined();
  });
});

describe('limitFromEnv', () => {
  it('reads whole bytes, and ignores what is not one (the cgroup or Node decides then)', () => {
    expect(limitFromEnv('268435456')).toBe(268435456);
    expect(limitFromEnv(' 268435456\n')).toBe(268435456);
    for (const value of [undefined, '', '0', '-1', '256Mi', '1.5e9', 'abc', '99999999999999999999']) expect(limitFromEnv(value)).toBeUndefined();
  });

  it('falls back to the cgroup when the environment names no limit', () => {
    const input = { execArgv: [], nodeOptions: undefined, constrainedMemory: 256 * MIB, totalMemory: TOTAL, execPath: '/n', argv: ['/n', '/s'] };
    expect(heapCapArgv({ ...input, memoryLimitEnv: '256Mi' })?.[1]).toBe('--max-old-space-size=102');
  });
});
