import { BoundedCache } from '../../../src/util/bounded-cache';

describe('BoundedCache', () => {
  it('drops the least recently used entry beyond its bound', () => {
    const cache = new BoundedCache<string, number>(2);
    cache.set('a', 1);
    cache.set('b', 2);
    expect(cache.get('a')).toBe(1); // a is now the most recent
    cache.set('c', 3);
    expect(cache.get('b')).toBeUndefined();
    expect(cache.get('a')).toBe(1);
    expect(cache.size).toBe(2);
  });

  it('expires entries after their time to live', () => {
    let now = 0;
    const cache = new BoundedCache<string, number>(10, 100, () => now);
    expect(cache.getOrCreate('a', () => 1)).toBe(1);
    now = 99;
    expect(cache.getOrCreate('a', () => 2)).toBe(1);
    now = 200;
    expect(cache.getOrCreate('a', () => 3)).toBe(3);
  });
});
