/**
 * ProviderMetrics on prom-client, in a registry of its own (never prom-client's global one, so two instances in one
 * process — tests — cannot collide).
 *
 * Names: the two histograms the reference provider exports keep its names, meaning and bucket edges, so dashboards and
 * alerts built for it keep working: `grpc_request{grpc_method, grpc_code}` for every RPC,
 * `keyvault_request{object_type, error}` once per object fetch (retries and the auth challenge inside it; error "" on
 * success), in seconds, with its constant labels `provider` and `os_type`. The labels that made its series unbounded
 * (object_name, grpc_message, the error text) are gone; `error` takes a small fixed set of classes instead. What the
 * reference does not measure is namespaced `csi_provider_azure_*` (HTTP requests to Key Vault with each retry, Key
 * Vault's authentication challenges apart from them, tokens, caches, mounts in flight).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { CacheName, FetchError, IdentityMode, KeyVaultObjectType, Outcome, ProviderMetrics } from './metrics';

/** The reference's bucket edges (seconds) for both histograms, so `le` selectors and quantiles carry over. */
export const REFERENCE_BUCKETS = [0.1, 0.2, 0.3, 0.4, 0.5, 1, 1.5, 2, 2.5, 3, 5, 10, 15, 30];

/** The RPCs served, spelled as the reference's `grpc_method` label; anything else is folded into one value. */
const GRPC_METHODS = new Set([
  '/v1alpha1.CSIDriverProvider/Mount',
  '/v1alpha1.CSIDriverProvider/Version',
  '/grpc.health.v1.Health/Check',
  '/grpc.health.v1.Health/Watch',
]);

/** gRPC code names as grpc-go prints them ("Canceled", one l), the values the reference's grpc_code label takes. */
const GRPC_CODE_NAMES = new Set([
  'OK',
  'Canceled',
  'Unknown',
  'InvalidArgument',
  'DeadlineExceeded',
  'NotFound',
  'AlreadyExists',
  'PermissionDenied',
  'ResourceExhausted',
  'FailedPrecondition',
  'Aborted',
  'OutOfRange',
  'Unimplemented',
  'Internal',
  'Unavailable',
  'DataLoss',
  'Unauthenticated',
]);

export interface PrometheusMetricsOptions {
  /** 'linux' or 'windows', the reference's os_type label. */
  osType?: string;
  /** Collect prom-client's process and Node.js runtime metrics (CPU, memory, event loop, GC). Default true. */
  processMetrics?: boolean;
  /** The Key Vault value cache is on: its series are exposed (with it off, /metrics is as without the cache). */
  valueCache?: boolean;
}

export class PrometheusMetrics implements ProviderMetrics {
  readonly registry = new Registry();
  private readonly grpcDuration: Histogram<'grpc_method' | 'grpc_code'>;
  private readonly mountsInFlight: Gauge;
  private readonly fetchDuration: Histogram<'object_type' | 'error'>;
  private readonly keyVaultRequests: Counter<'object_type' | 'outcome'>;
  private readonly keyVaultChallenges: Counter<'object_type'>;
  private readonly tokenRequests: Counter<'identity_mode' | 'outcome'>;
  private readonly cacheLookups: Counter<'cache' | 'result'>;
  private readonly tokenRejections: Counter<'identity_mode'>;
  private readonly cacheEntries: Gauge<'cache'>;
  private readonly valueCacheEvictions: Counter | undefined;
  private readonly valueCacheStale: Counter | undefined;
  private readonly valueCacheBytes: Gauge | undefined;
  private readonly optionalSkipped: Counter<'object_type'>;

