/**
 * Pod identity (aad-pod-identity, deprecated upstream): the node's NMI answers token requests for a pod, chosen by the
 * `podname` and `podns` headers, with `{"token": {"access_token", "expires_on", …}, "clientid"}`. NMI listens on
 * localhost:2579 on every node; the provider asks it directly (never through a proxy, as Go's HTTP client does for
 * localhost). NMI may take a while (it waits for the identity assignment), so each request has a timeout, and NMI's
 * own error text is relayed: it says which AzureIdentity or binding is missing.
 */
import { request as httpRequest } from 'node:http';
import type { AccessToken, GetTokenOptions, TokenCredential } from '@azure/core-auth';
import { identityKey } from './identity-key';
import { TokenRequestError } from './token-errors';
import { newAbortError } from '../util/abort';
import { firstLine } from '../util/text';
import { scrub } from '../observability/scrub';
import type { Outcome } from '../observability/metrics';

/** Where NMI listens on every node (the reference's fixed port). */
export const NMI_ENDPOINT = 'http://localhost:2579';
/** NMI retries the identity assignment for up to ~80 s before it answers 404; a mount should not wait that long. */
export const NMI_TIMEOUT_MS = 30_000;
/** NMI's answers (a token, or one line of error text) are a few KB. */
const NMI_MAX_BODY_BYTES = 64 * 1024;

export interface PodRef {
  name: string;
  namespace: string;
  uid: string;
}

/** NMI decides the identity by pod; the uid keeps a re-created pod with the same name from reusing old tokens. */
export function podIdentityKey(pod: PodRef): string {
  return identityKey('pod', pod.namespace, pod.name, pod.uid);
}

export function describePodIdentity(pod: PodRef): string {
  return `the pod identity (aad-pod-identity) of pod ${pod.namespace}/${pod.name}`;
}

export class PodIdentityCredential implements TokenCredential {
  constructor(
    private readonly pod: PodRef,
    private readonly endpoint: string = NMI_ENDPOINT,
    private readonly timeoutMs: number = NMI_TIMEOUT_MS,
  ) {}

  async getToken(scopes: string | string[], options?: GetTokenOptions): Promise<AccessToken | null> {
    const scope = Array.isArray(scopes) ? scopes[0] ?? '' : scopes;
    const resource = scope.replace(/\/\.default$/, '');
    const url = new URL('/host/token/', this.endpoint);
    url.searchParams.set('resource', resource);
    const answer = await this.get(url, options?.abortSignal);
    if (answer.status !== 200) {
      throw this.error(`NMI at ${this.endpoint} answered ${answer.status}: ${scrub(firstLine(answer.body)) || '(no body)'}`, answer.status);
    }
    let parsed: { token?: { access_token?: unknown; expires_on?: unknown }; clientid?: unknown };
    try {
      parsed = JSON.parse(answer.body) as typeof parsed;
    } catch {
      throw this.error(`NMI at ${this.endpoint} answered 200 with a body that is not JSON`, 502);
    }
    const token = parsed.token?.access_token;
    if (typeof token !== 'string' || token === '' || typeof parsed.clientid !== 'string' || parsed.clientid === '') {
      throw this.error(`NMI at ${this.endpoint} did not return the expected token and clientid`, 502);
    }
    // expires_on is Unix seconds, as a JSON number or (ADAL's json.Number) a string.
    const expiresOn = Number(parsed.token?.expires_on);
    if (!Number.isFinite(expiresOn) || expiresOn <= 0) {
      throw this.error(`NMI at ${this.endpoint} returned a token without a valid expires_on`, 502);
    }
    return { token, expiresOnTimestamp: expiresOn * 1000, tokenType: 'Bearer' };
  }

  private get(url: URL, signal: GetTokenOptions['abortSignal']): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      let settled = false;
      const fail = (err: TokenRequestError | Error): void => {
        if (settled) return;
        settled = true;
        req.destroy();
        reject(err);
      };
      let req: ReturnType<typeof httpRequest>;
      try {
        req = httpRequest(url, {
          method: 'GET',
          // Only the pod's coordinates: NMI finds the pod's identity binding from them.
          headers: { podname: this.pod.name, podns: this.pod.namespace },
        });
      } catch {
        // Node refuses header values with control characters; parameters.ts refuses such names first, this is the
        // backstop.
        settled = true;
        reject(this.error('the pod name or namespace cannot be sent to NMI as a header (it contains characters a header may not)', 400));
        return;
      }
      const timer = setTimeout(
        () => fail(this.error(`NMI at ${this.endpoint} did not answer within ${this.timeoutMs / 1000} s`, 504)),
        this.timeoutMs,
      );
      const onAbort = (): void => fail(newAbortError('token request aborted'));
      signal?.addEventListener('abort', onAbort, { once: true });
      const cleanup = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        let length = 0;
        res.on('data', (c: Buffer) => {
          length += c.length;
          // NMI answers a few KB; a huge body fails this request instead of being buffered.
          if (length > NMI_MAX_BODY_BYTES) {
            cleanup();
            fail(this.error(`NMI at ${this.endpoint} answered with a body larger than ${NMI_MAX_BODY_BYTES / 1024} KiB; it was dropped unread`, 502));
            return;
          }
          chunks.push(c);
        });
        res.on('end', () => {
          cleanup();
          if (settled) return;
          settled = true;
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') });
        });
        res.on('error', (err) => {
          cleanup();
          fail(this.error(`the answer from NMI at ${this.endpoint} broke off (${err.message})`, 0));
        });
      });
      req.on('error', (err: NodeJS.ErrnoException) => {
        cleanup();
        fail(this.error(`could not reach NMI at ${this.endpoint} (${err.code ?? err.message})`, 0));
      });
      req.end();
    });
  }

  private error(reason: string, status: number): TokenRequestError {
    const identity = describePodIdentity(this.pod);
    if (status === 0) {
      return new TokenRequestError(
        'Unavailable',
        identity,
        reason,
        'check that aad-pod-identity (NMI) runs on this node; pod identity is deprecated: consider workload identity',
        'network',
      );
    }
    if (status === 504) return new TokenRequestError('Unavailable', identity, reason, 'check the NMI and MIC logs', 'network');
    const outcome: Outcome = status === 404 ? 'not_found' : status === 403 ? 'forbidden' : status >= 500 ? 'server_error' : 'other';
    const fix =
      status === 404
        ? `check that an AzureIdentity and an AzureIdentityBinding select pod ${this.pod.namespace}/${this.pod.name} ` +
          '(its aadpodidbinding label) and the MIC logs for assignment errors'
        : status === 403
          ? 'NMI found the identity but could not get a token for it: check the NMI logs and the identity\'s access'
          : 'check the NMI logs';
    return new TokenRequestError(status >= 500 ? 'Unavailable' : 'Unauthenticated', identity, reason, fix, outcome);
  }
}
