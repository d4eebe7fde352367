/** How the value cache tells service accounts apart without keeping their tokens (workload identity, token proxy). */
import { Buffer } from 'node:buffer';
import type { ServiceAccountToken } from '../../spec/types';
import { secretDigest } from '../identity-key';

/** A service account token's payload is small; anything larger is not read (the whole token's digest stands in). */
const MAX_PAYLOAD_CHARS = 16 * 1024;

/**
 * The digest of the token's `sub` claim (system:serviceaccount:<namespace>:<name>). The token is not verified here:
 * Entra ID verified it when this identity first read the object. A token whose subject cannot be read gets the digest
 * of the whole token, so it shares nothing with any other mount.
 */
export function subjectDigest(token: ServiceAccountToken): string {
  const payload = token.token.split('.')[1] ?? '';
  if (payload.length > 0 && payload.length <= MAX_PAYLOAD_CHARS) {
    try {
      const claims: unknown = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
      const sub = typeof claims === 'object' && claims !== null ? (claims as { sub?: unknown }).sub : undefined;
      if (typeof sub === 'string' && sub !== '') return `sub:${secretDigest(sub)}`;
    } catch {
      // Not a JWT: fall through.
    }
  }
  return `token:${secretDigest(token.token)}`;
}
