/**
 * The HTTP client every call to Azure goes through (IMDS, Entra ID, AD FS, the token proxy, Key Vault): the SDK's own
 * client, with the bounds one node serving every pod needs. One bad answer must cost one request, not the process.
 * Failures are BoundedHttpErrors that say which endpoint did what, in words safe for a pod's events: no body, ever.
 */
import type { Agent } from 'node:http';
import type { Readable } from 'node:stream';
import type { HttpClient, PipelineRequest, PipelineResponse } from '@azure/core-rest-pipeline';
import { isJsonText, originOf } from '../util/http-text';
import { restPipeline } from '../util/rest-pipeline';

export type BoundedHttpFailure = 'timeout' | 'too-large' | 'not-json' | 'refused' | 'unreachable' | 'foreign';

/** A request that failed one of the bounds, or got no answer. `message` names the endpoint and never carries a body. */
export class BoundedHttpError extends Error {
  override readonly name = 'BoundedHttpError';

  constructor(
    readonly failure: BoundedHttpFailure,
    /** "the node's managed identity endpoint (IMDS) at http://169.254.169.254", "Key Vault \"kv\"", … */
    readonly endpoint: string,
    message: string,
    readonly status?: number,
    readonly code?: string,
  ) {
    super(message);
  }
}

export interface BoundedHttpOptions {
  /** Words for the endpoint in messages; the request's origin is appended. */
  endpoint: string;
  /** Largest body read; larger answers fail. */
  maxBodyBytes: number;
  /** Whole request (headers and body) must complete within this; none when absent. */
  timeoutMs?: number;
  /** Retry-After (and its millisecond variants) above this are lowered to it; left alone when absent. */
  maxRetryAfterMs?: number;
  /** Non-empty bodies must be JSON (every Azure endpoint we call answers JSON). */
  requireJson?: boolean;
  /**
   * For answers that did not come from the service itself: which header the service always sends (Key Vault:
   * x-ms-request-id), and what sits between (e.g. "the HTTPS proxy http://proxy:3128"). A 4xx/5xx answer without that
   * header and without a JSON body is reported as coming from that intermediary.
   */
  serviceHeader?: string;
  intermediary?: string;
  /** The client to bound; the SDK's default one when absent. */
  inner?: HttpClient;
  /**
   * Whether refused and unreachable connections become BoundedHttpErrors (default true). Key Vault's retry layer
   * classifies the SDK's own network errors, so its client keeps them as they are.
   */
  describeTransportErrors?: boolean;
  /**
   * The process's shared keep-alive agent for a URL, routed by the reference's (Go's) proxy rules. Without it every
   * credential's client kept its own connections (and proxy tunnels) open: a thousand short-lived identities, a
   * thousand sockets.
   */
  agentFor?: (url: string) => Agent;
}

/** Every status code, for `streamResponseStatusCodes`: the SDK's client then hands us the body unread. */
const ANY_STATUS = new Set([Number.POSITIVE_INFINITY]);

/**
 * The bounds:
 *  - every response body is read with a byte limit: a 48 MB answer from a broken proxy or a hostile endpoint fails
 *    that request, instead of being buffered (and parsed) until the process dies of it;
 *  - every request can be bounded in time, headers and body together (MSAL passes no abort signal to its requests,
 *    so without this a hung IMDS request stays hung);
 *  - a Retry-After above what a mount can wait is cut down, so one "Retry-After: 3600" cannot hold token requests for
 *    an hour inside the SDK's retry policies;
 *  - an endpoint that must answer JSON and does not (an HTML page from a proxy, a truncated body) fails with what it
 *    was, never with the parser's message: V8's JSON errors quote the text, which may hold a secret.
 */
export function boundedHttpClient(options: BoundedHttpOptions): HttpClient {
  const inner = options.inner ?? restPipeline().createDefaultHttpClient();
  return {
    async sendRequest(request: PipelineRequest): Promise<PipelineResponse> {
      const where = `${options.endpoint} at ${originOf(request.url, '(unparsable URL)')}`;
      // A caller that streams on purpose keeps its stream (none of ours does; the SDKs read JSON).
      const callerStreams = request.streamResponseStatusCodes;
      const timeout = options.timeoutMs !== undefined ? new AbortController() : undefined;
      const timer = timeout ? setTimeout(() => timeout.abort(), options.timeoutMs) : undefined;
      const callerSignal = request.abortSignal;
      // A plain controller with the caller's abort forwarded, not AbortSignal.any: the SDK's client removes its abort
      // listener from the request's signal only once the body stream has ended, and a composite signal that still has
      // a listener is kept alive by Node for good, with the whole pipeline it references (a leak per credential).
      const forward = (): void => timeout?.abort();
      if (timeout) {
        if (callerSignal?.aborted) timeout.abort();
        callerSignal?.addEventListener('abort', forward);
        request.abortSignal = timeout.signal;
      }
      request.streamResponseStatusCodes = ANY_STATUS;
      if (options.agentFor && request.url.startsWith('https:')) request.agent = options.agentFor(request.url);
      try {
        const response = await inner.sendRequest(request);
        if (callerStreams && response.readableStreamBody && (callerStreams.has(response.status) || callerStreams.has(Number.POSITIVE_INFINITY))) {
          return response;
        }
        const stream = response.readableStreamBody;
        delete response.readableStreamBody;
        if (stream) response.bodyAsText = await readBounded(stream as Readable, options.maxBodyBytes, options.endpoint, where, response.status);
        else if (Buffer.byteLength(response.bodyAsText ?? '') > options.maxBodyBytes) {
          // A client that read the whole body itself (the token proxy's bounds its own reads too).
          throw tooLarge(options.endpoint, where, response.status, options.maxBodyBytes);
        }
        check(response, options, where);
        capRetryAfter(response, options.maxRetryAfterMs);
        return response;
      } catch (err) {
        if (timeout?.signal.aborted && !callerSignal?.aborted) {
          throw new BoundedHttpError('timeout', options.endpoint, `${where} did not answer within ${options.timeoutMs! / 1000}s`);
        }
        if (err instanceof BoundedHttpError || options.describeTransportErrors === false) throw err;
        throw transportFailure(err, options.endpoint, where);
      } finally {
        clearTimeout(timer);
        callerSignal?.removeEventListener('abort', forward);
        request.abortSignal = callerSignal;
        request.streamResponseStatusCodes = callerStreams;
      }
    },
  };
}

