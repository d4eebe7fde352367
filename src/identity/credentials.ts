/**
 * Which credential a mount uses, and the process-wide cache of credentials keyed by identity. A cache entry is one
 * identity: its key holds everything that decides who the caller is (mode, authority, tenant, client id, and digests
 * of the client secret or of the presented service account token), and its token cache serves only that identity.
 * Reusing an entry reuses its tokens: a node that mounts the same identity's secrets a thousand times asks IMDS,
 * Entra ID, NMI or the token proxy once per token lifetime. A mount that presents another secret or another service
 * account token gets its own entry, and Azure decides about it afresh.
 */
import type { Agent } from 'node:http';
import type { TokenCredential } from '@azure/core-auth';
import type { Cloud } from '../spec/clouds';
import type { IdentitySpec } from '../spec/types';
import { noopMetrics, type IdentityMode, type ProviderMetrics } from '../observability/metrics';
import { BoundedCache } from '../util/bounded-cache';
import { CachingCredential } from './caching-credential';
import {
  createServicePrincipalCredential,
  createWorkloadIdentityCredential,
  serviceAccountOf,
  servicePrincipalKey,
  workloadIdentityKey,
} from './entra-credentials';
import {
  createManagedIdentityCredential,
  describeManagedIdentity,
  managedIdentityKey,
  type AmbientWorkloadIdentity,
} from './managed-identity';
import { IMDS_NAME } from './imds-credential';
import { describePodIdentity, podIdentityKey, PodIdentityCredential } from './pod-identity';
import { translateEntraError, type TokenErrorContext } from './token-errors';
import { createTokenProxyCredential, tokenProxyKey, TokenProxyTransport, type TokenProxyConfig } from './token-proxy';
import { TransportErrorRecorder } from './transport-errors';

/** A credential for one caller identity, with the key that identifies it and words for messages. */
export interface ResolvedCredential {
  /** Everything that decides who the caller is; two mounts share a credential (and its tokens) only if keys match. */
  key: string;
  /** "the node's system-assigned managed identity", for messages. Never contains a secret. */
  description: string;
  mode: IdentityMode;
  credential: TokenCredential;
}

/** Who issues tokens in each mode, for messages about a token that did not come. */
export function tokenEndpointOf(mode: IdentityMode): string {
  switch (mode) {
    case 'vmManagedIdentity':
      return IMDS_NAME;
    case 'servicePrincipal':
    case 'workloadIdentity':
      return "the cloud's token service (Entra ID)";
    case 'podIdentity':
      return 'NMI (aad-pod-identity)';
    case 'tokenProxy':
      return 'the token proxy (identity binding)';
  }
}

export interface CredentialOptions {
  userAgentPrefix: string;
  /** Distinct identities kept; beyond this the least recently used is dropped. Default 1000. */
  maxEntries?: number;
  /** Estimated memory the cached identities may hold together; default CREDENTIAL_CACHE_MAX_BYTES. */
  maxMemoryBytes?: number;
  /** An entry is rebuilt after this long (default 24 h); workload identity entries end with their token's expiry. */
  maxAgeMs?: number;
  /** Token acquisitions and credential cache lookups are recorded here. */
  metrics?: ProviderMetrics;
  /** Identity binding: --token-proxy-url, --sni-name and where to find the cluster's CA. */
  tokenProxy?: TokenProxyConfig;
  /** Which workload identity variables the provider's own environment has (see managed-identity.ts). */
  ambientWorkloadIdentity?: AmbientWorkloadIdentity;
  /** IMDS's origin (AZURE_POD_IDENTITY_AUTHORITY_HOST); the well-known address when absent. */
  imdsEndpoint?: string;
  /** The process's shared keep-alive connections (and proxy tunnels) for Entra ID, by URL. */
  agentFor?: (url: string) => Agent;
}

interface Entry {
  resolved: ResolvedCredential;
  /** ms since the epoch after which the entry must not be used. */
  notAfter: number;
}

const DEFAULT_MAX_AGE_MS = 24 * 3600_000;
/**
 * A managed identity token is re-checked with IMDS after this long although it is valid for 24 h: IMDS answers from
 * its own cache in milliseconds, and an identity removed from the node pool then stops mounting within this bound.
 */
export const MANAGED_IDENTITY_RECHECK_MS = 5 * 60_000;

/**
 * Estimated memory one cached identity keeps alive (measured on Node 20 with the SDK versions in the lockfile): an
 * identity that asks Entra ID holds an MSAL client and its HTTP pipeline, and its vault reader the Key Vault SDK
 * clients; a managed or pod identity holds little beyond its tokens and reader.
 */
