/**
 * The opt-in Key Vault value cache, as a wrapper around the node's vault access: with it, the republish mounts that
 * kubelet sends every rotation interval read an object from Key Vault once per identity and TTL, not once per pod.
 *
 * Why sharing stays safe: a cached answer is stored under the identity that read it (cache-key.ts) and served only to
 * a mount of that same identity, within the TTL after Key Vault last let it read the object. A 401, 403 or 404 is
 * never stored and removes what was stored for that object (a 401 everything of the identity), so a revoked role or a
 * disabled secret is enforced at the latest one TTL after the change. A pod's first mount always goes to Key Vault
 * unless the operator allows otherwise; only the mounts after one that succeeded (republish, rotation) may be answered
 * from memory: the mount service reports each success through the `succeeded` hook.
 */
import { createHash } from 'node:crypto';
import type { Logger } from '../observability/logger';
import type {
  FetchedCertificate,
  FetchedKey,
  FetchedSecret,
  ListedSecret,
  ListedVersion,
  MountHooks,
  ObjectMetadata,
  VaultAccess,
  VaultReader,
} from '../spec/ports';
import type { MountSpec, ObjectType } from '../spec/types';
import type { ProviderMetrics } from '../observability/metrics';
import { BoundedCache } from '../util/bounded-cache';
import { cacheIdentityKey } from './cache-key';
import { fetchErrorClass } from './metered-reader';
import { ValueCache, type StoredValue } from './value-cache';

export interface ValueCacheOptions {
  /** --keyvault-cache-max-ttl: the longest TTL a SecretProviderClass may ask for. */
  maxTtlMs: number;
  /** --keyvault-cache-max-entries and --keyvault-cache-max-bytes. */
  maxEntries: number;
  maxBytes: number;
  /** --keyvault-cache-first-mounts: a pod's first mount may be served from the cache too (scale-up bursts). */
  allowFirstMounts: boolean;
  /** --keyvault-cache-stale-grace: how long past its TTL an answer may stand in when Key Vault throttles or fails. */
  staleGraceMs: number;
  /** Volumes (pod uid and target path) remembered to tell a first mount from a republish (default REMEMBERED_PODS). */
  maxPods?: number;
  metrics?: ProviderMetrics;
  logger: Logger;
  now?: () => number;
  random?: () => number;
}

/**
 * Each answer is fresh for a random part of the TTL between this fraction and all of it: pods of one Deployment that
 * mounted together then refresh at different moments instead of sending their reads in the same second.
 */
const JITTER_FLOOR = 0.8;

/**
 * Volumes (pod uid and target path, hashed) remembered as mounted, the least recently mounted forgotten first: about
 * 200 bytes each, so about 2 MB when full (measured). A node runs at most a few hundred pods (AKS allows up to 250 per
 * node), each with a few volumes, and each republish refreshes its entry, so this leaves room for thousands of pods
 * that came and went between two rotations (the driver never tells a provider that a volume is gone, so their entries
 * leave only by being pushed out). Being too small costs only Key Vault reads: a forgotten volume's next mount counts
 * as a first mount and reads Key Vault, never the other way round.
 */
export const REMEMBERED_PODS = 10_000;

/**
 * A stale answer's warning is logged once per vault and object in this window, however many mounts it served: during
 * an outage every pod's republish would otherwise log a line per object per rotation. The metric counts every one,
 * and the next line says how many were served since the last.
 */
export const STALE_LOG_INTERVAL_MS = 60_000;
/** Objects whose last stale warning is remembered (beyond this the least recent is forgotten and may log again). */
const STALE_LOG_OBJECTS = 1_024;

/** Failure classes after which a stored answer may stand in (Key Vault throttled, failed or was unreachable). */
const STALE_OK = new Set(['throttled', 'server_error', 'network']);
/** Failure classes that mean "not for you (any more)": what was stored for the object goes at once. */
const REFUSED = new Set(['forbidden', 'not_found', 'unauthenticated']);

export class CachingVaultAccess implements VaultAccess, Pick<MountHooks, 'succeeded'> {
  readonly cache: ValueCache;
  private readonly pods: BoundedCache<string, true>;
  /**
   * Per vault and object: when its stale warning was last logged, and the stale answers served since without a line.
   */
  private readonly staleLogged = new BoundedCache<string, { loggedAt: number; unlogged: number }>(STALE_LOG_OBJECTS);
  private readonly now: () => number;
  private readonly random: () => number;

