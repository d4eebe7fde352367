/**
 * Removes anything token-shaped from text that came from outside (SDK and service error messages) before it goes into
 * a mount error or a log line. Our own messages never carry secrets; this guards the texts we do not control.
 */
const JWT = /eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g;
const BEARER = /(Bearer|access_token["']?\s*[:=])\s*["']?[^\s"',}]+/gi;

export function scrub(text: string): string {
  return text.replace(JWT, '[token]').replace(BEARER, '$1 [token]');
}
