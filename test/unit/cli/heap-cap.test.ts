import { heapCapArgv, heapCapMiB, HEAP_SHARE, MIN_HEAP_MIB } from '../../../src/cli/heap-cap';

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
});
