/**
 * The token cache in front of every credential the provider hands to Key Vault clients. One instance belongs to one
 * identity (one CredentialCache entry), so a token can never be served to another identity. It
 *  - reuses a token until five minutes before it expires (one request per token lifetime, whatever the SDK's own
 *    caches do, and the same for every mode, including pod identity, which has no SDK cache);
 *  - runs one request at a time per scope and lets concurrent mounts wait for it (100 mounts at once: one request);
 *  - lets each waiter give up on its own mount's abort signal while the shared request goes on for the others;
 *  - counts every real acquisition for metrics and turns failures into messages that name the identity and the fix.
 */
import type { AccessToken, GetTokenOptions, TokenCredential } from '@azure/core-auth';
import type { IdentityMode, ProviderMetrics } from '../observability/metrics';
import { outcomeOfError } from '../observability/outcome';
import { TokenRequestError } from './token-errors';
import { untilAborted } from '../util/abort';

/** Tokens this close to expiry are not handed out: a mount must finish its reads before its token expires. */
const EXPIRY_MARGIN_MS = 5 * 60_000;
/** Bound on one shared acquisition, for the mounts still waiting (each mount also has its own deadline). */
const ACQUIRE_TIMEOUT_MS = 90_000;
/** Scopes per identity are few (one Key Vault resource per cloud); more keys than this means something is off. */
const MAX_SCOPES = 16;

export interface CachingCredentialOptions {
  mode: IdentityMode;
  metrics: ProviderMetrics;
  /** Turns the inner credential's errors into TokenRequestErrors; identity by default. */
  translate?: (err: unknown) => unknown;
  now?: () => number;
}

export class CachingCredential implements TokenCredential {
  private readonly tokens = new Map<string, AccessToken>();
  private readonly flights = new Map<string, Promise<AccessToken>>();
  private readonly now: () => number;

  constructor(
    private readonly inner: TokenCredential,
    private readonly options: CachingCredentialOptions,
  ) {
    this.now = options.now ?? Date.now;
  }

  async getToken(scopes: string | string[], options?: GetTokenOptions): Promise<AccessToken | null> {
    const key = cacheKey(scopes, options);
    if (key !== undefined) {
      const cached = this.tokens.get(key);
      if (cached && cached.expiresOnTimestamp - EXPIRY_MARGIN_MS > this.now()) return cached;
    }
    let flight = key !== undefined ? this.flights.get(key) : undefined;
    if (!flight) {
      flight = this.acquire(scopes, options, key);
      if (key !== undefined) {
        const started = flight;
        this.flights.set(key, started);
        // Whatever the outcome, the next caller starts afresh (failures are not cached).
        started.then(
          () => this.flights.delete(key),
          () => this.flights.delete(key),
        );
      }
    }
    return untilAborted(flight, options?.abortSignal);
  }

  private async acquire(scopes: string | string[], options: GetTokenOptions | undefined, key: string | undefined): Promise<AccessToken> {
    // The shared request must not die with the first mount's signal: others may be waiting on it.
    const { abortSignal: _ignored, ...rest } = options ?? {};
    try {
      const token = await this.inner.getToken(scopes, { ...rest, abortSignal: AbortSignal.timeout(ACQUIRE_TIMEOUT_MS) });
      if (!token) throw new Error('the credential returned no token');
      this.options.metrics.countTokenRequest(this.options.mode, 'success');
      // refreshAfterTimestamp is dropped: the Key Vault clients would otherwise ask again on every request once it
      // passes, and this cache decides freshness by expiry alone.
      const kept: AccessToken = { token: token.token, expiresOnTimestamp: token.expiresOnTimestamp, tokenType: token.tokenType };
      if (key !== undefined) {
        this.tokens.delete(key);
        this.tokens.set(key, kept);
        while (this.tokens.size > MAX_SCOPES) this.tokens.delete(this.tokens.keys().next().value as string);
      }
      return kept;
    } catch (err) {
      const translated = this.options.translate ? this.options.translate(err) : err;
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

