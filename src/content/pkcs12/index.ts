/**
 * PKCS#12 (PFX) → PEM private keys (PKCS#8) and certificates: the password attempts and the error boundary. The walk
 * is pfx.ts, the crypto schemes schemes.ts, the ASN.1 accessors asn1.ts.
 *
 * node-forge parses the container (its ASN.1 reader accepts the BER that PKCS#12 allows: indefinite lengths and
 * chunked OCTET STRINGs, which Windows and Java produce); we walk the structure ourselves instead of calling
 * `forge.pkcs12.pkcs12FromAsn1`, whose result is not what we must write (see decodePkcs12).
 */
import { ContentError } from '../../errors';
import { type DecodedPkcs12, readAuthenticatedSafe, readPfx } from './pfx';
import { Budget, macMatches, type Password } from './schemes';

export type { DecodedPkcs12 } from './pfx';

/**
 * Why not `forge.pkcs12.pkcs12FromAsn1`:
 * - it turns RSA certificates into forge objects; writing them out again rebuilds the outer signature algorithm from
 *   parsed fields, which is not guaranteed to reproduce the stored bytes. We want the stored DER, byte for byte.
 * - it passes one password string to every scheme, but PBES2 needs the password as UTF-8 bytes while the PKCS#12
 *   KDF needs it as UTF-16 (BMPString); forge's PBKDF2 mangles non-ASCII text, so such a PFX fails to decrypt.
 * - its PBKDF2 is JavaScript, about 20x slower than Node's native one, and it has no limit on iteration counts.
 *
 * Passwords: Key Vault's PFX secrets have no password, and "no password" is ambiguous in PKCS#12: the PKCS#12 KDF
 * can get zero bytes or a lone 16-bit terminator (the empty BMPString). OpenSSL writes the latter; other writers
 * (forge with a null password, some Windows exports) the former. For an empty password we try both, as OpenSSL's
 * reader does.
 */
export function decodePkcs12(pfx: Buffer, password = ''): DecodedPkcs12 {
  try {
    return decode(pfx, password);
  } catch (err) {
    if (err instanceof ContentError) throw err;
    // Whatever else a damaged file provokes (inside forge or Node) is still bad input, not a provider failure. The
    // original message is left out: it is not written for users and could echo decoded bytes.
    throw new ContentError(
      'the PFX could not be read: it is damaged or uses a structure this provider does not support',
    );
  }
}

function decode(pfx: Buffer, password: string): DecodedPkcs12 {
  const { authSafe, macData } = readPfx(pfx);
  const utf8 = Buffer.from(password, 'utf8');
  const candidates: Password[] = password === '' ? [{ bmp: '', utf8 }, { bmp: null, utf8 }] : [{ bmp: password, utf8 }];

  if (macData) {
    const budget = new Budget();
    const match = candidates.find((pw) => macMatches(macData, authSafe, pw, budget));
    if (!match) {
      throw new ContentError(
        password === ''
          ? 'the PFX integrity check (MAC) failed without a password: the file is corrupted or protected by a password'
          : 'the PFX integrity check (MAC) failed: the password is wrong or the file is corrupted',
      );
    }
    return readAuthenticatedSafe(authSafe, match, budget);
  }

  // No MAC (allowed by the standard, rare): a wrong password shows up as a failed decryption or unreadable content.
  let firstError: unknown;
  for (const pw of candidates) {
    try {
      return readAuthenticatedSafe(authSafe, pw, new Budget());
    } catch (err) {
      firstError ??= err;
    }
  }
  throw firstError;
}