const ENTRY_BYTES: Record<IdentityMode, number> = {
  vmManagedIdentity: 16 * 1024,
  podIdentity: 16 * 1024,
  servicePrincipal: 96 * 1024,
  workloadIdentity: 96 * 1024,
  tokenProxy: 96 * 1024,
};
/**
 * What the cached identities may hold together: about 340 Entra ID identities (a node runs at most 250 pods, each
 * workload identity pod presenting its own token), well inside the chart's memory limit whatever the churn.
 */
export const CREDENTIAL_CACHE_MAX_BYTES = 32 * 1024 * 1024;

export class CredentialCache {
  private readonly cache: BoundedCache<string, Entry>;
  private readonly metrics: ProviderMetrics;
  private readonly maxAgeMs: number;
  private tokenProxy: TokenProxyTransport | undefined;
  /** Told when an identity is forgotten because its token endpoint refused it (the vault readers drop theirs). */
  onDropped: ((key: string) => void) | undefined;

  constructor(private readonly options: CredentialOptions) {
    this.cache = new BoundedCache<string, Entry>(options.maxEntries ?? 1000, Number.POSITIVE_INFINITY, Date.now, {
      maxWeight: options.maxMemoryBytes ?? CREDENTIAL_CACHE_MAX_BYTES,
      weigh: (entry) => ENTRY_BYTES[entry.resolved.mode],
    });
    // An identity dropped for room takes its vault readers with it.
    this.cache.onEvict = (key) => {
      this.metrics.setCacheEntries('credential', this.cache.size);
      this.onDropped?.(key);
    };
    this.metrics = options.metrics ?? noopMetrics;
    this.maxAgeMs = options.maxAgeMs ?? DEFAULT_MAX_AGE_MS;
  }

  /** Number of identities currently cached. */
  get size(): number {
    return this.cache.size;
  }

  resolve(identity: IdentitySpec, cloud: Cloud, tenantId: string): ResolvedCredential {
    const { key, notAfter } = this.keyOf(identity, cloud, tenantId);
    const now = Date.now();
    const existing = this.cache.get(key);
    if (existing && existing.notAfter > now) {
      this.metrics.countCacheLookup('credential', true);
      return existing.resolved;
    }
    this.metrics.countCacheLookup('credential', false);
    const resolved = this.create(key, identity, cloud, tenantId);
    this.cache.set(key, { resolved, notAfter: Math.min(now + this.maxAgeMs, notAfter) });
    this.metrics.setCacheEntries('credential', this.cache.size);
    return resolved;
  }

  /**
   * Forgets an identity the token service refused (wrong secret, unknown client, rejected assertion). Hostile or
   * careless variety (a thousand different wrong secrets) then costs nothing lasting: only identities that work stay.
   */
  private drop(key: string, resolved: ResolvedCredential): void {
    if (this.cache.get(key)?.resolved !== resolved) return;
    this.cache.delete(key);
    this.metrics.setCacheEntries('credential', this.cache.size);
    this.onDropped?.(key);
  }

  private keyOf(identity: IdentitySpec, cloud: Cloud, tenantId: string): { key: string; notAfter: number } {
    switch (identity.mode) {
      case 'vmManagedIdentity':
        return { key: managedIdentityKey(identity.userAssigned), notAfter: Infinity };
      case 'servicePrincipal':
        return { key: servicePrincipalKey(cloud, tenantId, identity.clientId, identity.clientSecret), notAfter: Infinity };
      case 'workloadIdentity':
        return {
          key: workloadIdentityKey(cloud, tenantId, identity.clientId, identity.serviceAccountToken),
          // The assertion cannot be used after it expires; tokens already issued with it stay in the entry until then.
          notAfter: identity.serviceAccountToken.expiresAt ?? Infinity,
        };
      case 'podIdentity':
        return { key: podIdentityKey(identity.pod), notAfter: Infinity };
      case 'tokenProxy':
        return {
          key: tokenProxyKey(this.transport(), cloud, tenantId, identity.clientId, identity.serviceAccountToken),
          notAfter: identity.serviceAccountToken.expiresAt ?? Infinity,
        };
    }
  }

  private create(key: string, identity: IdentitySpec, cloud: Cloud, tenantId: string): ResolvedCredential {
    const { userAgentPrefix } = this.options;
    let self: ResolvedCredential | undefined;
    const cached = (mode: IdentityMode, inner: TokenCredential, translate?: (err: unknown) => unknown): TokenCredential =>
      new CachingCredential(inner, {
        mode,
        metrics: this.metrics,
        ...(translate ? { translate } : {}),
        ...(mode === 'vmManagedIdentity' ? { maxTokenAgeMs: MANAGED_IDENTITY_RECHECK_MS } : {}),
        onRefused: () => self && this.drop(key, self),
      });
    const made = this.build(key, identity, cloud, tenantId, cached, userAgentPrefix);
    self = made;
    return made;
  }