  constructor(options: PrometheusMetricsOptions = {}) {
    const osType = options.osType ?? (process.platform === 'win32' ? 'windows' : 'linux');
    this.registry.setDefaultLabels({ provider: 'azure', os_type: osType });
    const registers = [this.registry];

    this.grpcDuration = new Histogram({
      name: 'grpc_request',
      help: 'Distribution of how long the gRPC requests from the CSI driver took, in seconds, by method and status code',
      labelNames: ['grpc_method', 'grpc_code'],
      buckets: REFERENCE_BUCKETS,
      registers,
    });
    this.mountsInFlight = new Gauge({
      name: 'csi_provider_azure_mounts_in_flight',
      help: 'Mount calls being served right now',
      registers,
    });
    this.fetchDuration = new Histogram({
      name: 'keyvault_request',
      help: 'Distribution of how long getting an object from Key Vault took, in seconds (retries included), by object type and error class ("" = success)',
      labelNames: ['object_type', 'error'],
      buckets: REFERENCE_BUCKETS,
      registers,
    });
    this.keyVaultRequests = new Counter({
      name: 'csi_provider_azure_keyvault_http_requests_total',
      help: 'HTTP requests to Key Vault, each retry counted, by object type and outcome class (authentication challenges are counted apart)',
      labelNames: ['object_type', 'outcome'],
      registers,
    });
    this.keyVaultChallenges = new Counter({
      name: 'csi_provider_azure_keyvault_auth_challenges_total',
      help: "Key Vault's authentication challenges (401 to a request sent without a token, as the first request of every new client gets), by object type; not failures",
      labelNames: ['object_type'],
      registers,
    });
    this.tokenRequests = new Counter({
      name: 'csi_provider_azure_token_requests_total',
      help: 'Token acquisitions from IMDS, Entra ID, the pod identity NMI or the token proxy (cache hits excluded)',
      labelNames: ['identity_mode', 'outcome'],
      registers,
    });
    this.cacheLookups = new Counter({
      name: 'csi_provider_azure_cache_lookups_total',
      help: 'Lookups in the provider caches (credentials, vault clients, shared in-flight requests), by hit or miss',
      labelNames: ['cache', 'result'],
      registers,
    });
    this.tokenRejections = new Counter({
      name: 'csi_provider_azure_token_rejections_total',
      help: 'Cached tokens Key Vault rejected (401 after its challenge); each was dropped and a fresh token asked for once',
      labelNames: ['identity_mode'],
      registers,
    });
    this.cacheEntries = new Gauge({
      name: 'csi_provider_azure_cache_entries',
      help: 'Entries held by the process-wide caches (credentials, vault clients)',
      labelNames: ['cache'],
      registers,
    });
    if (options.valueCache) {
      this.valueCacheEvictions = new Counter({
        name: 'csi_provider_azure_keyvault_cache_evictions_total',
        help: 'Entries the Key Vault value cache dropped to stay within its entry and byte bounds',
        registers,
      });
      this.valueCacheStale = new Counter({
        name: 'csi_provider_azure_keyvault_cache_stale_served_total',
        help: 'Answers served past their TTL (within the stale grace) because Key Vault throttled, failed or was unreachable',
        registers,
      });
      this.valueCacheBytes = new Gauge({
        name: 'csi_provider_azure_keyvault_cache_bytes',
        help: 'Bytes held by the Key Vault value cache (estimated)',
        registers,
      });
    }
    this.optionalSkipped = new Counter({
      name: 'csi_provider_azure_optional_objects_skipped_total',
      help: 'Objects marked optional that Key Vault answered 404 for, left out of their mount, by object type',
      labelNames: ['object_type'],
      registers,
    });
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry });
  }

  observeGrpcRequest(method: string, durationSeconds: number, code: string): void {
    // Both come from our own server; anything else is folded into one value rather than becoming a new series.
    const grpcCode = GRPC_CODE_NAMES.has(code) ? code : 'Unknown';
    this.grpcDuration.observe({ grpc_method: GRPC_METHODS.has(method) ? method : 'other', grpc_code: grpcCode }, durationSeconds);
  }

  mountStarted(): void {
    this.mountsInFlight.inc();
  }

  mountFinished(): void {
    this.mountsInFlight.dec();
  }

  observeObjectFetch(objectType: KeyVaultObjectType, error: FetchError, durationSeconds: number): void {
    this.fetchDuration.observe({ object_type: objectType, error }, durationSeconds);
  }

  observeKeyVaultRequest(objectType: KeyVaultObjectType, outcome: Outcome, _durationSeconds: number): void {
    this.keyVaultRequests.inc({ object_type: objectType, outcome });
  }

  countKeyVaultChallenge(objectType: KeyVaultObjectType): void {
    this.keyVaultChallenges.inc({ object_type: objectType });
  }

  countTokenRequest(mode: IdentityMode, outcome: Outcome): void {
    this.tokenRequests.inc({ identity_mode: mode, outcome });
  }

  countCacheLookup(cache: CacheName, hit: boolean): void {
    this.cacheLookups.inc({ cache, result: hit ? 'hit' : 'miss' });
  }

  countTokenRejection(mode: IdentityMode): void {
    this.tokenRejections.inc({ identity_mode: mode });
  }

  countOptionalObjectSkipped(objectType: KeyVaultObjectType): void {
    this.optionalSkipped.inc({ object_type: objectType });
  }

  setCacheEntries(cache: Exclude<CacheName, 'inflight_request'>, entries: number): void {
    this.cacheEntries.set({ cache }, entries);
  }

  countValueCacheEviction(): void {
    this.valueCacheEvictions?.inc();
  }

  countValueCacheStale(): void {
    this.valueCacheStale?.inc();
  }

  setValueCacheBytes(bytes: number): void {
    this.valueCacheBytes?.set(bytes);
  }

  /** The exposition text and its content type, for the /metrics endpoint. */
  async expose(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
