/**
 * The one place that knows which bearer tokens exist. Token issuers (the IMDS stand-in, later the Entra ID stand-ins)
 * record what each token stands for; the Key Vault stand-in looks tokens up. Tokens are opaque random strings, so a
 * product that tries to read claims out of a Key Vault token (it must not) fails in the tests rather than in the field.
 */
import { randomBytes } from 'node:crypto';

export interface TokenRecord {
  /** Who the token authenticates: the id the Key Vault stand-in's access lists use. */
  identityId: string;
  /** The audience the token was requested for, e.g. https://vault.azure.net (as requested, trailing slash kept). */
  resource: string;
  /** Expiry, Unix time in seconds (as IMDS's `expires_on`). */
  expiresOn: number;
  /** Unix time in seconds. */
  issuedAt: number;
  /** Which stand-in issued it, e.g. 'imds'. */
  issuer: string;
  /** Tenant the token was issued in, when the issuer knows it; Key Vault then checks it against the vault's tenant. */
  tenantId?: string;
}

export type TokenCheck =
  | { ok: true; record: TokenRecord }
  | { ok: false; reason: 'unknown' | 'expired' | 'revoked'; record?: TokenRecord };

export interface IssueTokenRequest {
  identityId: string;
  resource: string;
  lifetimeSeconds: number;
  issuer: string;
  tenantId?: string;
}

export interface TokenRegistry {
  issue(request: IssueTokenRequest): { token: string; record: TokenRecord };
  /** Whether `token` is a live token, and what it stands for. */
  check(token: string, nowSeconds?: number): TokenCheck;
  /** Makes one token unusable (Key Vault then answers 401). */
  revoke(token: string): void;
  /** Makes every token of an identity unusable; returns how many. */
  revokeIdentity(identityId: string): number;
  /** Moves every token's expiry into the past: a cheap way to test what happens when cached tokens go stale. */
  expireAll(): void;
  /** Every token issued so far, oldest first. */
  issued(): readonly TokenRecord[];
  /** Every token with its string, oldest first: for checks such as "the logs never contain a token". */
  all(): Array<TokenRecord & { token: string }>;
}

export function createTokenRegistry(): TokenRegistry {
  const tokens = new Map<string, TokenRecord>();
  const revoked = new Set<string>();
  const order: TokenRecord[] = [];
  const strings = new Map<TokenRecord, string>();
  const nowSec = (): number => Math.floor(Date.now() / 1000);

  return {
    issue(request) {
      // base64url of 32 random bytes: looks like nothing, so nobody can parse it.
      const token = randomBytes(32).toString('base64url');
      const issuedAt = nowSec();
      const record: TokenRecord = {
        identityId: request.identityId,
        resource: request.resource,
        expiresOn: issuedAt + request.lifetimeSeconds,
        issuedAt,
        issuer: request.issuer,
        ...(request.tenantId !== undefined ? { tenantId: request.tenantId } : {}),
      };
      tokens.set(token, record);
      order.push(record);
      strings.set(record, token);
      return { token, record };
    },
    check(token, nowSeconds = Date.now() / 1000) {
      const record = tokens.get(token);
      if (!record) return { ok: false, reason: 'unknown' };
      if (revoked.has(token)) return { ok: false, reason: 'revoked', record };
      if (record.expiresOn <= nowSeconds) return { ok: false, reason: 'expired', record };
      return { ok: true, record };
    },
    revoke(token) {
      if (tokens.has(token)) revoked.add(token);
    },
    revokeIdentity(identityId) {
      let n = 0;
      for (const [token, record] of tokens) {
        if (record.identityId === identityId && !revoked.has(token)) {
          revoked.add(token);
          n++;
        }
      }
      return n;
    },
    expireAll() {
      const past = nowSec() - 1;
      for (const record of tokens.values()) record.expiresOn = Math.min(record.expiresOn, past);
    },
    issued: () => order,
    all: () => order.map((record) => ({ ...record, token: strings.get(record)! })),
  };
}
