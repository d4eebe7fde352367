/**
 * A private key as PKCS#8 DER, byte for byte as Go's x509.MarshalPKCS8PrivateKey writes it, which is what the
 * reference provider puts into the PEM it makes from a PFX.
 */
import type { KeyObject } from 'node:crypto';

/** Named curves Go's x509 knows, by JWK name: DER of the curve's OID, and the byte length of a coordinate. */
const CURVES: Record<string, { oid: Buffer; size: number }> = {
  'P-256': { oid: Buffer.from('06082a8648ce3d030107', 'hex'), size: 32 },
  'P-384': { oid: Buffer.from('06052b81040022', 'hex'), size: 48 },
  'P-521': { oid: Buffer.from('06052b81040023', 'hex'), size: 66 },
};
/** 1.2.840.10045.2.1 id-ecPublicKey */
const EC_PUBLIC_KEY_OID = Buffer.from('06072a8648ce3d0201', 'hex');

/**
 * For RSA (and every other type) Go's encoding is the standard one, which OpenSSL writes too. For EC it differs in one
 * case: Go always writes the inner ECPrivateKey (RFC 5915) with the public key filled in (it computes it from the
 * private key) and without the curve, which the outer algorithm names. OpenSSL keeps the public key out when the stored
 * key had none (OpenSSL's `ec -no_public`, some HSM exports), so Node's export would be a different file. We therefore
 * write EC keys ourselves:
 *
 *   PrivateKeyInfo ::= SEQUENCE { version INTEGER 0, algorithm SEQUENCE { id-ecPublicKey, namedCurve OID },
 *                                 privateKey OCTET STRING (ECPrivateKey) }
 *   ECPrivateKey ::= SEQUENCE { version INTEGER 1, privateKey OCTET STRING (fixed length of the curve),
 *                               publicKey [1] EXPLICIT BIT STRING (0x04 || X || Y, uncompressed) }
 */
export function goPkcs8Der(key: KeyObject): Buffer {
  if (key.asymmetricKeyType === 'ec') {
    const jwk = key.export({ format: 'jwk' });
    const curve = jwk.crv !== undefined ? CURVES[jwk.crv] : undefined;
    if (curve && jwk.d && jwk.x && jwk.y) {
      const d = fixed(Buffer.from(jwk.d, 'base64url'), curve.size);
      const point = Buffer.concat([Buffer.from([0x04]), fixed(Buffer.from(jwk.x, 'base64url'), curve.size), fixed(Buffer.from(jwk.y, 'base64url'), curve.size)]);
      const ecPrivateKey = tlv(0x30, [tlv(0x02, [Buffer.from([0x01])]), tlv(0x04, [d]), tlv(0xa1, [tlv(0x03, [Buffer.from([0x00]), point])])]);
      return tlv(0x30, [tlv(0x02, [Buffer.from([0x00])]), tlv(0x30, [EC_PUBLIC_KEY_OID, curve.oid]), tlv(0x04, [ecPrivateKey])]);
    }
    // A curve Go's x509 cannot name (e.g. secp256k1): the reference fails on it; write what OpenSSL writes.
  }
  return key.export({ type: 'pkcs8', format: 'der' });
}

/** Left-pads (or, for a value with a leading zero byte, trims) to the curve's fixed length. */
function fixed(bytes: Buffer, size: number): Buffer {
  if (bytes.length === size) return bytes;
  if (bytes.length > size) return bytes.subarray(bytes.length - size);
  return Buffer.concat([Buffer.alloc(size - bytes.length), bytes]);
}

/** One DER element: tag, definite length, content. */
function tlv(tag: number, parts: Buffer[]): Buffer {
  const content = Buffer.concat(parts);
  const n = content.length;
  let length: Buffer;
  if (n < 0x80) length = Buffer.from([n]);
  else if (n < 0x100) length = Buffer.from([0x81, n]);
  else length = Buffer.from([0x82, n >> 8, n & 0xff]);
  return Buffer.concat([Buffer.from([tag]), length, content]);
}
