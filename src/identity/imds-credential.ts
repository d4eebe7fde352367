/**
 * The node's managed identity, asked of IMDS directly (the documented REST contract: GET
 * /metadata/identity/oauth2/token?api-version=2018-02-01&resource=… with `Metadata: true`, plus client_id or
 * msi_res_id for a user-assigned identity).
 * Hand-written rather than the SDK's ManagedIdentityCredential, for the reasons on the class.
 */
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AccessToken, GetTokenOptions, TokenCredential } from '@azure/core-auth';
import type { HttpClient } from '@azure/core-rest-pipeline';
import { restPipeline } from '../util/rest-pipeline';
import type { StatusName } from '../errors';
import type { UserAssignedIdentity } from '../spec/types';
import type { Outcome } from '../observability/metrics';
import { abortError } from '../util/abort';
import { boundedHttpClient, BoundedHttpError } from './bounded-http';
import { TokenRequestError } from './token-errors';

/** Where IMDS answers on every Azure VM; AZURE_POD_IDENTITY_AUTHORITY_HOST replaces it (the SDKs' convention). */
export const DEFAULT_IMDS_ENDPOINT = 'http://169.254.169.254';
/** IMDS answers in milliseconds; its documented bound is 10 s. One request that takes longer is given up. */
export const IMDS_REQUEST_TIMEOUT_MS = 10_000;
/** A token answer is about 2 KB. */
const IMDS_MAX_BODY_BYTES = 64 * 1024;
/** The longest a Retry-After from IMDS is followed: a mount cannot wait an hour, and the driver retries it anyway. */
const IMDS_MAX_RETRY_AFTER_MS = 5_000;
/** 404/410 (identity being assigned, IMDS being updated), 429, 5xx: retried this often within one acquisition. */
const MAX_RETRIES = 3;
const BASE_BACKOFF_MS = 500;
const API_VERSION = '2018-02-01';

export const IMDS_NAME = "the node's managed identity endpoint (IMDS)";

export interface ImdsCredentialOptions {
  /** Origin of IMDS; DEFAULT_IMDS_ENDPOINT when absent. */
  endpoint?: string;
  /** "the user-assigned managed identity with client ID …", for messages. */
  identity: string;
  userAgent: string;
  /** For tests of the retry timing; Math.random by default. */
  random?: () => number;
}

/** One keep-alive pool for IMDS per process: it is one host, asked by every managed identity mount. */
const agents = { http: new HttpAgent({ keepAlive: true, maxSockets: 16 }), https: new HttpsAgent({ keepAlive: true, maxSockets: 16 }) };

/**
 * Why not the SDK's ManagedIdentityCredential: one provider serves every pod of the node, and the SDK's credential
 *  - sends its requests without the caller's abort signal, so one hung IMDS request held every managed identity mount
 *    of the node until the socket died;
 *  - keeps tokens in a process-wide static cache that no one can clear, so a token Key Vault rejects (or of an identity
 *    removed from the node pool) was served again for its whole lifetime (24 h);
 *  - follows Retry-After for as long as IMDS asks, and retries 404/410 for up to a minute;
 *  - reports a bad answer as an internal JavaScript message ("Response had no "expiresOn" property").
 * Here every request is bounded (time and body, see bounded-http.ts), retries are few and short, caching is the
 * CachingCredential's (one per identity, clearable), and each failure says which endpoint did what and what to check.
 */
export class ImdsCredential implements TokenCredential {
  private readonly endpoint: string;
  private readonly http: HttpClient;

  constructor(
    private readonly selector: UserAssignedIdentity | undefined,
    private readonly options: ImdsCredentialOptions,
  ) {
    this.endpoint = (options.endpoint || DEFAULT_IMDS_ENDPOINT).replace(/\/+$/, '');
    this.http = boundedHttpClient({
      endpoint: IMDS_NAME,
      maxBodyBytes: IMDS_MAX_BODY_BYTES,
      timeoutMs: IMDS_REQUEST_TIMEOUT_MS,
      maxRetryAfterMs: IMDS_MAX_RETRY_AFTER_MS,
      requireJson: true,
    });
  }

  async getToken(scopes: string | string[], options?: GetTokenOptions): Promise<AccessToken | null> {
    const scope = Array.isArray(scopes) ? scopes[0] ?? '' : scopes;
    const url = new URL(`${this.endpoint}/metadata/identity/oauth2/token`);
    url.searchParams.set('api-version', API_VERSION);
    url.searchParams.set('resource', scope.replace(/\/\.default$/, ''));
    if (this.selector?.kind === 'clientId') url.searchParams.set('client_id', this.selector.value);
    if (this.selector?.kind === 'resourceId') url.searchParams.set('msi_res_id', this.selector.value);
    const signal = options?.abortSignal as AbortSignal | undefined;

    for (let attempt = 0; ; attempt++) {
      const answer = await this.ask(url, signal);
      if (answer.status === 200) return this.tokenFrom(answer.body);
      const retryable = answer.status === 404 || answer.status === 410 || answer.status === 429 || answer.status >= 500;
      if (!retryable || attempt >= MAX_RETRIES) throw this.refusal(answer.status, answer.body);
      const asked = Number(answer.retryAfter);
      const backoff = BASE_BACKOFF_MS * 2 ** attempt * (0.5 + 0.5 * (this.options.random ?? Math.random)());
      const delay = Number.isFinite(asked) && asked > 0 ? Math.min(asked * 1000, IMDS_MAX_RETRY_AFTER_MS) : backoff;
      try {
        await sleep(delay, undefined, signal ? { signal } : {});
      } catch {
        throw abortError(signal!);
      }
    }
  }

