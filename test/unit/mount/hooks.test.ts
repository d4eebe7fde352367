import { ProviderError } from '../../../src/errors';
import { combineHooks, type MountHooks } from '../../../src/mount/hooks';
import type { MountSpec } from '../../../src/spec/types';

const signal = new AbortController().signal;
const spec = { pod: { uid: 'u' } } as unknown as MountSpec;

describe('combineHooks', () => {
  it('runs both features at each step, the first one first; the second prepares what the first prepared', async () => {
    const calls: string[] = [];
    const first: MountHooks = {
      prepare: async (a) => (calls.push('prepare 1'), { ...a, one: '1' }),
      admit: async () => void calls.push('admit 1'),
      succeeded: () => void calls.push('succeeded 1'),
      failed: () => void calls.push('failed 1'),
    };
    const second: MountHooks = {
      prepare: async (a) => (calls.push(`prepare 2 sees ${a['one']}`), { ...a, two: '2' }),
      admit: async () => void calls.push('admit 2'),
      succeeded: () => void calls.push('succeeded 2'),
      failed: () => void calls.push('failed 2'),
    };
    const both = combineHooks(first, second);
    expect(await both.prepare!({ a: 'x' }, {}, signal)).toEqual({ a: 'x', one: '1', two: '2' });
    await both.admit!(spec, signal);
    both.succeeded!({}, spec);
    both.failed!({}, spec, new ProviderError('Internal', 'x'));
    expect(calls).toEqual(['prepare 1', 'prepare 2 sees 1', 'admit 1', 'admit 2', 'succeeded 1', 'succeeded 2', 'failed 1', 'failed 2']);
  });

  it('keeps a step absent that neither has, and a refusal of the first stops the second', async () => {
    const calls: string[] = [];
    const refusing: MountHooks = { admit: () => Promise.reject(new ProviderError('PermissionDenied', 'no')) };
    // A class method keeps its `this` when combined.
    class Counter {
      n = 0;
      succeeded(): void {
        this.n++;
      }
    }
    const counter = new Counter();
    const both = combineHooks(refusing, { admit: async () => void calls.push('admit 2') });
    expect(both.prepare).toBeUndefined();
    expect(both.failed).toBeUndefined();
    await expect(both.admit!(spec, signal)).rejects.toMatchObject({ status: 'PermissionDenied' });
    expect(calls).toEqual([]);
    const unbound = combineHooks({}, counter);
    unbound.succeeded!({}, spec);
    expect(counter.n).toBe(1);
  });
});
