import type { TokenCredential } from '@azure/core-auth';
import { ProviderError } from '../errors';
import { tokenEndpointOf, type CredentialCache } from '../identity/credentials';
import type { VaultAccess, VaultReader } from '../spec/ports';
import type { MountSpec } from '../spec/types';
import type { ProviderMetrics } from '../observability/metrics';
import { BoundedCache } from '../util/bounded-cache';
import { readCloudEnvironmentFile, type CloudFilePolicy } from './cloud-file';
import { AZURE_STACK_CLOUD, knownCloud, vaultUrl, type Cloud } from '../spec/clouds';
import type { KeyVaultConnections } from './connections';
import { meteredReader } from './metered-reader';
import { KeyVaultReader } from './reader';
import { RateLimitedGate } from './rate-limited-gate';
import { VaultGate } from './vault-gate';

export interface VaultAccessOptions {
  userAgentPrefix: string;
  /** Distinct (vault, identity) pairs kept warm; beyond this the least recently used is dropped. */
  maxReaders?: number;
  /** Reader cache lookups are recorded here, and the readers record every Key Vault request. */
  metrics?: ProviderMetrics;
  /** The process's keep-alive connections to Key Vault. */
  connections: KeyVaultConnections;
  /** Requests in flight at once per vault, across all mounts and identities. */
  maxRequestsPerVault: number;
  /** Requests sent per second to one vault from this node, across all mounts and identities; 0 or absent = no bound. */
  requestsPerSecondPerVault?: number;
  /** Where (and how much of) the custom cloud files that SecretProviderClasses name may be read. */
  cloudFiles: CloudFilePolicy;
}

/** Resolves a mount to a reader for its (vault, identity), reusing readers across mounts. */
export class AzureVaultAccess implements VaultAccess {
  private readonly readers: BoundedCache<string, { reader: VaultReader; credential: TokenCredential }>;
  /**
   * One gate per vault URL, whatever the identity. Bounded like the readers; a gate dropped while in use only lets a
   * new one admit its own share for a while, and a node rarely reads from more than a handful of vaults.
   */
  private readonly gates: BoundedCache<string, VaultGate>;

  constructor(
    private readonly credentials: CredentialCache,
    private readonly options: VaultAccessOptions,
  ) {
    this.readers = new BoundedCache(options.maxReaders ?? 500);
    this.gates = new BoundedCache(options.maxReaders ?? 500);
    // A refused identity leaves no reader (SDK clients, pipelines) behind either.
    credentials.onDropped = (credentialKey) => {
      this.readers.deleteWhere((key) => key.endsWith(`|${credentialKey}`));
      options.metrics?.setCacheEntries('vault_client', this.readers.size);
    };
  }

  async open(spec: MountSpec): Promise<VaultReader> {
    const cloud = await this.cloudOf(spec);
    const url = vaultUrl(spec.vaultName, cloud);
    const resolved = this.credentials.resolve(spec.identity, cloud, spec.tenantId);
    // The credential key names the identity, so two identities never share a reader (nor its cached token).
    const key = `${url}|${resolved.key}`;
    const existing = this.readers.get(key);
    // A rebuilt credential (its cache entry expired) gets a new reader: a reader must not outlive its credential.
    const hit = existing !== undefined && existing.credential === resolved.credential;
    this.options.metrics?.countCacheLookup('vault_client', hit);
    if (hit) return existing.reader;
    const { userAgentPrefix, metrics, connections, maxRequestsPerVault } = this.options;
    const sdkReader = new KeyVaultReader(spec.vaultName, url, resolved.credential, resolved.description, {
      userAgentPrefix,
      agent: connections.agentFor(url),
      ...(connections.intermediaryFor(url) ? { intermediary: connections.intermediaryFor(url)! } : {}),
      gate: this.gates.getOrCreate(url, () => {
        const rate = this.options.requestsPerSecondPerVault ?? 0;
        return rate > 0 ? new RateLimitedGate(maxRequestsPerVault, rate) : new VaultGate(maxRequestsPerVault);
      }),
      mode: resolved.mode,
      tokenEndpoint: tokenEndpointOf(resolved.mode),
      ...(metrics ? { metrics } : {}),
    });
    // keyvault_request: once per object read, as the reference counts it (the HTTP requests are counted inside).
    const reader = metrics ? meteredReader(sdkReader, metrics) : sdkReader;
    this.readers.set(key, { reader, credential: resolved.credential });
    metrics?.setCacheEntries('vault_client', this.readers.size);
    return reader;
  }

  /** The cloud a mount names: a known one, or AzureStackCloud's file (read under the operator's policy). */
  async cloudOf(spec: MountSpec): Promise<Cloud> {
    const cloud = knownCloud(spec.cloudName);
    if (cloud) return cloud;
    if (spec.cloudName === AZURE_STACK_CLOUD) return readCloudEnvironmentFile(spec.cloudEnvFileName, this.options.cloudFiles);
    throw new ProviderError('InvalidArgument', `cloudName "${spec.cloudName}" is not a known cloud`);
  }
}
