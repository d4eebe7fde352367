/**
 * ProviderMetrics on prom-client, in a registry of its own (never prom-client's global one, so two instances in one
 * process — tests — cannot collide).
 *
 * Names: the two histograms the reference provider exports keep its names (`grpc_request`, `keyvault_request`, in
 * seconds) and its constant labels `provider` and `os_type`, so dashboards built for it keep working; the labels that
 * made its series unbounded (object_name, grpc_message, error text) are gone, replaced by fixed outcome classes. What
 * the reference does not measure is namespaced `csi_provider_azure_*`.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { CacheName, IdentityMode, KeyVaultObjectType, Outcome, ProviderMetrics } from './metrics';

/** A mount is milliseconds when everything is warm and can take minutes when IMDS or Key Vault retries. */
const MOUNT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];
/** One Key Vault request: a few ms in region, seconds when throttled or retried across a slow network. */
const KEY_VAULT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** The gRPC method the mount histogram describes, spelled as the reference's `grpc_method` label spells it. */
const MOUNT_METHOD = '/v1alpha1.CSIDriverProvider/Mount';

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
}

export class PrometheusMetrics implements ProviderMetrics {
  readonly registry = new Registry();
  private readonly mountDuration: Histogram<'grpc_method' | 'grpc_code' | 'result'>;
  private readonly mountsInFlight: Gauge;
  private readonly keyVaultDuration: Histogram<'object_type' | 'outcome'>;
  private readonly tokenRequests: Counter<'identity_mode' | 'outcome'>;
  private readonly cacheLookups: Counter<'cache' | 'result'>;
  private readonly tokenRejections: Counter<'identity_mode'>;
  private readonly cacheEntries: Gauge<'cache'>;

  constructor(options: PrometheusMetricsOptions = {}) {
    const osType = options.osType ?? (process.platform === 'win32' ? 'windows' : 'linux');
    this.registry.setDefaultLabels({ provider: 'azure', os_type: osType });
    const registers = [this.registry];

    this.mountDuration = new Histogram({
      name: 'grpc_request',
      help: 'Duration of Mount calls from the CSI driver in seconds, by gRPC status code',
      labelNames: ['grpc_method', 'grpc_code', 'result'],
      buckets: MOUNT_BUCKETS,
      registers,
    });
    this.mountsInFlight = new Gauge({
      name: 'csi_provider_azure_mounts_in_flight',
      help: 'Mount calls being served right now',
      registers,
    });
    this.keyVaultDuration = new Histogram({
      name: 'keyvault_request',
      help: 'Duration of HTTP requests to Key Vault in seconds (each retry counts), by object type and outcome',
      labelNames: ['object_type', 'outcome'],
      buckets: KEY_VAULT_BUCKETS,
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
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry });
  }

  observeMount(durationSeconds: number, code: string): void {
    // The code comes from our own mapping; anything else is folded into one value rather than becoming a new series.
    const grpcCode = GRPC_CODE_NAMES.has(code) ? code : 'Unknown';
    this.mountDuration.observe(
      { grpc_method: MOUNT_METHOD, grpc_code: grpcCode, result: grpcCode === 'OK' ? 'success' : 'failure' },
      durationSeconds,
    );
  }

  mountStarted(): void {
    this.mountsInFlight.inc();
  }

  mountFinished(): void {
    this.mountsInFlight.dec();
  }

  observeKeyVaultRequest(objectType: KeyVaultObjectType, outcome: Outcome, durationSeconds: number): void {
    this.keyVaultDuration.observe({ object_type: objectType, outcome }, durationSeconds);
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

  setCacheEntries(cache: Exclude<CacheName, 'inflight_request'>, entries: number): void {
    this.cacheEntries.set({ cache }, entries);
  }

  /** The exposition text and its content type, for the /metrics endpoint. */
  async expose(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