  private build(
    key: string,
    identity: IdentitySpec,
    cloud: Cloud,
    tenantId: string,
    cached: (mode: IdentityMode, inner: TokenCredential, translate?: (err: unknown) => unknown) => TokenCredential,
    userAgentPrefix: string,
  ): ResolvedCredential {
    // Entra ID credentials share the process's connections and record their transport failures for messages.
    const entraOptions = (recorder: TransportErrorRecorder) => ({
      userAgentPrefix,
      ...(this.options.agentFor ? { agentFor: this.options.agentFor } : {}),
      additionalPolicies: [{ policy: recorder.policy, position: 'perRetry' as const }],
    });
    // Their failures are explained with what the recorder saw on the wire and what the mount sent (for redaction).
    const viaEntra = (inner: TokenCredential, recorder: TransportErrorRecorder, ctx: TokenErrorContext): ResolvedCredential => ({
      key,
      mode: ctx.mode,
      description: ctx.identity,
      credential: cached(ctx.mode, inner, (err) => translateEntraError(err, ctx, recorder.take())),
    });

    switch (identity.mode) {
      case 'vmManagedIdentity': {
        const inner = createManagedIdentityCredential(identity.userAssigned, userAgentPrefix, this.options.ambientWorkloadIdentity, this.options.imdsEndpoint);
        // ImdsCredential fails with TokenRequestErrors that name IMDS and the fix.
        return { key, mode: identity.mode, description: describeManagedIdentity(identity.userAssigned), credential: cached(identity.mode, inner) };
      }
      case 'servicePrincipal': {
        const description = `the service principal with client ID ${identity.clientId} (tenant ${tenantId})`;
        const recorder = new TransportErrorRecorder();
        const inner = createServicePrincipalCredential(cloud, tenantId, identity.clientId, identity.clientSecret, entraOptions(recorder));
        const ctx: TokenErrorContext = {
          mode: identity.mode,
          identity: description,
          clientId: identity.clientId,
          tenantId,
          authorityHost: cloud.authorityHost,
          sent: [identity.clientSecret],
        };
        return viaEntra(inner, recorder, ctx);
      }
      case 'workloadIdentity': {
        const serviceAccount = serviceAccountOf(identity.serviceAccountToken);
        const description = `the workload identity with client ID ${identity.clientId} (tenant ${tenantId}, service account ${serviceAccount})`;
        const recorder = new TransportErrorRecorder();
        const inner = createWorkloadIdentityCredential(cloud, tenantId, identity.clientId, identity.serviceAccountToken, entraOptions(recorder));
        const ctx: TokenErrorContext = {
          mode: identity.mode,
          identity: description,
          clientId: identity.clientId,
          tenantId,
          authorityHost: cloud.authorityHost,
          serviceAccount,
          sent: [identity.serviceAccountToken.token],
        };
        return viaEntra(inner, recorder, ctx);
      }
      case 'podIdentity': {
        const description = describePodIdentity(identity.pod);
        return { key, mode: identity.mode, description, credential: cached(identity.mode, new PodIdentityCredential(identity.pod)) };
      }
      case 'tokenProxy': {
        const transport = this.transport();
        const serviceAccount = serviceAccountOf(identity.serviceAccountToken);
        const description =
          `the identity with client ID ${identity.clientId} bound to service account ${serviceAccount} ` +
          `(identity binding through the token proxy ${transport.url})`;
        const recorder = new TransportErrorRecorder();
        const inner = createTokenProxyCredential(transport, cloud, tenantId, identity.clientId, identity.serviceAccountToken, {
          userAgentPrefix,
          identity: description,
          additionalPolicies: [{ policy: recorder.policy, position: 'perRetry' }],
        });
        const ctx: TokenErrorContext = {
          mode: identity.mode,
          identity: description,
          clientId: identity.clientId,
          tenantId,
          authorityHost: transport.url.replace(/\/+$/, ''),
          serviceAccount,
          sent: [identity.serviceAccountToken.token],
        };
        return viaEntra(inner, recorder, ctx);
      }
    }
  }

  /** One transport for the process: connections are pooled and the SNI name is discovered once. */
  private transport(): TokenProxyTransport {
    this.tokenProxy ??= new TokenProxyTransport(this.options.tokenProxy ?? {});
    return this.tokenProxy;
  }
}
