/**
 * Removes anything token-shaped from text that came from outside (SDK and service error messages) before it goes into
 * a mount error or a log line. Our own messages never carry secrets; this guards the texts we do not control.
 */
const JWT = /eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g;
const BEARER = /(Bearer|access_token["']?\s*[:=])\s*["']?[^\s"',}]+/gi;

export function scrub(text: string): string {
  return text.replace(JWT, '[token]').replace(BEARER, '$1 [token]');
}

/**
 * Removes every value we sent (a client secret, an assertion, a token) from text that came back from outside: a token
 * service or a proxy may quote the request in its error. Also catches the forms they travel in (URL-encoded in a
 * form body, JSON-escaped). Values shorter than 4 characters are left alone (they would erase ordinary words).
 */
export function redactSent(text: string, sent: readonly string[]): string {
  let out = text;
  for (const value of sent) {
    if (value.length < 4) continue;
    for (const form of new Set([value, encodeURIComponent(value), JSON.stringify(value).slice(1, -1)])) {
      out = out.split(form).join('[redacted]');
    }
  }
  return scrub(out);
}
