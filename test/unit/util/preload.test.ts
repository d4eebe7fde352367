import { preloadInBackground } from '../../../src/util/preload';

beforeEach(() => jest.useFakeTimers());
afterEach(() => jest.useRealTimers());

it('waits before the first library, then loads one at a time with a gap, in order', () => {
  const loaded: string[] = [];
  preloadInBackground(['a', 'b', 'c'].map((name) => () => loaded.push(name)), { startAfterMs: 1000, gapMs: 100, busy: () => false }, () => undefined);
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
    { startAfterMs: 0, gapMs: 10, busy: () => false },
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
    { startAfterMs: 0, gapMs: 0, busy: () => false },
    (err) => failures.push(err),
  );
  jest.runAllTimers();
  expect(failures).toEqual([broken]);
  expect(loaded).toEqual(['next']);
});

it('loads nothing while the process is busy, and goes on once it is not', () => {
  const loaded: string[] = [];
  const answers = [true, true, false, false, true, false, false];
  preloadInBackground(['a', 'b'].map((name) => () => loaded.push(name)), { startAfterMs: 0, gapMs: 100, busy: () => answers.shift() ?? false }, () => undefined);
  jest.advanceTimersByTime(0);
  expect(loaded).toEqual([]);
  jest.advanceTimersByTime(100);
  expect(loaded).toEqual([]);
  jest.advanceTimersByTime(100);
  expect(loaded).toEqual(['a']);
  jest.advanceTimersByTime(100);
  expect(loaded).toEqual(['a']);
  jest.advanceTimersByTime(100);
  expect(loaded).toEqual(['a', 'b']);
});

it('sees a busy event loop by its utilization', () => {
  jest.useRealTimers();
  const loaded: string[] = [];
  return new Promise<void>((resolve) => {
    preloadInBackground([() => loaded.push('a')], { startAfterMs: 20, gapMs: 20 }, () => undefined);
    // Keep the loop busy past the first attempt: nothing loads then.
    const until = Date.now() + 60;
    while (Date.now() < until);
    setTimeout(() => {
      expect(loaded).toEqual([]);
      // Then, the loop idle, it loads (polled: a loaded machine may delay the timers, never reorder them).
      const poll = setInterval(() => {
        if (loaded.length === 0) return;
        clearInterval(poll);
        expect(loaded).toEqual(['a']);
        resolve();
      }, 20);
    }, 0);
  });
});
