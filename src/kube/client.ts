/**
 * The provider's Kubernetes API client: a few JSON calls (get a namespace or service account, create or patch an
 * event, list SecretProviderClasses) over node:https, every call bounded in time and answer size.
 *
 * Why not @kubernetes/client-node: measured on this project's Node 20, its 2.0.1 fails to load (undici's zstd), and
 * 1.4.0 loads through require(esm) at about 710 ms of CPU and brings 72 MB of node_modules — against a start-up
 * budget of ≤ 150 ms CPU under a 50m CPU quota, for five REST calls. This module is loaded only when a feature that
 * needs the API is on, so a provider with them off starts exactly as before.
 */
import { Agent, request as httpsRequest } from 'node:https';
import type { KubeConnectionConfig } from './config';

/** No call the provider makes needs longer: past this the API server is as good as down for a mount. */
export const KUBE_CALL_TIMEOUT_MS = 5_000;
/** The largest answer read; a namespace, service account or event is a few KiB, a list of classes is paged. */
export const MAX_ANSWER_BYTES = 4 * 1024 * 1024;

/** Why a call failed, in the classes an operator acts on differently. */
export type KubeFailure = 'forbidden' | 'unauthorized' | 'not_found' | 'conflict' | 'unreachable' | 'server_error' | 'other';

export class KubeApiError extends Error {
  override readonly name = 'KubeApiError';
  constructor(
    readonly failure: KubeFailure,
    /** HTTP status; 0 when no answer came. */
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export interface KubeApi {
  /** The parsed JSON answer of a 2xx; a KubeApiError otherwise. */
  call<T>(method: 'GET' | 'POST' | 'PATCH', path: string, body?: unknown, contentType?: string): Promise<T>;
  readonly server: string;
  close(): void;
}

export function createKubeApi(config: KubeConnectionConfig, userAgent: string): KubeApi {
  // A couple of kept connections: calls are rare (a few per mount at most) and never need more in parallel.
  const agent = new Agent({
    keepAlive: true,
    maxSockets: 4,
    ...(config.ca ? { ca: config.ca } : {}),
    ...(config.clientCert ? { cert: config.clientCert } : {}),
    ...(config.clientKey ? { key: config.clientKey } : {}),
    ...(config.serverName ? { servername: config.serverName } : {}),
  });
  const call = <T>(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
      const token = config.token?.();
      const what = `${method} ${path.split('?')[0]}`;
      const req = httpsRequest(
        `${config.server}${path}`,
        {
          method,
          agent,
          headers: {
            accept: 'application/json',
            'user-agent': userAgent,
            ...(token ? { authorization: `Bearer ${token}` } : {}),
            ...(payload ? { 'content-type': contentType, 'content-length': String(payload.length) } : {}),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (chunk: Buffer) => {
            size += chunk.length;
            if (size > MAX_ANSWER_BYTES) {
              req.destroy(new KubeApiError('other', res.statusCode ?? 0, `${what}: the answer exceeds ${MAX_ANSWER_BYTES} bytes`));
              return;
            }
            chunks.push(chunk);
          });
          res.on('end', () => {
            const status = res.statusCode ?? 0;
            const text = Buffer.concat(chunks).toString('utf8');
            if (status >= 200 && status < 300) {
              try {
                resolve((text ? JSON.parse(text) : {}) as T);
              } catch {
                reject(new KubeApiError('other', status, `${what}: the answer is not JSON`));
              }
              return;
            }
            // The API server's Status message names the user, verb and resource; it never carries our token.
            let reason = '';
            try {
              const parsed = JSON.parse(text) as { message?: unknown };
              if (typeof parsed.message === 'string') reason = `: ${parsed.message.slice(0, 300)}`;
            } catch {
              // Not a Status object (a proxy's page): the status code says enough.
            }
            reject(new KubeApiError(failureOf(status), status, `${what} answered ${status}${reason}`));
          });
          res.on('error', (err) => reject(asUnreachable(what, err)));
        },
      );
      req.setTimeout(KUBE_CALL_TIMEOUT_MS, () =>
        req.destroy(new KubeApiError('unreachable', 0, `${what}: no answer from the API server within ${KUBE_CALL_TIMEOUT_MS / 1000} s`)),
      );
      req.on('error', (err) => reject(asUnreachable(what, err)));
      req.end(payload);
    });
  return { call, server: config.server, close: () => agent.destroy() };
}

function failureOf(status: number): KubeFailure {
  if (status === 401) return 'unauthorized';
  if (status === 403) return 'forbidden';
  if (status === 404) return 'not_found';
  if (status === 409) return 'conflict';
  if (status === 429 || status >= 500) return 'server_error';
  return 'other';
}

function asUnreachable(what: string, err: Error): KubeApiError {
  if (err instanceof KubeApiError) return err;
  const code = (err as NodeJS.ErrnoException).code;
  return new KubeApiError('unreachable', 0, `${what}: cannot reach the API server (${code ?? 'connection failed'})`);
}