  constructor(
    private readonly inner: VaultAccess,
    private readonly options: ValueCacheOptions,
  ) {
    this.now = options.now ?? Date.now;
    this.random = options.random ?? Math.random;
    const { metrics } = options;
    this.cache = new ValueCache(
      { maxEntries: options.maxEntries, maxBytes: options.maxBytes },
      {
        onEviction: () => metrics?.countValueCacheEviction?.(),
        onBytes: (bytes, entries) => {
          metrics?.setValueCacheBytes?.(bytes);
          metrics?.setCacheEntries('keyvault_value', entries);
        },
      },
      this.now,
    );
    this.pods = new BoundedCache(options.maxPods ?? REMEMBERED_PODS);
  }

  /** A mount succeeded: the next mounts of this pod's volume are republishes, which the cache may answer. */
  succeeded(_attributes: Record<string, string>, spec: MountSpec): void {
    const pod = podKey(spec);
    if (pod && this.ttlOf(spec) > 0) this.pods.set(pod, true);
  }

  async open(spec: MountSpec, signal: AbortSignal): Promise<VaultReader> {
    const reader = await this.inner.open(spec, signal);
    const ttlMs = this.ttlOf(spec);
    if (ttlMs <= 0) return reader;
    // Only after a mount of this pod succeeded: a first mount that failed half-way leaves the pod unseen, so its retry
    // reads Key Vault again (what that failed mount did read was stored, and may serve other pods' republishes).
    const pod = podKey(spec);
    const republish = pod !== '' && this.pods.get(pod) === true;
    const mayHit = republish || this.options.allowFirstMounts;
    const identity = cacheIdentityKey(spec);
    // The vault this reader reads (an object with its own keyvaultName opens a reader for that vault): with the cloud
    // in the identity key, the name is the vault's URL.
    const vault = spec.vaultName.toLowerCase();
    return new CachingReader(reader, this, { identity, prefix: `${identity}#${vault}#`, ttlMs, mayHit, spec });
  }

  /** One read through the cache (see CachingReader). */
  async through<T>(
    scope: ReaderScope,
    type: ObjectType,
    name: string,
    version: string,
    signal: AbortSignal,
    read: () => Promise<T>,
    codec: Codec<T>,
  ): Promise<T> {
    const key = `${scope.prefix}${type}/${name.toLowerCase()}/${version.toLowerCase()}`;
    const { metrics } = this.options;
    if (scope.mayHit) {
      const hit = this.cache.fresh<unknown>(key);
      metrics?.countCacheLookup('keyvault_value', hit !== undefined);
      if (hit) return codec.decode(hit);
    }
    try {
      const value = await read();
      // A pinned version cannot change, so it keeps the whole TTL; the latest version is refreshed a little earlier,
      // at a random point. Neither is kept past the TTL: the identity's permission can change at any time.
      const pinned = version !== '';
      const fresh = pinned ? scope.ttlMs : scope.ttlMs * (JITTER_FLOOR + (1 - JITTER_FLOOR) * this.random());
      this.cache.store(key, codec.encode(value), fresh, this.options.staleGraceMs);
      return value;
    } catch (err) {
      const failure = fetchErrorClass(err, signal);
      if (REFUSED.has(failure)) {
        this.cache.delete(key);
        // The identity itself was refused: nothing it read before may be served any more.
        if (failure === 'unauthenticated') this.cache.deletePrefix(`${scope.identity}#`);
      } else if (STALE_OK.has(failure) && scope.mayHit && this.options.staleGraceMs > 0 && !signal.aborted) {
        const stale = this.cache.stale<unknown>(key);
        if (stale) {
          metrics?.countValueCacheStale?.();
          this.warnStale(scope, type, name, stale.ageMs, failure);
          return codec.decode(stale.value);
        }
      }
      throw err;
    }
  }

  private ttlOf(spec: MountSpec): number {
    return Math.min(spec.cacheTtlMs ?? 0, this.options.maxTtlMs);
  }

