/**
 * Keeps the last transport failure (refused connection, TLS name mismatch, proxy refusal…) of one credential's HTTP
 * pipeline. MSAL reports any of them as a bare "network_error", so without this the message for the pod could not
 * say what actually went wrong. One recorder per credential: it never mixes identities.
 */
import type { PipelinePolicy } from '@azure/core-rest-pipeline';
import { scrub } from '../observability/scrub';
import { isJsonText, originOf } from '../util/http-text';

/** A failure older than this belongs to an earlier request, not to the one being explained. */
const FRESH_MS = 120_000;

export class TransportErrorRecorder {
  private last: { text: string; at: number } | undefined;

  readonly policy: PipelinePolicy = {
    name: 'csiProviderTransportErrorRecorder',
    sendRequest: async (request, next) => {
      try {
        const response = await next(request);
        // Token services answer errors in JSON; anything else came from something in between (an HTTPS proxy that
        // refused the tunnel, a firewall, a wrong host), and MSAL would call it only "network_error".
        if (response.status >= 400 && !looksLikeJsonObject(response.bodyAsText)) {
          this.last = { text: `HTTP ${response.status} from ${originOf(request.url, 'the token service')}, not an answer of the token service`, at: Date.now() };
        }
        return response;
      } catch (err) {
        const e = err as { code?: unknown; message?: unknown };
        const code = typeof e.code === 'string' ? e.code : undefined;
        const message = typeof e.message === 'string' ? e.message.split('\n')[0]!.slice(0, 400) : String(err);
        this.last = { text: scrub(code && !message.includes(code) ? `${code}: ${message}` : message), at: Date.now() };
        throw err;
      }
    },
  };

  /** The last failure, once (undefined when none is recent). */
  take(): string | undefined {
    const last = this.last;
    this.last = undefined;
    return last && Date.now() - last.at < FRESH_MS ? last.text : undefined;
  }
}

/** A JSON object, as every token service error is; anything else came from something in between. */
function looksLikeJsonObject(body: string | null | undefined): boolean {
  const text = (body ?? '').trim();
  return text.startsWith('{') && isJsonText(text);
}
