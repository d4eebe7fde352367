/**
 * `cert` objects: Key Vault's certificate (`cer`, DER) as one PEM `CERTIFICATE` block.
 *
 * The reference provider PEM-encoded whatever bytes it got. We parse them first with Node's X509Certificate so that a
 * truncated or foreign blob fails the mount with a clear message instead of producing a file no TLS library can
 * read. The bytes written are the input bytes, unchanged (never a re-encoding), so fingerprints stay the same.
 */
import { X509Certificate } from 'crypto';
import { ContentError } from '../errors';
import { pemEncode } from './pem';

export function certificatePemFromDer(der: Uint8Array): string {
  if (der.length === 0) throw new ContentError('the certificate is empty');
  const bytes = Buffer.from(der.buffer, der.byteOffset, der.byteLength);
  const invalid = () => new ContentError(`the certificate (${der.length} bytes) is not a valid DER X.509 certificate`);
  // DER starts with a SEQUENCE tag. Checked first because X509Certificate also accepts PEM text, which is not what
  // Key Vault's `cer` holds.
  if (bytes[0] !== 0x30) throw invalid();
  let parsed: X509Certificate;
  try {
    parsed = new X509Certificate(bytes);
  } catch {
    throw invalid();
  }
  // OpenSSL stops at the end of the first certificate and ignores what follows; we refuse trailing bytes rather
  // than silently drop them.
  if (parsed.raw.length !== bytes.length) {
    throw new ContentError(
      `the certificate is followed by ${bytes.length - parsed.raw.length} unexpected bytes after its DER encoding`,
    );
  }
  return pemEncode('CERTIFICATE', bytes);
}