  /** Which object and why, never its value; at most one line per vault and object per STALE_LOG_INTERVAL_MS. */
  private warnStale(scope: ReaderScope, type: ObjectType, name: string, ageMs: number, failure: string): void {
    const object = `${scope.spec.vaultName.toLowerCase()}/${type}/${name.toLowerCase()}`;
    const now = this.now();
    const last = this.staleLogged.get(object);
    if (last && now - last.loggedAt < STALE_LOG_INTERVAL_MS) {
      last.unlogged++;
      return;
    }
    this.staleLogged.set(object, { loggedAt: now, unlogged: 0 });
    this.options.logger.warn(
      {
        pod: scope.spec.pod.name,
        namespace: scope.spec.pod.namespace,
        secretProviderClass: scope.spec.secretProviderClass,
        vault: scope.spec.vaultName,
        object: `${type}/${name}`,
        ageSeconds: Math.round(ageMs / 1000),
        failure,
        ...(last ? { alsoServedStaleSinceLastLine: last.unlogged } : {}),
      },
      'Key Vault could not serve the object: serving the answer this identity last read (within --keyvault-cache-stale-grace; ' +
        `one line per object per ${STALE_LOG_INTERVAL_MS / 1000}s, every one counted in csi_provider_azure_keyvault_cache_stale_served_total)`,
    );
  }
}

/**
 * The volume a mount is for: its pod's uid and its target path ('' without a uid: then every mount counts as a first).
 * Not the class name: v1.5's rotation reconciler leaves the secretProviderClass attribute out of its mounts. Hashed, so
 * an entry is small and the same size whatever the driver sent.
 */
function podKey(spec: MountSpec): string {
  if (!spec.pod.uid) return '';
  return createHash('sha256').update(spec.pod.uid).update('\0').update(spec.targetPath ?? '').digest('base64url');
}

interface ReaderScope {
  identity: string;
  prefix: string;
  ttlMs: number;
  mayHit: boolean;
  spec: MountSpec;
}

/** How one kind of answer is kept: its material copied into Buffers, and copied out again for each mount. */
interface Codec<T> {
  encode(value: T): StoredValue<unknown>;
  decode(stored: StoredValue<unknown>): T;
}

/**
 * A version's tags and attributes travel with its answer, so a hit writes the same writeTags and writeAttributes files
 * as a read. Tags are the user's data like the value: kept as JSON in a Buffer (zeroed with the entry), never logged.
 */
interface StoredMetadata {
  /** Index of the tags' JSON among the entry's buffers. */
  tags: number;
  enabled: boolean | undefined;
  times: Array<number | undefined>;
}

const TIMES = ['createdOn', 'updatedOn', 'expiresOn', 'notBefore'] as const;

function encodeMetadata(metadata: ObjectMetadata | undefined, buffers: Buffer[]): StoredMetadata | undefined {
  if (!metadata) return undefined;
  buffers.push(Buffer.from(JSON.stringify(metadata.tags), 'utf8'));
  return { tags: buffers.length - 1, enabled: metadata.enabled, times: TIMES.map((t) => metadata[t]?.getTime()) };
}

/** A fresh copy for each mount: nothing a mount does to what it got can change the stored answer. */
function decodeMetadata(stored: StoredMetadata | undefined, buffers: Buffer[]): ObjectMetadata | undefined {
  if (!stored) return undefined;
  const date = (t: number | undefined): Date | undefined => (t === undefined ? undefined : new Date(t));
  const [createdOn, updatedOn, expiresOn, notBefore] = stored.times.map(date);
  return {
    tags: JSON.parse(buffers[stored.tags]!.toString('utf8')) as Record<string, string>,
    enabled: stored.enabled,
    createdOn,
    updatedOn,
    expiresOn,
    notBefore,
  };
}

/** Spreads `metadata` into a fetched answer only when the read had it (the optional field stays absent otherwise). */
function withMetadata<T extends object>(answer: T, metadata: ObjectMetadata | undefined): T & { metadata?: ObjectMetadata } {
  return metadata ? { ...answer, metadata } : answer;
}

interface SecretMeta {
  version: string;
  contentType: string | undefined;
  certificateKeyId: string | undefined;
  metadata: StoredMetadata | undefined;
}

