/** Error codes Node, undici and the Azure SDK use when a request never got an HTTP answer. */
const NETWORK_CODES = new Set([
  'REQUEST_SEND_ERROR',
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
]);

export function isNetworkErrorCode(code: string | undefined): boolean {
  return code !== undefined && NETWORK_CODES.has(code);
}

/**
 * Network failures worth another attempt: everything above except a name that does not resolve (ENOTFOUND is
 * DNS's definite "no such host", usually a mistyped vault name; EAI_AGAIN is its transient "try again").
 */
export function isTransientNetworkErrorCode(code: string | undefined): boolean {
  return isNetworkErrorCode(code) && code !== 'ENOTFOUND';
}
