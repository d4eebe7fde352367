/**
 * What the provider measures, as an interface: the code that does the work records through it, and the Prometheus
 * implementation (served on --prometheus-port) or a no-op stands behind it. Label values are always from small fixed
 * sets — never secret names, pod names or error texts — so cardinality stays bounded on a node with many pods.
 */

/** Outcome class of a call to Azure: 'success', or a coarse failure class. */
export type Outcome = 'success' | 'not_found' | 'forbidden' | 'unauthenticated' | 'throttled' | 'server_error' | 'network' | 'cancelled' | 'other';

export type IdentityMode = 'vmManagedIdentity' | 'workloadIdentity' | 'servicePrincipal' | 'podIdentity' | 'tokenProxy';

export type KeyVaultObjectType = 'secret' | 'key' | 'certificate';

/** Caches whose hit rate an operator may want to see. */
export type CacheName = 'credential' | 'vault_client' | 'inflight_request';

export interface ProviderMetrics {
  /** One completed Mount RPC; `code` is the gRPC status name ('OK', 'NotFound', ...). */
  observeMount(durationSeconds: number, code: string): void;
  mountStarted(): void;
  mountFinished(): void;
  /** One HTTP request to Key Vault (each retry counts). */
  observeKeyVaultRequest(objectType: KeyVaultObjectType, outcome: Outcome, durationSeconds: number): void;
  /** One token acquisition from IMDS, Entra ID, the NMI or the token proxy (not a cache hit). */
  countTokenRequest(mode: IdentityMode, outcome: Outcome): void;
  countCacheLookup(cache: CacheName, hit: boolean): void;
  /** Key Vault rejected a cached token (401 after its challenge): the token was dropped and a fresh one asked for. */
  countTokenRejection(mode: IdentityMode): void;
  /** Entries now held by a process-wide cache (credentials, vault clients). */
  setCacheEntries(cache: Exclude<CacheName, 'inflight_request'>, entries: number): void;
}

export const noopMetrics: ProviderMetrics = {
  observeMount: () => undefined,
  mountStarted: () => undefined,
  mountFinished: () => undefined,
  observeKeyVaultRequest: () => undefined,
  countTokenRequest: () => undefined,
  countCacheLookup: () => undefined,
  countTokenRejection: () => undefined,
  setCacheEntries: () => undefined,
};