const SECRET_CODEC: Codec<FetchedSecret> = {
  encode: ({ value, version, contentType, certificateKeyId, metadata }) => {
    const buffers = [Buffer.from(value, 'utf8')];
    const meta: SecretMeta = { version, contentType, certificateKeyId, metadata: encodeMetadata(metadata, buffers) };
    return { buffers, meta };
  },
  decode: (stored) => {
    const { version, contentType, certificateKeyId, metadata } = stored.meta as SecretMeta;
    const secret: FetchedSecret = { value: stored.buffers[0]!.toString('utf8'), version, contentType, certificateKeyId };
    return withMetadata(secret, decodeMetadata(metadata, stored.buffers));
  },
};

interface CertificateMeta {
  version: string;
  metadata: StoredMetadata | undefined;
}

const CERTIFICATE_CODEC: Codec<FetchedCertificate> = {
  encode: ({ cer, version, metadata }) => {
    const buffers = [Buffer.from(cer)];
    const meta: CertificateMeta = { version, metadata: encodeMetadata(metadata, buffers) };
    return { buffers, meta };
  },
  decode: (stored) => {
    const { version, metadata } = stored.meta as CertificateMeta;
    return withMetadata({ cer: new Uint8Array(stored.buffers[0]!), version }, decodeMetadata(metadata, stored.buffers));
  },
};

const JWK_PARTS = ['n', 'e', 'x', 'y'] as const;

interface KeyMeta {
  version: string;
  kty: string | undefined;
  crv: string | undefined;
  present: boolean[];
  metadata: StoredMetadata | undefined;
}

const KEY_CODEC: Codec<FetchedKey> = {
  encode: ({ jwk, version, metadata }) => {
    const buffers = JWK_PARTS.map((part) => (jwk[part] ? Buffer.from(jwk[part]) : Buffer.alloc(0)));
    const meta: KeyMeta = {
      version,
      kty: jwk.kty,
      crv: jwk.crv,
      present: JWK_PARTS.map((part) => jwk[part] !== undefined),
      metadata: encodeMetadata(metadata, buffers),
    };
    return { buffers, meta };
  },
  decode: (stored) => {
    const meta = stored.meta as KeyMeta;
    const jwk: FetchedKey['jwk'] = {};
    if (meta.kty !== undefined) jwk.kty = meta.kty;
    if (meta.crv !== undefined) jwk.crv = meta.crv;
    JWK_PARTS.forEach((part, i) => {
      if (meta.present[i]) jwk[part] = new Uint8Array(stored.buffers[i]!);
    });
    return withMetadata({ jwk, version: meta.version }, decodeMetadata(meta.metadata, stored.buffers));
  },
};

class CachingReader implements VaultReader {
  readonly vaultName: string;

  constructor(
    private readonly reader: VaultReader,
    private readonly access: CachingVaultAccess,
    private readonly scope: ReaderScope,
  ) {
    this.vaultName = reader.vaultName;
  }

  getSecret(name: string, version: string, signal: AbortSignal): Promise<FetchedSecret> {
    return this.access.through(this.scope, 'secret', name, version, signal, () => this.reader.getSecret(name, version, signal), SECRET_CODEC);
  }

  getKey(name: string, version: string, signal: AbortSignal): Promise<FetchedKey> {
    return this.access.through(this.scope, 'key', name, version, signal, () => this.reader.getKey(name, version, signal), KEY_CODEC);
  }

  getCertificate(name: string, version: string, signal: AbortSignal): Promise<FetchedCertificate> {
    return this.access.through(this.scope, 'cert', name, version, signal, () => this.reader.getCertificate(name, version, signal), CERTIFICATE_CODEC);
  }

  /**
   * Listings are not cached: they decide which versions a history mount reads and which secrets a selection mounts
   * (a secret added, removed or retagged shows at the next mount, as without the cache); each value is cached itself.
   */
  listVersions(type: ObjectType, name: string, signal: AbortSignal): Promise<ListedVersion[]> {
    return this.reader.listVersions(type, name, signal);
  }

  listSecrets(signal: AbortSignal): Promise<ListedSecret[]> {
    return this.reader.listSecrets(signal);
  }
}
