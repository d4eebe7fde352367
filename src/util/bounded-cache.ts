/**
 * A small LRU map with a size bound and an optional time-to-live. Used for process-wide caches (credentials, vault
 * clients) on nodes that may see thousands of distinct SecretProviderClasses: they must never grow without bound.
 */
export class BoundedCache<K, V> {
  private readonly entries = new Map<K, { value: V; expiresAt: number }>();

  constructor(
    private readonly maxEntries: number,
    private readonly ttlMs: number = Number.POSITIVE_INFINITY,
    private readonly now: () => number = Date.now,
  ) {}

  get(key: K): V | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= this.now()) {
      this.entries.delete(key);
      return undefined;
    }
    // Re-insert so the Map's insertion order is recency order.
    this.entries.delete(key);
    this.entries.set(key, entry);
    return entry.value;
  }

  set(key: K, value: V): void {
    this.entries.delete(key);
    this.entries.set(key, { value, expiresAt: this.now() + this.ttlMs });
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value as K;
      this.entries.delete(oldest);
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
    return this.entries.delete(key);
  }

  /** Removes every entry whose key matches (a linear scan: for rare events such as a refused identity). */
  deleteWhere(matches: (key: K) => boolean): number {
    let n = 0;
    for (const key of [...this.entries.keys()]) if (matches(key) && this.entries.delete(key)) n++;
    return n;
  }

  get size(): number {
    return this.entries.size;
  }
}
