/**
 * Identity binding (`useAzureTokenProxy`): workload identity whose token requests go to the cluster's token proxy
 * instead of Entra ID. The client side is the Azure SDKs' ("AZURE_KUBERNETES_TOKEN_PROXY") behaviour, which the
 * reference provider uses:
 *  - every request the credential makes keeps its path and query and goes to the proxy URL (its path prefixed): the
 *    authority metadata and the token request alike;
 *  - TLS uses the proxy's SNI name as server name, and the certificate must be valid for that name;
 *  - trust comes from the service account CA (re-read on every request, so a rotated CA is picked up; an empty file
 *    during rotation keeps the last good one); without that file, the default trust store;
 *  - the assertion is the pod's service account token for audience api://AKSIdentityBinding.
 * The proxy is inside the cluster (by default the API server's service name), so it is reached directly, never through
 * HTTPS_PROXY.
 */
import { readFile } from 'node:fs/promises';
import { Agent, request as httpsRequest } from 'node:https';
import { X509Certificate } from 'node:crypto';
import type { AccessToken, GetTokenOptions, TokenCredential } from '@azure/core-auth';
import type { HttpClient, PipelinePolicy, PipelineRequest, PipelineResponse } from '@azure/core-rest-pipeline';
import type { Cloud } from '../spec/clouds';
import type { ServiceAccountToken } from '../spec/types';
import { tooLarge } from './bounded-http';
import { loadAzureIdentity, TOKEN_SERVICE_MAX_BODY_BYTES, tokenServiceHttpClient } from './entra-credentials';
import { identityKey, secretDigest } from './identity-key';
import { newAbortError } from '../util/abort';
import { restPipeline } from '../util/rest-pipeline';
import { TokenRequestError } from './token-errors';
import { API_SERVER_HOST, discoverSniName, SERVICE_ACCOUNT_CA_FILE } from './token-proxy-sni';

/** The reference's default: the in-cluster API server, where AKS serves the proxy behind SNI routing. */
export const DEFAULT_TOKEN_PROXY_URL = `https://${API_SERVER_HOST}`;
/** A failed SNI discovery is retried after this long, not on every mount. */
const SNI_RETRY_MS = 30_000;
const REQUEST_TIMEOUT_MS = 30_000;

export interface TokenProxyConfig {
  /** --token-proxy-url; empty = DEFAULT_TOKEN_PROXY_URL. */
  url?: string;
  /** --sni-name; empty = derived from the API server certificate. */
  sniName?: string;
  /** Service account CA; default the standard mount path. */
  caFile?: string;
  /** API server port for SNI discovery (KUBERNETES_SERVICE_PORT); default 443. */
  apiServerPort?: number;
  /** API server host for SNI discovery; default kubernetes.default.svc.cluster.local. */
  apiServerHost?: string;
}

/** Validates a token proxy URL as the Azure SDKs do: https, no user info, query or fragment; empty path = "/". */
export function parseTokenProxyUrl(value: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new Error(`--token-proxy-url "${value.slice(0, 200)}" is not a URL`);
  }
  if (url.protocol !== 'https:') throw new Error(`--token-proxy-url "${value.slice(0, 200)}" must use https`);
  if (url.username || url.password) throw new Error('--token-proxy-url must not contain user info');
  if (url.search) throw new Error('--token-proxy-url must not contain a query');
  if (url.hash) throw new Error('--token-proxy-url must not contain a fragment');
  return url;
}

/** The request URL moved to the proxy: proxy origin, proxy path + request path (one slash between), request query. */
export function rewriteToProxy(requestUrl: string, proxy: URL): string {
  const original = new URL(requestUrl);
  const base = proxy.pathname.replace(/\/+$/, '');
  const path = original.pathname.startsWith('/') ? original.pathname : `/${original.pathname}`;
  return `${proxy.origin}${base}${path}${original.search}`;
}

/**
 * The process-wide connection to the token proxy: URL, server name, trust and the HTTP client the credentials use.
 * Shared by every identity binding credential, so connections are pooled and the SNI name is discovered once.
 */
export class TokenProxyTransport {
  private readonly proxy: URL | Error;
  private sni: { promise: Promise<string>; failedAt?: number } | undefined;
  private trust: { pem: string | undefined; agent: Agent; servername: string } | undefined;
  readonly httpClient: HttpClient;

