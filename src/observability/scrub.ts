/**
 * Removes anything token-shaped from text that came from outside (SDK and service error messages) before it goes into
 * a mount error or a log line. Our own messages never carry secrets; this guards the texts we do not control.
 */
const JWT = /eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g;
const BEARER = /(Bearer|access_token["']?\s*[:=])\s*["']?[^\s"',}]+/gi;

export function scrub(text: string): string {
  return text.replace(JWT, '[token]').replace(BEARER, '$1 [token]');
}

/** Runs of characters secrets, tokens and their encodings are made of. */
const RUN = /[A-Za-z0-9_\-~.+/=%]{8,}/g;

/**
 * Removes every value we sent (a client secret, an assertion, a token) from text that came back from outside: a token
 * service or a proxy may quote the request in its error, whole, URL-encoded, JSON-escaped, or in pieces (one segment
 * of a JWT). Every run of 8 or more secret-like characters that is part of a sent value, or contains one, goes.
 */
export function redactSent(text: string, sent: readonly string[]): string {
  const values = sent.filter((v) => v.length >= 8);
  if (values.length === 0) return scrub(text);
  const forms = values.flatMap((v) => [v, encodeURIComponent(v)]);
  const redacted = text.replace(RUN, (run) => (forms.some((v) => v.includes(run) || run.includes(v)) ? '[redacted]' : run));
  // Shorter values only as whole occurrences (a run test would erase ordinary words).
  let out = redacted;
  for (const value of sent) if (value.length >= 4 && value.length < 8) out = out.split(value).join('[redacted]');
  return scrub(out);
}
