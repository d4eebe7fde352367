/**
 * `key` objects: the public half of a Key Vault key as PEM `PUBLIC KEY` (SubjectPublicKeyInfo).
 *
 * Node's crypto does the work: it imports a JSON Web Key and exports SPKI, and it checks the key while doing so (an
 * EC point that is not on the curve is refused). The Key Vault SDK hands us `n`, `e`, `x`, `y` as raw bytes
 * (Uint8Array), whereas a JWK carries them as base64url text, so we convert. Key Vault's RSA modulus may carry a
 * leading zero byte and EC coordinates may come without their leading zeros; Node reads both as the same integers.
 *
 * Supported, as in the reference provider: RSA and RSA-HSM; EC and EC-HSM on P-256, P-384 and P-521. Symmetric keys
 * (oct, oct-HSM) have no public half, and secp256k1 (P-256K) is not a curve the tools reading these files expect.
 */
import { createPublicKey, type JsonWebKey as NodeJwk } from 'node:crypto';
import { ContentError } from '../errors';
import { quote } from '../util/text';

/** Key types and curves are names, not secrets; quoted (bounded) so an odd value is visible in the message. */
const NAME_SHOWN = 40;

/** The fields of the SDK's JsonWebKey that matter here (private parts, if present, are ignored). */
export interface PublicJwk {
  kty?: string;
  crv?: string;
  n?: Uint8Array;
  e?: Uint8Array;
  x?: Uint8Array;
  y?: Uint8Array;
}

const SUPPORTED_CURVES: readonly string[] = ['P-256', 'P-384', 'P-521'];

export function publicKeyPemFromJwk(jwk: PublicJwk): string {
  const kty = jwk.kty;
  switch (kty) {
    case 'RSA':
    case 'RSA-HSM':
      return spkiPem(kty, {
        kty: 'RSA',
        n: base64url(jwk.n, kty, 'n'),
        e: base64url(jwk.e, kty, 'e'),
      });
    case 'EC':
    case 'EC-HSM': {
      const crv = jwk.crv;
      if (crv === undefined || crv === '') throw new ContentError(`key type ${kty} has no curve (crv)`);
      if (!SUPPORTED_CURVES.includes(crv)) {
        throw new ContentError(
          `key type ${kty} with curve ${quote(crv, NAME_SHOWN)} is not supported: use P-256, P-384 or P-521`,
        );
      }
      return spkiPem(`${kty} ${crv}`, {
        kty: 'EC',
        crv,
        x: base64url(jwk.x, kty, 'x'),
        y: base64url(jwk.y, kty, 'y'),
      });
    }
    case undefined:
    case '':
      throw new ContentError('the key has no key type (kty)');
    default:
      throw new ContentError(
        `key type ${quote(kty, NAME_SHOWN)} is not supported: only RSA, RSA-HSM, EC and EC-HSM keys have a public key to write`,
      );
  }
}

function spkiPem(what: string, jwk: NodeJwk): string {
  try {
    return createPublicKey({ key: jwk, format: 'jwk' }).export({ type: 'spki', format: 'pem' }).toString();
  } catch {
    // Node's message ("Invalid JWK EC key") adds nothing; the key material itself must not appear in errors.
    throw new ContentError(`the ${what} public key is invalid (Node could not import it)`);
  }
}

function base64url(bytes: Uint8Array | undefined, kty: string, field: string): string {
  if (!bytes || bytes.length === 0) throw new ContentError(`key type ${kty} is missing its ${field} parameter`);
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');
}

