import { preloadInBackground } from '../../../src/util/preload';

beforeEach(() => jest.useFakeTimers());
afterEach(() => jest.useRealTimers());

it('waits before the first library, then loads one at a time with a gap, in order', () => {
  const loaded: string[] = [];
  preloadInBackground(['a', 'b', 'c'].map((name) => () => loaded.push(name)), { startAfterMs: 1000, gapMs: 100 }, () => undefined);
  jest.advanceTimersByTime(999);
  expect(loaded).toEqual([]);
  jest.advanceTimersByTime(1);
  expect(loaded).toEqual(['a']);
  jest.advanceTimersByTime(99);
  expect(loaded).toEqual(['a']);
  jest.advanceTimersByTime(1);
  expect(loaded).toEqual(['a', 'b']);
  jest.advanceTimersByTime(1000);
  expect(loaded).toEqual(['a', 'b', 'c']);
  expect(jest.getTimerCount()).toBe(0);
});

it('lets what arrived while a library loaded run before the next library', () => {
  const order: string[] = [];
  preloadInBackground(
    [
      () => {
        order.push('first');
        setTimeout(() => order.push('served'), 0);
      },
      () => order.push('second'),
    ],
    { startAfterMs: 0, gapMs: 10 },
    () => undefined,
  );
  jest.runAllTimers();
  expect(order).toEqual(['first', 'served', 'second']);
});

it('reports a library that fails to load and goes on with the next', () => {
  const failures: unknown[] = [];
  const loaded: string[] = [];
  const broken = new Error('Cannot find module');
  preloadInBackground(
    [
      () => {
        throw broken;
      },
      () => loaded.push('next'),
    ],
    { startAfterMs: 0, gapMs: 0 },
    (err) => failures.push(err),
  );
  jest.runAllTimers();
  expect(failures).toEqual([broken]);
  expect(loaded).toEqual(['next']);
});