  constructor(private readonly config: TokenProxyConfig) {
    try {
      this.proxy = parseTokenProxyUrl(config.url || DEFAULT_TOKEN_PROXY_URL);
    } catch (err) {
      this.proxy = err as Error;
    }
    this.httpClient = tokenServiceHttpClient('the token proxy', { sendRequest: (request) => this.send(request) });
  }

  /** The proxy URL as configured (for keys and messages). */
  get url(): string {
    return this.proxy instanceof URL ? this.proxy.href : this.config.url || DEFAULT_TOKEN_PROXY_URL;
  }

  /**
   * Everything a token request needs that can be checked before sending it: a valid URL, the SNI name and readable
   * trust. Errors come back as messages for the mount (with the flag that fixes them).
   */
  async prepare(): Promise<{ servername: string; agent: Agent }> {
    if (this.proxy instanceof Error) throw this.proxy;
    const servername = await this.serverName();
    return { servername, agent: await this.agentFor(servername) };
  }

  private serverName(): Promise<string> {
    if (this.config.sniName) return Promise.resolve(this.config.sniName);
    const now = Date.now();
    if (!this.sni || (this.sni.failedAt !== undefined && now - this.sni.failedAt > SNI_RETRY_MS)) {
      const state: { promise: Promise<string>; failedAt?: number } = {
        promise: discoverSniName({
          ...(this.config.caFile !== undefined ? { caFile: this.config.caFile } : {}),
          ...(this.config.apiServerHost !== undefined ? { host: this.config.apiServerHost } : {}),
          ...(this.config.apiServerPort !== undefined ? { port: this.config.apiServerPort } : {}),
        }).catch((err: unknown) => {
          state.failedAt = Date.now();
          throw new Error(`${(err as Error).message}: pass the proxy's server name with --sni-name`);
        }),
      };
      this.sni = state;
    }
    return this.sni.promise;
  }

  /** A keep-alive agent for the current CA file content and server name; rebuilt when the CA changes. */
  private async agentFor(servername: string): Promise<Agent> {
    const caFile = this.config.caFile ?? SERVICE_ACCOUNT_CA_FILE;
    let pem: string | undefined;
    try {
      pem = await readFile(caFile, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // No service account CA mounted: the default trust store, as the reference does when the file is absent.
      if (code !== 'ENOENT') throw new Error(`the service account CA ${caFile} cannot be read (${code ?? (err as Error).message})`);
      pem = undefined;
    }
    if (pem !== undefined && pem.trim() === '') {
      // Mid-rotation the file can be empty for a moment: keep what worked.
      if (this.trust) return this.trust.agent;
      throw new Error(`the service account CA ${caFile} is empty`);
    }
    if (this.trust && this.trust.pem === pem && this.trust.servername === servername) return this.trust.agent;
    if (pem !== undefined && !holdsCertificates(pem)) throw new Error(`the service account CA ${caFile} holds no valid PEM certificate`);
    this.trust?.agent.destroy();
    const agent = new Agent({ keepAlive: true, servername, ...(pem !== undefined ? { ca: pem } : {}) });
    this.trust = { pem, agent, servername };
    return agent;
  }

  private async send(request: PipelineRequest): Promise<PipelineResponse> {
    const { servername, agent } = await this.prepare();
    const { createHttpHeaders, RestError } = restPipeline();
    const target = rewriteToProxy(request.url, this.proxy as URL);
    const body = request.body;
    if (body !== undefined && body !== null && typeof body !== 'string' && !Buffer.isBuffer(body)) {
      throw new RestError('the token proxy client sends only string bodies', { code: 'REQUEST_SEND_ERROR', request });
    }
    return new Promise<PipelineResponse>((resolve, reject) => {
      let done = false;
      const finish = (err: Error | undefined, response?: PipelineResponse): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        request.abortSignal?.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else resolve(response!);
      };
      const req = httpsRequest(target, { method: request.method, headers: request.headers.toJSON(), agent, servername });
      const timeoutMs = request.timeout > 0 ? request.timeout : REQUEST_TIMEOUT_MS;
      const timer = setTimeout(() => {
        req.destroy();
        finish(new RestError(`the token proxy did not answer within ${timeoutMs / 1000} s`, { code: 'ETIMEDOUT', request }));
      }, timeoutMs);
      const onAbort = (): void => {
        req.destroy();
        finish(newAbortError('the token proxy request was aborted'));
      };
      if (request.abortSignal?.aborted) return onAbort();
      request.abortSignal?.addEventListener('abort', onAbort, { once: true });
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        let length = 0;
        res.on('data', (c: Buffer) => {
          length += c.length;
          // Never buffer more than any answer of the proxy can be: a huge body fails this request, not the process.
          if (length > TOKEN_SERVICE_MAX_BODY_BYTES) {
            req.destroy();
            finish(tooLarge('the token proxy', `the token proxy at ${new URL(target).origin}`, res.statusCode ?? 0, TOKEN_SERVICE_MAX_BODY_BYTES));
            return;
          }
          chunks.push(c);
        });
        res.on('end', () => {
          const headers = createHttpHeaders();
          for (const [name, value] of Object.entries(res.headers)) {
            if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(', ') : value);
          }
          finish(undefined, { request, status: res.statusCode ?? 0, headers, bodyAsText: Buffer.concat(chunks).toString('utf8') });
        });
        res.on('error', (err) => finish(new RestError(err.message, { code: 'REQUEST_SEND_ERROR', request })));
      });
      req.on('error', (err: NodeJS.ErrnoException) => {
        const host = new URL(target).host;
        finish(new RestError(`TLS to ${host} with server name ${servername}: ${err.message}`, { code: err.code ?? 'REQUEST_SEND_ERROR', request }));
      });
      req.end((body ?? undefined) as string | Buffer | undefined);
    });
  }
}