  private async ask(url: URL, signal: AbortSignal | undefined): Promise<{ status: number; body: unknown; retryAfter: string | undefined }> {
    const { createHttpHeaders, createPipelineRequest } = restPipeline();
    const request = createPipelineRequest({
      url: url.href,
      method: 'GET',
      headers: createHttpHeaders({ Metadata: 'true', 'User-Agent': this.options.userAgent }),
      allowInsecureConnection: true,
      ...(signal ? { abortSignal: signal } : {}),
    });
    request.agent = url.protocol === 'https:' ? agents.https : agents.http;
    try {
      const response = await this.http.sendRequest(request);
      const text = response.bodyAsText ?? '';
      return { status: response.status, body: text.trim() === '' ? undefined : (JSON.parse(text) as unknown), retryAfter: response.headers.get('retry-after') };
    } catch (err) {
      if (err instanceof BoundedHttpError) throw this.unreachable(err);
      if (signal?.aborted) throw abortError(signal);
      throw this.fail('Unavailable', `${IMDS_NAME} at ${this.endpoint} could not be asked for a token (${(err as Error)?.name ?? 'error'})`, CHECK_REACH, 'network', err);
    }
  }

  private tokenFrom(body: unknown): AccessToken {
    const answer = (typeof body === 'object' && body !== null ? body : {}) as { access_token?: unknown; expires_on?: unknown; expires_in?: unknown };
    // IMDS sends numbers as strings; expires_on is Unix seconds, expires_in seconds from now.
    const expiresOn = Number(answer.expires_on);
    const expiresIn = Number(answer.expires_in);
    const expiresAt = Number.isFinite(expiresOn) && expiresOn > 0 ? expiresOn * 1000 : Number.isFinite(expiresIn) && expiresIn > 0 ? Date.now() + expiresIn * 1000 : NaN;
    if (typeof answer.access_token !== 'string' || answer.access_token === '' || !Number.isFinite(expiresAt)) {
      throw this.fail(
        'Unavailable',
        `${IMDS_NAME} at ${this.endpoint} answered 200 without a usable token (it needs access_token and expires_on)`,
        'something other than IMDS may be answering on its address: check any proxy (NO_PROXY must include 169.254.169.254) and the node',
        'other',
      );
    }
    return { token: answer.access_token, expiresOnTimestamp: expiresAt, tokenType: 'Bearer' };
  }

  /** IMDS answered, but not with a token. Only its fixed error words are shown, never its description text. */
  private refusal(status: number, body: unknown): TokenRequestError {
    const answer = (typeof body === 'object' && body !== null ? body : {}) as { error?: unknown; error_description?: unknown };
    const word = typeof answer.error === 'string' && /^[a-z_]{1,40}$/i.test(answer.error) ? ` ${answer.error}` : '';
    const description = typeof answer.error_description === 'string' ? answer.error_description : '';
    const head = `${IMDS_NAME} at ${this.endpoint} answered ${status}${word}`;
    if (status === 400 && /identity not found/i.test(description)) {
      return this.fail(
        'Unauthenticated',
        `${head} (Identity not found): it does not know this identity`,
        "check userAssignedIdentityID and that the identity is assigned to the node pool's VM scale set",
        'not_found',
      );
    }
    if (status === 400 && /AADSTS500011|invalid_resource/i.test(`${word} ${description}`)) {
      return this.fail('Unauthenticated', `${head}: Entra ID does not know the Key Vault resource asked for`, 'check cloudName', 'unauthenticated');
    }
    if (status === 400 && /multiple user assigned/i.test(description)) {
      // A configuration error that no retry fixes, and not the system-assigned identity's: the node has none.
      return new TokenRequestError(
        'InvalidArgument',
        "the node's managed identity",
        `${head} (Multiple user assigned identities exist): the node has several user-assigned identities and no ` +
          'system-assigned one, so IMDS cannot choose',
        "set userAssignedIdentityID to the client ID of one of the node pool's identities that may read the vault",
        'unauthenticated',
      );
    }
    if (status === 404 || status === 410) {
      return this.fail('Unavailable', `${head} after ${MAX_RETRIES + 1} attempts: the identity is not available on this node yet`, 'if it was just assigned to the node pool, the driver retries the mount; otherwise check userAssignedIdentityID', 'not_found');
    }
    if (status === 429) return this.fail('Unavailable', `${head} (throttled) after ${MAX_RETRIES + 1} attempts`, 'the driver retries the mount', 'throttled');
    if (status >= 500) return this.fail('Unavailable', `${head} after ${MAX_RETRIES + 1} attempts`, 'the driver retries the mount; if it persists, check the node', 'server_error');
    return this.fail('Unauthenticated', head, 'check userAssignedIdentityID, and that the provider pods use the host network', 'unauthenticated');
  }

  private unreachable(err: BoundedHttpError): TokenRequestError {
    const fix =
      err.failure === 'timeout' || err.failure === 'refused' || err.failure === 'unreachable'
        ? CHECK_REACH
        : 'something other than IMDS answered on its address: check any proxy (NO_PROXY must include 169.254.169.254) and the node';
    return this.fail('Unavailable', err.message, fix, err.failure === 'timeout' ? 'network' : 'network', err);
  }

  private fail(status: StatusName, reason: string, fix: string, outcome: Outcome, cause?: unknown): TokenRequestError {
    return new TokenRequestError(status, this.options.identity, reason, fix, outcome, cause === undefined ? undefined : { cause });
  }
}

const CHECK_REACH =
  'it is the node\'s own Azure Instance Metadata Service: check that the node is an Azure VM or scale set instance, that ' +
  'the provider pods run with hostNetwork, and that no network policy, firewall rule or proxy (NO_PROXY must include ' +
  '169.254.169.254) blocks 169.254.169.254; the driver retries the mount';
