import { preloadInBackground } from '../../../src/util/preload';

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

it('loads one library per turn of the event loop, in order, none before the caller returns', async () => {
  const loaded: string[] = [];
  preloadInBackground(['a', 'b', 'c'].map((name) => () => loaded.push(name)), () => undefined);
  expect(loaded).toEqual([]);
  await turn();
  expect(loaded).toEqual(['a']);
  await turn();
  expect(loaded).toEqual(['a', 'b']);
  await turn();
  await turn();
  expect(loaded).toEqual(['a', 'b', 'c']);
});

it('lets I/O that arrived meanwhile run between two libraries', async () => {
  const order: string[] = [];
  preloadInBackground(
    [
      () => {
        order.push('first');
        setImmediate(() => order.push('served'));
      },
      () => order.push('second'),
    ],
    () => undefined,
  );
  for (let i = 0; i < 4; i++) await turn();
  expect(order).toEqual(['first', 'served', 'second']);
});

it('reports a library that fails to load and goes on with the next', async () => {
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
    (err) => failures.push(err),
  );
  for (let i = 0; i < 3; i++) await turn();
  expect(failures).toEqual([broken]);
  expect(loaded).toEqual(['next']);
});
