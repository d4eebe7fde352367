/**
 * The token cache in front of every credential the provider hands to Key Vault clients. One instance belongs to one
 * identity (one CredentialCache entry), so a token can never be served to another identity.
 */
import type { AccessToken, GetTokenOptions, TokenCredential } from '@azure/core-auth';
import type { IdentityMode, ProviderMetrics } from '../observability/metrics';
import { outcomeOfError } from '../observability/outcome';
import { TokenRequestError } from './token-errors';
import { untilAborted } from '../util/abort';

/** Tokens this close to expiry are not handed out: a mount must finish its reads before its token expires. */
const EXPIRY_MARGIN_MS = 5 * 60_000;
/** Bound on one shared acquisition, for the mounts still waiting (each mount also has its own deadline). */
const ACQUIRE_TIMEOUT_MS = 60_000;
/**
 * A shared acquisition older than this is not joined: the next mount starts its own. Each token request is bounded
 * (10 s for IMDS, 15 s for Entra ID); an acquisition still running after this is stuck in retries or waits.
 */
export const STALE_FLIGHT_MS = 15_000;
/** Scopes per identity are few (one Key Vault resource per cloud); more keys than this means something is off. */
const MAX_SCOPES = 16;

export interface CachingCredentialOptions {
  mode: IdentityMode;
  metrics: ProviderMetrics;
  /** Turns the inner credential's errors into TokenRequestErrors; identity by default. */
  translate?: (err: unknown) => unknown;
  /**
   * Ask again once a token is this old, even if it is still valid; while the endpoint cannot answer (a network
   * failure, not a refusal), the cached token keeps serving. Unbounded when absent.
   */
  maxTokenAgeMs?: number;
  /** Called when the token endpoint refused the identity (Unauthenticated), so its owner can forget it. */
  onRefused?: () => void;
  now?: () => number;
}

/** A credential whose cached token can be dropped (Key Vault rejected it). */
export interface RenewableCredential extends TokenCredential {
  invalidate(): void;
}

export function isRenewable(credential: TokenCredential): credential is RenewableCredential {
  return typeof (credential as Partial<RenewableCredential>).invalidate === 'function';
}

interface Cached {
  token: AccessToken;
  /** When it was acquired (for maxTokenAgeMs). */
  at: number;
}

interface Flight {
  promise: Promise<AccessToken>;
  startedAt: number;
}

/**
 * A CachingCredential:
 *  - reuses a token until five minutes before it expires (one request per token lifetime, whatever the SDK's own
 *    caches do, and the same for every mode, including pod identity, which has no SDK cache);
 *  - runs one request at a time per scope and lets concurrent mounts wait for it (100 mounts at once: one request);
 *  - lets each waiter give up on its own mount's abort signal while the shared request goes on for the others;
 *  - lets a mount that arrives while the shared request is older than STALE_FLIGHT_MS start a fresh one, so one hung
 *    request (or one endpoint that asked for a long wait) cannot hold every mount of the identity;
 *  - drops its token on request (Key Vault rejected it), and, with `maxTokenAgeMs`, asks again after that long even
 *    though the token is still valid (a managed identity removed from the node pool then stops working within it);
 *  - counts every real acquisition for metrics and turns failures into messages that name the identity and the fix.
 */
export class CachingCredential implements RenewableCredential {
  private readonly tokens = new Map<string, Cached>();
  private readonly flights = new Map<string, Flight>();
  private readonly now: () => number;

  constructor(
    private readonly inner: TokenCredential,
    private readonly options: CachingCredentialOptions,
  ) {
    this.now = options.now ?? Date.now;
  }

  async getToken(scopes: string | string[], options?: GetTokenOptions): Promise<AccessToken | null> {
    const key = cacheKey(scopes, options);
    const now = this.now();
    const cached = key !== undefined ? this.tokens.get(key) : undefined;
    const usable = cached !== undefined && cached.token.expiresOnTimestamp - EXPIRY_MARGIN_MS > now;
    const due = usable && this.options.maxTokenAgeMs !== undefined && now - cached.at >= this.options.maxTokenAgeMs;
    if (usable && !due) return cached.token;

    let flight = key !== undefined ? this.flights.get(key) : undefined;
    if (!flight || now - flight.startedAt > STALE_FLIGHT_MS) {
      const started: Flight = { promise: this.acquire(scopes, options, key), startedAt: now };
      flight = started;
      if (key !== undefined) {
        this.flights.set(key, started);
        // Whatever the outcome, the next caller starts afresh (failures are not cached).
        const done = (): void => {
          if (this.flights.get(key) === started) this.flights.delete(key);
        };
        started.promise.then(done, done);
      }
    }
    if (!due) return untilAborted(flight.promise, options?.abortSignal);
    // A re-check of a still-valid token: only a refusal ends it; an endpoint that cannot answer leaves it serving.
    try {
      return await untilAborted(flight.promise, options?.abortSignal);
    } catch (err) {
      if (err instanceof TokenRequestError && err.status === 'Unavailable' && this.tokens.get(key!) === cached) return cached.token;
      throw err;
    }
  }

  /** Drops every cached token of this identity: the next request asks the token endpoint. */
  invalidate(): void {
    this.tokens.clear();
  }

  private async acquire(scopes: string | string[], options: GetTokenOptions | undefined, key: string | undefined): Promise<AccessToken> {
    // The shared request must not die with the first mount's signal: others may be waiting on it.
    const { abortSignal: _ignored, ...rest } = options ?? {};
    try {
      // A timer cleared when the acquisition ends, not AbortSignal.timeout: that one lives its full minute, holding
      // whatever listens to it (the credential and its HTTP client), so a burst of refused identities stayed in memory.
      const bound = new AbortController();
      const timer = setTimeout(() => bound.abort(), ACQUIRE_TIMEOUT_MS);
      timer.unref();
      const token = await this.inner.getToken(scopes, { ...rest, abortSignal: bound.signal }).finally(() => clearTimeout(timer));
      if (!token) throw new Error('the credential returned no token');
      this.options.metrics.countTokenRequest(this.options.mode, 'success');
      // refreshAfterTimestamp is dropped: the Key Vault clients would otherwise ask again on every request once it
      // passes, and this cache decides freshness by expiry alone.
      const kept: AccessToken = { token: token.token, expiresOnTimestamp: token.expiresOnTimestamp, tokenType: token.tokenType };
      if (key !== undefined) {
        this.tokens.delete(key);
        this.tokens.set(key, { token: kept, at: this.now() });
        while (this.tokens.size > MAX_SCOPES) this.tokens.delete(this.tokens.keys().next().value as string);
      }
      return kept;
    } catch (err) {
      const translated = this.options.translate ? this.options.translate(err) : err;
      // A refusal (not an outage) ends a cached token early too: the identity is gone or no longer allowed.
      if (translated instanceof TokenRequestError && translated.status === 'Unauthenticated') {
        if (key !== undefined) this.tokens.delete(key);
        this.options.onRefused?.();
      }
      this.options.metrics.countTokenRequest(
        this.options.mode,
        translated instanceof TokenRequestError ? translated.outcome : outcomeOfError(err),
      );
      throw translated;
    }
  }
}

/** Scope, tenant and CAE flag decide which token fits; a claims challenge always goes to the service. */
function cacheKey(scopes: string | string[], options: GetTokenOptions | undefined): string | undefined {
  if (options?.claims) return undefined;
  const list = (Array.isArray(scopes) ? [...scopes] : [scopes]).sort();
  return JSON.stringify([list, options?.tenantId ?? '', options?.enableCae === true]);
}

