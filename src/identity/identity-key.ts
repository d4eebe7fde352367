/**
 * Cache keys for credentials: everything that decides who a caller is, and nothing else. Two mounts share a credential
 * (and so its tokens) only when their keys are equal, so a key must change whenever Azure could decide differently:
 * another client secret, another presented service account token, another tenant, authority or pod.
 *
 * Secrets in a key are digests, never the secret itself: an HMAC with a key made when the process starts, so a key
 * (in memory, in a heap dump) cannot be matched against guessed secrets offline or across processes.
 */
import { createHmac, randomBytes } from 'node:crypto';

const PROCESS_KEY = randomBytes(32);

/** A process-local digest of a secret value (client secret, service account token). */
export function secretDigest(secret: string): string {
  return createHmac('sha256', PROCESS_KEY).update(secret, 'utf8').digest('base64url');
}

/**
 * Joins key parts with a separator that cannot occur in them: parts are percent-encoded, so "a|b" + "c" and "a" +
 * "b|c" never collide. GUIDs, tenants and hosts compare case-insensitively; callers lower-case those parts.
 */
export function identityKey(mode: string, ...parts: string[]): string {
  return [mode, ...parts].map((p) => encodeURIComponent(p)).join('|');
}
