/**
 * Which credential a mount uses, and the process-wide cache of credentials keyed by identity. A cache entry is one
 * identity: its key holds everything that decides who the caller is (mode, authority, tenant, client id, and digests
 * of the client secret or of the presented service account token), and its token cache serves only that identity.
 * Reusing an entry reuses its tokens: a node that mounts the same identity's secrets a thousand times asks IMDS,
 * Entra ID, NMI or the token proxy once per token lifetime. A mount that presents another secret or another service
 * account token gets its own entry, and Azure decides about it afresh. What differs by mode (its key, its words, its
 * credential) is in modes/, one module per mode.
 */
import type { Agent } from 'node:http';
import type { TokenCredential } from '@azure/core-auth';
import type { Cloud } from '../spec/clouds';
import type { IdentitySpec } from '../spec/types';
import { noopMetrics, type IdentityMode, type ProviderMetrics } from '../observability/metrics';
import { BoundedCache } from '../util/bounded-cache';
import { CachingCredential } from './caching-credential';
import type { AmbientWorkloadIdentity } from './managed-identity';
import type { ModeContext } from './modes/mode';
import { modeNamed, modeOf } from './modes/registry';
import { TokenProxyTransport, type TokenProxyConfig } from './token-proxy';

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
  return modeNamed(mode).tokenEndpoint;
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
      weigh: (entry) => modeNamed(entry.resolved.mode).entryBytes,
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
    const ctx = this.contextFor(cloud, tenantId);
    const { key, notAfter } = modeOf(identity).key(identity, ctx);
    const now = Date.now();
    const existing = this.cache.get(key);
    if (existing && existing.notAfter > now) {
      this.metrics.countCacheLookup('credential', true);
      return existing.resolved;
    }
    this.metrics.countCacheLookup('credential', false);
    const resolved = this.create(key, identity, ctx);
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

  private create(key: string, identity: IdentitySpec, ctx: ModeContext): ResolvedCredential {
    const mode = modeOf(identity);
    let self: ResolvedCredential | undefined;
    const cached = (inner: TokenCredential, translate?: (err: unknown) => unknown): TokenCredential =>
      new CachingCredential(inner, {
        mode: mode.mode,
        metrics: this.metrics,
        ...(translate ? { translate } : {}),
        ...(mode.maxTokenAgeMs !== undefined ? { maxTokenAgeMs: mode.maxTokenAgeMs } : {}),
        onRefused: () => self && this.drop(key, self),
      });
    const description = mode.describe(identity, ctx);
    self = { key, mode: mode.mode, description, credential: mode.credential(identity, description, ctx, cached) };
    return self;
  }

  private contextFor(cloud: Cloud, tenantId: string): ModeContext {
    return {
      cloud,
      tenantId,
      userAgentPrefix: this.options.userAgentPrefix,
      ambientWorkloadIdentity: this.options.ambientWorkloadIdentity,
      imdsEndpoint: this.options.imdsEndpoint,
      agentFor: this.options.agentFor,
      transport: () => this.transport(),
    };
  }

  /** One transport for the process: connections are pooled and the SNI name is discovered once. */
  private transport(): TokenProxyTransport {
    this.tokenProxy ??= new TokenProxyTransport(this.options.tokenProxy ?? {});
    return this.tokenProxy;
  }
}
