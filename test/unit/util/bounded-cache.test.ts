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

  it('drops the least recently used entries beyond its weight bound, and says which', () => {
    const cache = new BoundedCache<string, number>(100, Number.POSITIVE_INFINITY, Date.now, { maxWeight: 10, weigh: (v) => v });
    const evicted: string[] = [];
    cache.onEvict = (key) => evicted.push(key);
    cache.set('a', 4);
    cache.set('b', 4);
    expect(cache.get('a')).toBe(4); // b is now the least recent
    cache.set('c', 4);
    expect(evicted).toEqual(['b']);
    expect(cache.weight).toBe(8);
    // An entry heavier than the whole bound still stays, alone.
    cache.set('huge', 50);
    expect(cache.size).toBe(1);
    expect(cache.get('huge')).toBe(50);
    expect(cache.delete('huge')).toBe(true);
    expect(cache.weight).toBe(0);
  });

  it('keeps nothing with a bound of 0 entries', () => {
    const cache = new BoundedCache<string, number>(0);
    cache.set('a', 1);
    expect(cache.size).toBe(0);
  });
});