/** The body as text, or a BoundedHttpError once more than `max` bytes arrived (the rest is never read). */
function readBounded(stream: Readable, max: number, endpoint: string, where: string, status: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let length = 0;
    const onData = (chunk: Buffer | string): void => {
      const buffer = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      length += buffer.length;
      if (length > max) {
        stream.off('data', onData);
        stream.destroy();
        reject(tooLarge(endpoint, where, status, max));
        return;
      }
      chunks.push(buffer);
    };
    stream.on('data', onData);
    stream.once('end', () => resolve(Buffer.concat(chunks, length).toString('utf8')));
    stream.once('error', reject);
  });
}

export function tooLarge(endpoint: string, where: string, status: number, max: number): BoundedHttpError {
  return new BoundedHttpError(
    'too-large',
    endpoint,
    `${where} answered ${status} with a body larger than ${formatBytes(max)}, far more than any answer of it should be; ` +
      'the answer was dropped unread',
    status,
  );
}

function check(response: PipelineResponse, options: BoundedHttpOptions, where: string): void {
  const text = response.bodyAsText ?? '';
  if (text.trim() === '') {
    if (response.status >= 400 && options.serviceHeader && !response.headers.has(options.serviceHeader)) throw foreign(response.status, options, where);
    return;
  }
  if (!options.requireJson) return;
  if (isJsonText(text)) return;
  if (response.status >= 400 && options.serviceHeader && !response.headers.has(options.serviceHeader)) throw foreign(response.status, options, where);
  throw new BoundedHttpError(
    'not-json',
    options.endpoint,
    `${where} answered ${response.status} with a body that is not JSON (truncated, or from something in between such ` +
      'as a proxy or firewall); the body is not shown',
    response.status,
  );
}

function foreign(status: number, options: BoundedHttpOptions, where: string): BoundedHttpError {
  const who = options.intermediary ?? 'something between the node and it (a proxy or firewall)';
  return new BoundedHttpError(
    'foreign',
    options.endpoint,
    `the request to ${where} was answered ${status} by ${who}, not by the service itself`,
    status,
  );
}

function transportFailure(err: unknown, endpoint: string, where: string): unknown {
  const e = err as { code?: unknown; name?: unknown };
  if (e?.name === 'AbortError') return err;
  const code = typeof e?.code === 'string' ? e.code : undefined;
  if (code === 'ECONNREFUSED') return new BoundedHttpError('refused', endpoint, `${where} refused the connection (ECONNREFUSED)`, undefined, code);
  if (code && /^(ENOTFOUND|EAI_AGAIN|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|ECONNRESET|EPIPE|REQUEST_SEND_ERROR)$/.test(code)) {
    return new BoundedHttpError('unreachable', endpoint, `${where} could not be reached (${code})`, undefined, code);
  }
  return err;
}

/** Cuts every Retry-After variant down to `max` (the service may ask for an hour; a mount cannot wait that long). */
function capRetryAfter(response: PipelineResponse, max: number | undefined): void {
  if (max === undefined) return;
  for (const name of ['retry-after-ms', 'x-ms-retry-after-ms']) {
    const value = Number(response.headers.get(name));
    if (Number.isFinite(value) && value > max) response.headers.set(name, String(max));
  }
  const value = response.headers.get('retry-after');
  if (value === undefined) return;
  const seconds = /^\s*\d+\s*$/.test(value) ? Number(value) : (Date.parse(value) - Date.now()) / 1000;
  if (!Number.isFinite(seconds) || seconds * 1000 > max) response.headers.set('retry-after', String(Math.floor(max / 1000)));
}



function formatBytes(n: number): string {
  return n >= 1024 * 1024 ? `${n / (1024 * 1024)} MiB` : `${n / 1024} KiB`;
}

/** The BoundedHttpError behind an SDK error (they wrap what the HTTP client threw in `cause`), if any. */
export function boundedHttpErrorIn(err: unknown): BoundedHttpError | undefined {
  for (let e: unknown = err, depth = 0; e && depth < 6; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof BoundedHttpError) return e;
  }
  return undefined;
}
