/**
 * A small LRU map with a size bound, an optional memory bound and an optional time-to-live. Used for process-wide
 * caches (credentials, vault clients) on nodes that may see thousands of distinct SecretProviderClasses: they must
 * never grow without bound, neither in entries nor in memory.
 */
export interface CacheWeights<K, V> {
  /** The most the entries may weigh together (bytes, estimated); the least recently used go first beyond it. */
  maxWeight: number;
  /** What one entry weighs (an estimate of the memory it holds). */
  weigh: (value: V, key: K) => number;
}

export class BoundedCache<K, V> {
  private readonly entries = new Map<K, { value: V; expiresAt: number; weight: number }>();
  private totalWeight = 0;
  /** Told about every entry dropped for room or age (not for delete()), e.g. to drop what depends on it. */
  onEvict: ((key: K, value: V) => void) | undefined;

  constructor(
    private readonly maxEntries: number,
    private readonly ttlMs: number = Number.POSITIVE_INFINITY,
    private readonly now: () => number = Date.now,
    private readonly weights?: CacheWeights<K, V>,
  ) {}

  get(key: K): V | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= this.now()) {
      this.remove(key);
      this.onEvict?.(key, entry.value);
      return undefined;
    }
    // Re-insert so the Map's insertion order is recency order.
    this.entries.delete(key);
    this.entries.set(key, entry);
    return entry.value;
  }

  set(key: K, value: V): void {
    this.remove(key);
    const weight = this.weights ? this.weights.weigh(value, key) : 0;
    this.entries.set(key, { value, expiresAt: this.now() + this.ttlMs, weight });
    this.totalWeight += weight;
    // The newest entry always stays, even if it alone is over the weight bound.
    while (this.entries.size > 1 && (this.entries.size > this.maxEntries || (this.weights && this.totalWeight > this.weights.maxWeight))) {
      const oldest = this.entries.keys().next().value as K;
      const evicted = this.entries.get(oldest)!;
      this.remove(oldest);
      this.onEvict?.(oldest, evicted.value);
    }
    if (this.entries.size > this.maxEntries) {
      // maxEntries 0: nothing is kept.
      this.remove(key);
      this.onEvict?.(key, value);
    }
  }

  getOrCreate(key: K, create: () => V): V {
    const existing = this.get(key);
    if (existing !== undefined) return existing;
    const value = create();
    this.set(key, value);
    return value;
  }

  delete(key: K): boolean {
    return this.remove(key);
  }

  /** Removes every entry whose key matches (a linear scan: for rare events such as a refused identity). */
  deleteWhere(matches: (key: K) => boolean): number {
    let n = 0;
    for (const key of [...this.entries.keys()]) if (matches(key) && this.remove(key)) n++;
    return n;
  }

  get size(): number {
    return this.entries.size;
  }

  /** The estimated weight of every entry together. */
  get weight(): number {
    return this.totalWeight;
  }

  private remove(key: K): boolean {
    const entry = this.entries.get(key);
    if (!entry) return false;
    this.totalWeight -= entry.weight;
    return this.entries.delete(key);
  }
}
