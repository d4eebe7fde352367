/**
 * The content of a certificate-backed secret: the Key Vault secret that holds a certificate's key and certificates
 * (the secret has a `kid`). Key Vault stores it in the form the certificate policy chose:
 * - `application/x-pem-file`: PEM text, written as stored. With separate files requested, the certificate blocks
 *   go to `.crt` and the private key blocks to `.key`, wherever they appear in the bundle (the key may come last).
 * - `application/x-pkcs12`: a PFX, base64-encoded. `objectFormat: pfx` writes that base64 text (or, with
 *   `objectEncoding: base64`, the binary PFX); otherwise the PFX becomes PEM: every private key (PKCS#8) first, then
 *   the certificates, ordered leaf → intermediates → root when `constructPemChain` is on.
 *
 * Deliberate differences from the reference provider (CONTRACT §3):
 * - a PEM-stored certificate requested as `pfx` is an error (the reference silently wrote PEM into a file the user
 *   expects to be a PFX);
 * - an incomplete chain keeps every certificate in stored order and returns a warning (the reference dropped the
 *   certificates it could not link);
 * - `objectEncoding` only means something for `pfx`: utf-8 → base64 text, base64 → binary. For PEM output, or hex
 *   with `pfx`, the reference tried to decode the text and failed with a bare decoding error; we fail with a message
 *   that says what to set instead.
 * - for `pfx` output no `.crt`/`.key` parts are produced (the reference wrote two empty files).
 *
 * Warnings are returned, never logged, and name only counts, block labels and content types.
 */
import { ContentError } from '../errors';
import { orderCertificateChain } from './chain';
import { decodeStrictBase64, type SecretEncoding } from './encoding';
import { joinPemBlocks, type PemBlock, splitPemBlocks } from './pem';
import type * as Pkcs12 from './pkcs12';

export const CONTENT_TYPE_PEM = 'application/x-pem-file';
export const CONTENT_TYPE_PKCS12 = 'application/x-pkcs12';

export interface CertificateSecretInput {
  /** The secret's value: PEM text, or the PFX in base64. */
  value: string;
  contentType: string | undefined;
}

export interface CertificateSecretOptions {
  format: 'pem' | 'pfx';
  encoding: SecretEncoding;
  constructPemChain: boolean;
  writeCertAndKeyInSeparateFiles: boolean;
}

export interface CertificateSecretContent {
  /** The main file. */
  content: Buffer;
  /** `<file>.crt`: only with writeCertAndKeyInSeparateFiles and PEM output (possibly empty). */
  certificates?: Buffer;
  /** `<file>.key`: only with writeCertAndKeyInSeparateFiles and PEM output (possibly empty). */
  privateKey?: Buffer;
  warnings: string[];
}

export function convertCertificateSecret(
  input: CertificateSecretInput,
  opts: CertificateSecretOptions,
): CertificateSecretContent {
  const contentType = normalizeContentType(input.contentType);
  switch (contentType) {
    case CONTENT_TYPE_PEM:
      return fromStoredPem(input.value, opts);
    case CONTENT_TYPE_PKCS12:
      return opts.format === 'pfx' ? storedPfx(input.value, opts.encoding) : pemFromPfx(input.value, opts);
    case '':
      throw new ContentError(
        `the certificate's secret has no content type; expected ${CONTENT_TYPE_PKCS12} or ${CONTENT_TYPE_PEM}`,
      );
    default:
      throw new ContentError(
        `the certificate's secret has content type ${quote(contentType)}, ` +
          `which is neither ${CONTENT_TYPE_PKCS12} nor ${CONTENT_TYPE_PEM}`,
      );
  }
}

/** Media types are case-insensitive and may carry parameters (`; charset=…`), which say nothing we need. */
function normalizeContentType(contentType: string | undefined): string {
  return (contentType ?? '').split(';')[0]!.trim().toLowerCase();
}