/** At least one PEM certificate, and every one of them parses (Node would silently ignore a broken CA bundle). */
function holdsCertificates(pem: string): boolean {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) return false;
  try {
    for (const block of blocks) new X509Certificate(block);
    return true;
  } catch {
    return false;
  }
}

export function tokenProxyKey(
  transport: TokenProxyTransport,
  cloud: Cloud,
  tenantId: string,
  clientId: string,
  token: ServiceAccountToken,
): string {
  return identityKey(
    'tp',
    transport.url.toLowerCase(),
    cloud.authorityHost.toLowerCase(),
    tenantId.toLowerCase(),
    clientId.toLowerCase(),
    `${token.namespace}/${token.name}`,
    secretDigest(token.token),
  );
}

/**
 * The identity binding credential: a client assertion credential whose every request goes through the transport.
 * Before asking, it checks that the transport is usable, so a missing SNI name or CA fails with its own message
 * rather than as an anonymous network error from inside MSAL.
 */
export function createTokenProxyCredential(
  transport: TokenProxyTransport,
  cloud: Cloud,
  tenantId: string,
  clientId: string,
  token: ServiceAccountToken,
  options: { userAgentPrefix: string; identity: string; additionalPolicies?: Array<{ policy: PipelinePolicy; position: 'perCall' | 'perRetry' }> },
): TokenCredential {
  const assertion = token.token;
  const inner = new (loadAzureIdentity().ClientAssertionCredential)(tenantId, clientId, () => Promise.resolve(assertion), {
    authorityHost: cloud.authorityHost,
    // The proxy answers for one tenant's token endpoint; instance discovery would go to Entra ID itself.
    disableInstanceDiscovery: true,
    httpClient: transport.httpClient,
    userAgentOptions: { userAgentPrefix: options.userAgentPrefix },
    ...(options.additionalPolicies ? { additionalPolicies: options.additionalPolicies } : {}),
  });
  return {
    async getToken(scopes: string | string[], getTokenOptions?: GetTokenOptions): Promise<AccessToken | null> {
      try {
        await transport.prepare();
      } catch (err) {
        throw new TokenRequestError(
          'FailedPrecondition',
          options.identity,
          `the token proxy ${transport.url} cannot be used: ${(err as Error).message}`,
          'useAzureTokenProxy needs the identity binding token proxy of the cluster (AKS identity bindings); check --token-proxy-url and --sni-name',
          'other',
          { cause: err },
        );
      }
      return inner.getToken(scopes, getTokenOptions);
    },
  };
}
