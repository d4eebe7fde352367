/**
 * Turns the result of one call to Azure (Key Vault, IMDS, Entra ID) into a coarse outcome class for metrics. The class
 * set is fixed and small, so a label built from it cannot grow with error texts, object names or status details.
 */
import { isNetworkErrorCode } from '../util/network-errors';
import type { Outcome } from './metrics';


/** The outcome of an HTTP answer. 401 is not a failure of the caller when it is a challenge; callers decide. */
export function outcomeOfStatus(status: number): Outcome {
  if (status >= 200 && status < 400) return 'success';
  if (status === 401) return 'unauthenticated';
  if (status === 403) return 'forbidden';
  if (status === 404) return 'not_found';
  if (status === 429) return 'throttled';
  if (status >= 500) return 'server_error';
  return 'other';
}

/** The outcome of a call that threw instead of answering. Looks only at names, codes and status numbers. */
export function outcomeOfError(err: unknown, signal?: { readonly aborted: boolean }): Outcome {
  if (signal?.aborted) return 'cancelled';
  if (typeof err !== 'object' || err === null) return 'other';
  const { name, code, statusCode } = err as { name?: unknown; code?: unknown; statusCode?: unknown };
  if (name === 'AbortError') return 'cancelled';
  if (typeof statusCode === 'number' && statusCode > 0) return outcomeOfStatus(statusCode);
  if (typeof code === 'string' && isNetworkErrorCode(code)) return 'network';
  return 'other';
}
