import type { KeyObject } from 'node:crypto';
import { publicKeyPemFromJwk, type PublicJwk } from '../../../src/content/jwk';
import { ContentError } from '../../../src/errors';
import { ecPublicKey, rsaPublicKey } from '../../support/keys';

/** What the Key Vault SDK hands us: the JWK parameters as raw bytes. */
function sdkJwk(publicKey: KeyObject, kty: string): PublicJwk {
  const jwk = publicKey.export({ format: 'jwk' });
  const raw = (v: string | undefined) => (v === undefined ? undefined : new Uint8Array(Buffer.from(v, 'base64url')));
  return { kty, crv: jwk.crv, n: raw(jwk.n), e: raw(jwk.e), x: raw(jwk.x), y: raw(jwk.y) };
}

const spki = (k: KeyObject) => k.export({ type: 'spki', format: 'pem' }).toString();

describe('publicKeyPemFromJwk', () => {
  const rsa = rsaPublicKey(2048);
  const rsa3072 = rsaPublicKey(3072, 3);

  it.each([
    ['RSA', rsa],
    ['RSA-HSM', rsa],
    ['RSA', rsa3072],
  ])('%s → the same SPKI PEM Node exports', (kty, key) => {
    const pem = publicKeyPemFromJwk(sdkJwk(key, kty));
    expect(pem).toBe(spki(key));
    expect(pem).toMatch(/^-----BEGIN PUBLIC KEY-----\n[\s\S]+\n-----END PUBLIC KEY-----\n$/);
  });

  it('accepts an RSA modulus with a leading zero byte (as Key Vault sends it)', () => {
    const jwk = sdkJwk(rsa, 'RSA');
    const n = new Uint8Array(jwk.n!.length + 1);
    n.set(jwk.n!, 1);
    expect(publicKeyPemFromJwk({ ...jwk, n })).toBe(spki(rsa));
  });

  it('reads Uint8Array views into a larger buffer', () => {
    const jwk = sdkJwk(rsa, 'RSA');
    const backing = new Uint8Array(jwk.n!.length + 10);
    backing.set(jwk.n!, 5);
    expect(publicKeyPemFromJwk({ ...jwk, n: backing.subarray(5, 5 + jwk.n!.length) })).toBe(spki(rsa));
  });

  describe.each(['P-256', 'P-384', 'P-521'])('curve %s', (crv) => {
    const key = ecPublicKey(crv);
    it.each(['EC', 'EC-HSM'])('%s', (kty) => {
      expect(publicKeyPemFromJwk(sdkJwk(key, kty))).toBe(spki(key));
    });
  });

  it('accepts EC coordinates without their leading zero bytes', () => {
    // Find a P-256 key whose x starts with a zero byte, then strip it as a big-integer encoder would.
    for (;;) {
      const key = ecPublicKey('P-256');
      const jwk = sdkJwk(key, 'EC');
      if (jwk.x![0] !== 0) continue;
      expect(publicKeyPemFromJwk({ ...jwk, x: jwk.x!.subarray(1) })).toBe(spki(key));
      break;
    }
  });

  const secp256k1 = sdkJwk(ecPublicKey('secp256k1'), 'EC');
  const ecP256 = sdkJwk(ecPublicKey('P-256'), 'EC');
  const badPoint = { ...ecP256, y: Uint8Array.from(ecP256.y!, (b, i) => (i === 5 ? b ^ 1 : b)) };

  it.each<[string, PublicJwk, RegExp]>([
    ['oct', { kty: 'oct' }, /key type "oct" is not supported/],
    ['oct-HSM', { kty: 'oct-HSM' }, /key type "oct-HSM" is not supported/],
    ['OKP', { kty: 'OKP', crv: 'Ed25519', x: new Uint8Array(32) }, /key type "OKP" is not supported/],
    ['P-256K', { ...secp256k1, crv: 'P-256K' }, /key type EC with curve "P-256K" is not supported: use P-256, P-384/],
    ['SECP256K1 on EC-HSM', { ...secp256k1, kty: 'EC-HSM', crv: 'SECP256K1' }, /EC-HSM with curve "SECP256K1" is not/],
    ['no kty', { n: new Uint8Array(1) }, /has no key type \(kty\)/],
    ['empty kty', { kty: '' }, /has no key type \(kty\)/],
    ['EC without crv', { ...ecP256, crv: undefined }, /key type EC has no curve \(crv\)/],
    ['RSA without n', { ...sdkJwk(rsa, 'RSA'), n: undefined }, /key type RSA is missing its n parameter/],
    ['RSA-HSM without e', { ...sdkJwk(rsa, 'RSA-HSM'), e: new Uint8Array(0) }, /RSA-HSM is missing its e parameter/],
    ['EC without x', { ...ecP256, x: undefined }, /key type EC is missing its x parameter/],
    ['EC-HSM without y', { ...ecP256, kty: 'EC-HSM', y: undefined }, /key type EC-HSM is missing its y parameter/],
    ['EC point not on the curve', badPoint, /the EC P-256 public key is invalid/],
    ['P-384 name with P-256 coordinates', { ...ecP256, crv: 'P-384' }, /the EC P-384 public key is invalid/],
  ])('refuses %s', (_name, jwk, pattern) => {
    expect(() => publicKeyPemFromJwk(jwk)).toThrow(ContentError);
    expect(() => publicKeyPemFromJwk(jwk)).toThrow(pattern);
  });
});
