/**
 * Public keys for tests, generated as PEM and imported again. Node 20 can deadlock when a KeyObject returned by
 * generateKeyPairSync is exported as a JWK while the garbage collector destroys the generation job that shares its
 * lock (seen as a hung jest run); a key imported from PEM shares nothing with that job.
 */
import { createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';

const ENCODING = {
  publicKeyEncoding: { type: 'spki', format: 'pem' },
  privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
} as const;

export function ecPublicKey(namedCurve: string): KeyObject {
  return createPublicKey(generateKeyPairSync('ec', { namedCurve, ...ENCODING }).publicKey);
}

export function rsaPublicKey(modulusLength: number, publicExponent?: number): KeyObject {
  return createPublicKey(generateKeyPairSync('rsa', { modulusLength, ...(publicExponent ? { publicExponent } : {}), ...ENCODING }).publicKey);
}