function fromStoredPem(value: string, opts: CertificateSecretOptions): CertificateSecretContent {
  if (opts.format === 'pfx') {
    throw new ContentError(
      `objectFormat pfx was requested, but this certificate is stored as PEM (${CONTENT_TYPE_PEM}), so Key Vault ` +
        'holds no PFX for it: remove objectFormat (or set pem), or create the certificate with content type ' +
        CONTENT_TYPE_PKCS12,
    );
  }
  requireTextEncoding(opts.encoding);
  const content = Buffer.from(value, 'utf8');
  if (!opts.writeCertAndKeyInSeparateFiles) return { content, warnings: [] };

  const warnings: string[] = [];
  const certificates: PemBlock[] = [];
  const keys: PemBlock[] = [];
  const ignored = new Set<string>();
  for (const block of splitPemBlocks(value)) {
    if (block.label === 'CERTIFICATE') certificates.push(block);
    else if (block.label.endsWith('PRIVATE KEY')) keys.push(block); // PKCS#8, encrypted PKCS#8, RSA, EC
    else ignored.add(block.label);
  }
  if (ignored.size > 0) {
    warnings.push(`PEM blocks of type ${[...ignored].join(', ')} are in the combined file only, not in .crt or .key`);
  }
  warnings.push(...missingParts(certificates.length, keys.length));
  return {
    content,
    certificates: Buffer.from(joinPemBlocks(certificates), 'utf8'),
    privateKey: Buffer.from(joinPemBlocks(keys), 'utf8'),
    warnings,
  };
}

function storedPfx(value: string, encoding: SecretEncoding): CertificateSecretContent {
  switch (encoding) {
    case 'utf-8':
      return { content: Buffer.from(value, 'utf8'), warnings: [] }; // the base64 text, as stored
    case 'base64':
      return { content: decodePfxBase64(value), warnings: [] }; // the binary PFX
    case 'hex':
      throw new ContentError(
        'objectEncoding hex does not apply to objectFormat pfx: the PFX is stored as base64; use objectEncoding ' +
          'base64 for the binary PFX, or utf-8 (the default) for the base64 text',
      );
  }
}

function pemFromPfx(value: string, opts: CertificateSecretOptions): CertificateSecretContent {
  requireTextEncoding(opts.encoding);
  // Key Vault's PFX secrets have no password.
  const { privateKeys, certificates: stored } = loadPkcs12().decodePkcs12(decodePfxBase64(value), '');
  const warnings: string[] = [];

  let certificates = stored;
  if (opts.constructPemChain && stored.length > 1) {
    const chain = orderCertificateChain(stored);
    if (chain.complete) {
      certificates = chain.certificates;
    } else {
      warnings.push(
        `the ${stored.length} certificates in the PFX do not form one chain (an intermediate may be missing); ` +
          'they are written in their stored order',
      );
    }
  }
  warnings.push(...missingParts(certificates.length, privateKeys.length));

  const keyPem = privateKeys.join('');
  const certPem = certificates.join('');
  const content = Buffer.from(keyPem + certPem, 'utf8');
  if (!opts.writeCertAndKeyInSeparateFiles) return { content, warnings };
  return {
    content,
    certificates: Buffer.from(certPem, 'utf8'),
    privateKey: Buffer.from(keyPem, 'utf8'),
    warnings,
  };
}

function decodePfxBase64(value: string): Buffer {
  return decodeStrictBase64(value, 'the stored PFX');
}

/** PEM output is text: only utf-8 (the default) makes sense. */
function requireTextEncoding(encoding: SecretEncoding): void {
  if (encoding !== 'utf-8') {
    throw new ContentError(
      `objectEncoding ${encoding} does not apply to a certificate written as PEM text; remove objectEncoding, or ` +
        'use objectFormat pfx with objectEncoding base64 to get the binary PFX',
    );
  }
}

function missingParts(certificates: number, keys: number): string[] {
  const warnings: string[] = [];
  if (certificates === 0) warnings.push('the certificate secret contains no certificate');
  // A certificate whose key is not exportable comes without its private key.
  if (keys === 0) warnings.push('the certificate secret contains no private key');
  return warnings;
}

/** Content types are not secret; quote (bounded) so an odd value is visible in the message. */
function quote(value: string): string {
  return JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value);
}

let pkcs12: typeof Pkcs12 | undefined;

/**
 * The PKCS#12 reader, loaded on first use: it brings node-forge (a few MiB resident), and many nodes never mount a
 * PFX-backed certificate. Loading is synchronous and happens once per process.
 */
function loadPkcs12(): typeof Pkcs12 {
  pkcs12 ??= require('./pkcs12') as typeof Pkcs12;
  return pkcs12;
}
