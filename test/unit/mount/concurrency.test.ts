import { mapBounded } from '../../../src/mount/concurrency';

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      reject(new Error('aborted'));
    });
  });

describe('mapBounded', () => {
  it('keeps input order and never exceeds the bound', async () => {
    let active = 0;
    let peak = 0;
    const results = await mapBounded([30, 5, 20, 1, 10], 2, new AbortController().signal, async (ms) => {
      peak = Math.max(peak, ++active);
      await sleep(ms);
      active--;
      return ms * 2;
    });
    expect(results).toEqual([60, 10, 40, 2, 20]);
    expect(peak).toBe(2);
  });

  it('fails with the first error and aborts the work still in flight', async () => {
    const aborted: number[] = [];
    const started: number[] = [];
    await expect(
      mapBounded([1, 2, 3, 4], 2, new AbortController().signal, async (n, signal) => {
        started.push(n);
        signal.addEventListener('abort', () => aborted.push(n));
        if (n === 1) throw new Error('object 1 failed');
        await sleep(1000, signal);
        return n;
      }),
    ).rejects.toThrow('object 1 failed');
    expect(aborted).toContain(2); // the fetch still in flight was cancelled
    expect(started).toEqual([1, 2]); // 3 and 4 never start
  });

  it('stops when the parent signal aborts', async () => {
    const parent = new AbortController();
    setTimeout(() => parent.abort(new Error('deadline')), 10);
    await expect(mapBounded([1, 2], 4, parent.signal, (_n, signal) => sleep(5000, signal))).rejects.toThrow('aborted');
  });
});
