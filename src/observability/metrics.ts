/**
 * What the provider measures, as an interface: the code that does the work records through it, and the Prometheus
 * implementation (served on --prometheus-port) or a no-op stands behind it. Label values are always from small fixed
 * sets — never secret names, pod names or error texts — so cardinality stays bounded on a node with many pods.
 */
import type { IdentitySpec } from '../spec/types';

/** Outcome class of a call to Azure: 'success', or a coarse failure class. */
export type Outcome = 'success' | 'not_found' | 'forbidden' | 'unauthenticated' | 'throttled' | 'server_error' | 'network' | 'cancelled' | 'other';

/** The identity modes a SecretProviderClass can choose, spelled as the `mode` label is. */
export type IdentityMode = IdentitySpec['mode'];

/** Spelled as SecretProviderClass objectType is, the values of the reference's object_type label. */
export type KeyVaultObjectType = 'secret' | 'key' | 'cert';

/** The `error` label of keyvault_request: empty on success (as the reference's), else the failure's class. */
export type FetchError = '' | Exclude<Outcome, 'success'>;

/** Caches whose hit rate an operator may want to see. */
export type CacheName = 'credential' | 'vault_client' | 'inflight_request' | 'keyvault_value';

export interface ProviderMetrics {
  /** One completed RPC (Mount, Version, Health Check); `method` is the full gRPC method, `code` grpc-go's code name. */
  observeGrpcRequest(method: string, durationSeconds: number, code: string): void;
  mountStarted(): void;
  mountFinished(): void;
  /** One object read from Key Vault (a get or a version listing), retries and the auth challenge included. */
  observeObjectFetch(objectType: KeyVaultObjectType, error: FetchError, durationSeconds: number): void;
  /** One HTTP request to Key Vault: each retry counts; an authentication challenge is counted apart (below). */
  observeKeyVaultRequest(objectType: KeyVaultObjectType, outcome: Outcome, durationSeconds: number): void;
  /**
   * Key Vault answered a request sent without a token with its authentication challenge (401 + WWW-Authenticate), as
   * it does for the first request of every new client: the normal start of a conversation, not a failure.
   */
  countKeyVaultChallenge(objectType: KeyVaultObjectType): void;
  /** One token acquisition from IMDS, Entra ID, the NMI or the token proxy (not a cache hit). */
  countTokenRequest(mode: IdentityMode, outcome: Outcome): void;
  countCacheLookup(cache: CacheName, hit: boolean): void;
  /** Key Vault rejected a cached token (401 after its challenge): the token was dropped and a fresh one asked for. */
  countTokenRejection(mode: IdentityMode): void;
  /** An object marked optional that Key Vault answered 404 for, left out of its mount. */
  countOptionalObjectSkipped(objectType: KeyVaultObjectType): void;
  /** Entries now held by a process-wide cache (credentials, vault clients). */
  setCacheEntries(cache: Exclude<CacheName, 'inflight_request'>, entries: number): void;
  /** The Key Vault value cache dropped an entry for room. */
  countValueCacheEviction?(): void;
  /** The Key Vault value cache served an answer past its TTL because Key Vault throttled or failed. */
  countValueCacheStale?(): void;
  /** Bytes the Key Vault value cache holds (estimated). */
  setValueCacheBytes?(bytes: number): void;
}

export const noopMetrics: ProviderMetrics = {
  observeGrpcRequest: () => undefined,
  mountStarted: () => undefined,
  mountFinished: () => undefined,
  observeObjectFetch: () => undefined,
  observeKeyVaultRequest: () => undefined,
  countKeyVaultChallenge: () => undefined,
  countTokenRequest: () => undefined,
  countCacheLookup: () => undefined,
  countTokenRejection: () => undefined,
  countOptionalObjectSkipped: () => undefined,
  setCacheEntries: () => undefined,
};
