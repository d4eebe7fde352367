/**
 * The node's store of Key Vault answers for the opt-in value cache (see cached-vault-access.ts for when it is used).
 * It holds raw answers (a secret's value, a key's public JWK, a certificate's DER) under keys that name the identity
 * that read them, bounded in entries and in bytes, least recently used first out. Secret material is kept only in
 * Buffers, which are overwritten with zeros when an entry leaves (evicted, expired, replaced, or dropped after a
 * refusal), so the plaintext does not linger in this store past its entry. Nothing here is ever logged.
 */

/** One stored answer: `buffers` hold the material (zeroed on removal), `meta` what is not secret (versions, types). */
export interface StoredValue<M> {
  buffers: Buffer[];
  meta: M;
}

interface Entry {
  value: StoredValue<unknown>;
  /** When Key Vault answered (ms since the epoch). */
  storedAt: number;
  /** After this the entry is not served as fresh (jittered below the TTL at store time). */
  freshUntil: number;
  /** After this it is not served even after a throttling answer or an outage (freshUntil + grace). */
  staleUntil: number;
  bytes: number;
}

export interface ValueCacheLimits {
  maxEntries: number;
  maxBytes: number;
}

export interface ValueCacheEvents {
  /** An entry left for room (not for age, replacement or refusal). */
  onEviction?: () => void;
  /** The bytes held changed. */
  onBytes?: (bytes: number, entries: number) => void;
}

/** Bytes counted for an entry beyond its material: key text, metadata and the Map's own bookkeeping (an estimate). */
const ENTRY_OVERHEAD_BYTES = 512;

export class ValueCache {
  private readonly entries = new Map<string, Entry>();
  private totalBytes = 0;

  constructor(
    private readonly limits: ValueCacheLimits,
    private readonly events: ValueCacheEvents = {},
    private readonly now: () => number = Date.now,
  ) {}

  /** The fresh entry under `key`, or undefined; an entry past even its grace is removed. */
  fresh<M>(key: string): StoredValue<M> | undefined {
    const entry = this.lookup(key);
    if (!entry || entry.freshUntil <= this.now()) return undefined;
    return entry.value as StoredValue<M>;
  }

  /** The entry under `key` while it is within its grace window (for a read Key Vault throttled or could not serve). */
  stale<M>(key: string): { value: StoredValue<M>; ageMs: number } | undefined {
    const entry = this.lookup(key);
    if (!entry) return undefined;
    return { value: entry.value as StoredValue<M>, ageMs: this.now() - entry.storedAt };
  }

  /** Stores Key Vault's answer, fresh for `freshMs` and servable after an outage for `graceMs` more. */
  store(key: string, value: StoredValue<unknown>, freshMs: number, graceMs: number): void {
    const bytes = ENTRY_OVERHEAD_BYTES + key.length + value.buffers.reduce((n, b) => n + b.length, 0);
    // One answer larger than the whole store is not kept (nor does it push everything else out).
    if (freshMs <= 0 || bytes > this.limits.maxBytes || this.limits.maxEntries < 1) {
      zero(value);
      return;
    }
    this.remove(key);
    const now = this.now();
    this.entries.set(key, { value, storedAt: now, freshUntil: now + freshMs, staleUntil: now + freshMs + graceMs, bytes });
    this.totalBytes += bytes;
    while (this.entries.size > this.limits.maxEntries || this.totalBytes > this.limits.maxBytes) {
      const oldest = this.entries.keys().next().value as string;
      this.remove(oldest);
      this.events.onEviction?.();
    }
    this.events.onBytes?.(this.totalBytes, this.entries.size);
  }

  /** Drops one entry (Key Vault refused or no longer has the object). */
  delete(key: string): void {
    if (this.remove(key)) this.events.onBytes?.(this.totalBytes, this.entries.size);
  }

  /** Drops every entry whose key starts with `prefix` (an identity that was refused loses everything it read). */
  deletePrefix(prefix: string): void {
    let removed = false;
    for (const key of [...this.entries.keys()]) if (key.startsWith(prefix)) removed = this.remove(key) || removed;
    if (removed) this.events.onBytes?.(this.totalBytes, this.entries.size);
  }

  get size(): number {
    return this.entries.size;
  }

  get bytes(): number {
    return this.totalBytes;
  }

  private lookup(key: string): Entry | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (entry.staleUntil <= this.now()) {
      this.remove(key);
      this.events.onBytes?.(this.totalBytes, this.entries.size);
      return undefined;
    }
    // Re-inserted: the Map's order is recency order, the least recently used leaves first.
    this.entries.delete(key);
    this.entries.set(key, entry);
    return entry;
  }

  private remove(key: string): boolean {
    const entry = this.entries.get(key);
    if (!entry) return false;
    this.entries.delete(key);
    this.totalBytes -= entry.bytes;
    zero(entry.value);
    return true;
  }
}

function zero(value: StoredValue<unknown>): void {
  for (const buffer of value.buffers) buffer.fill(0);
}
