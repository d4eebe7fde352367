/**
 * `cert` objects: Key Vault's certificate (`cer`, DER) as one PEM `CERTIFICATE` block.
 *
 * The reference provider PEM-encoded whatever bytes it got. We parse them first with Node's X509Certificate so that a
 * truncated or foreign blob fails the mount with a clear message instead of producing a file no TLS library can
 * read. The bytes written are the input bytes, unchanged (never a re-encoding), so fingerprints stay the same.
 */
import { X509Certificate } from 'node:crypto';
import { ContentError } from '../errors';
import { pemEncode } from './pem';

export function certificatePemFromDer(der: Uint8Array): string {
  if (der.length === 0) throw new ContentError('the certificate is empty');
  const bytes = Buffer.from(der.buffer, der.byteOffset, der.byteLength);
  const problem = certificateDerProblem(bytes);
  if (problem?.kind === 'not-x509') {
    throw new ContentError(`the certificate (${der.length} bytes) is not a valid DER X.509 certificate`);
  }
  if (problem?.kind === 'trailing-bytes') {
    throw new ContentError(`the certificate is followed by ${problem.extra} unexpected bytes after its DER encoding`);
  }
  return pemEncode('CERTIFICATE', bytes);
}

/** Why bytes are not exactly one DER X.509 certificate; undefined when they are. */
export type CertificateDerProblem = { kind: 'not-x509' } | { kind: 'trailing-bytes'; extra: number };

/** The one certificate check, for Key Vault's `cer` and for the certificates inside a PFX alike. */
export function certificateDerProblem(bytes: Buffer): CertificateDerProblem | undefined {
  // DER starts with a SEQUENCE tag. Checked first because X509Certificate also accepts PEM text, which is not what
  // Key Vault's `cer` or a PFX certificate bag holds.
  if (bytes[0] !== 0x30) return { kind: 'not-x509' };
  let parsed: X509Certificate;
  try {
    parsed = new X509Certificate(bytes);
  } catch {
    return { kind: 'not-x509' };
  }
  // OpenSSL stops at the end of the first certificate and ignores what follows; we refuse trailing bytes rather
  // than silently drop them.
  if (parsed.raw.length !== bytes.length) return { kind: 'trailing-bytes', extra: bytes.length - parsed.raw.length };
  return undefined;
}
