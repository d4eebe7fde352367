/**
 * The content of a certificate-backed secret: the Key Vault secret that holds a certificate's key and certificates
 * (the secret has a `kid`). Key Vault stores it in the form the certificate policy chose.
 *
 * Warnings are returned, never logged, and name only counts, block labels and content types.
 */
import { ContentError } from '../errors';
import { quote } from '../util/text';
import { type ChainProblem, orderCertificateChain } from './chain';
import { decodeStrictBase64, type SecretEncoding } from './encoding';
import { decodeGoPemBlocks, encodeGoPemBlock } from './go-pem';
import type * as Pkcs12 from './pkcs12';

export const CONTENT_TYPE_PEM = 'application/x-pem-file';
export const CONTENT_TYPE_PKCS12 = 'application/x-pkcs12';
/** Content types are not secret; quoted (bounded) so an odd value is visible in the message. */
const CONTENT_TYPE_SHOWN = 60;

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
  /** `<file>.crt`: only with writeCertAndKeyInSeparateFiles (possibly empty). */
  certificates?: Buffer;
  /** `<file>.key`: only with writeCertAndKeyInSeparateFiles (possibly empty). */
  privateKey?: Buffer;
  warnings: string[];
}

/**
 * The files are the bytes the reference provider writes:
 * - `application/x-pem-file`: PEM text, written as stored, whatever `objectFormat` says (a PEM-stored certificate has
 *   no PFX form; the reference writes the PEM and so do we, with a warning, since pods that read it run today).
 * - `application/x-pkcs12`: a PFX, base64-encoded. `objectFormat: pfx` writes that base64 text (or, with
 *   `objectEncoding: base64`, the binary PFX); otherwise the PFX becomes PEM: every private key as PKCS#8
 *   `PRIVATE KEY` first (encoded as Go's x509.MarshalPKCS8PrivateKey does: see pkcs8.ts), then the certificates,
 *   ordered leaf → intermediates → root when `constructPemChain` is on (chain.ts; a chain that cannot be completed
 *   keeps the stored order, every certificate included).
 * - With separate files (`.crt`, `.key`): the combined content's PEM blocks, decoded and encoded again by Go's rules
 *   (go-pem.ts: LF line ends, lines of 64), certificate blocks to `.crt`, every other block (private keys, `EC
 *   PARAMETERS`, …) to `.key`. For `pfx` output the content has no PEM block, so both files are empty, as there.
 *
 * Deliberate differences from the reference provider:
 * - `objectEncoding` only means something for `pfx`: utf-8 → base64 text, base64 → binary. For PEM output, or hex
 *   with `pfx`, the reference tries to decode the text and fails with a bare decoding error; we fail too, with a
 *   message that says what to set instead.
 * - PFX files it cannot read (AES/PBES2, SHA-256 MACs, plain key bags, keys other than RSA and EC) mount here; chains
 *   on which it fails the mount ("no leaf found", "cycle") keep the stored order here, with a warning.
 */
export function convertCertificateSecret(
  input: CertificateSecretInput,
  opts: CertificateSecretOptions,
): CertificateSecretContent {
  const contentType = normalizeContentType(input.contentType);
  switch (contentType) {
    case CONTENT_TYPE_PEM:
      return fromStoredPem(input.value, opts);
    case CONTENT_TYPE_PKCS12:
      return opts.format === 'pfx' ? storedPfx(input.value, opts) : pemFromPfx(input.value, opts);
    case '':
      throw new ContentError(
        `the certificate's secret has no content type; expected ${CONTENT_TYPE_PKCS12} or ${CONTENT_TYPE_PEM}`,
      );
    default:
      throw new ContentError(
        `the certificate's secret has content type ${quote(contentType, CONTENT_TYPE_SHOWN)}, ` +
          `which is neither ${CONTENT_TYPE_PKCS12} nor ${CONTENT_TYPE_PEM}`,
      );
  }
}

/** Media types are case-insensitive and may carry parameters (`; charset=…`), which say nothing we need. */
function normalizeContentType(contentType: string | undefined): string {
  return (contentType ?? '').split(';')[0]!.trim().toLowerCase();
}

function fromStoredPem(value: string, opts: CertificateSecretOptions): CertificateSecretContent {
  const warnings: string[] = [];
  if (opts.format === 'pfx') {
    warnings.push(
      `objectFormat pfx was requested, but this certificate is stored as PEM (${CONTENT_TYPE_PEM}), so Key Vault ` +
        'holds no PFX for it: the file is the stored PEM, as the reference provider writes it; remove objectFormat ' +
        `(or set pem), or create the certificate with content type ${CONTENT_TYPE_PKCS12}`,
    );
  }
  requireTextEncoding(opts.encoding);
  const content = Buffer.from(value, 'utf8');
  if (!opts.writeCertAndKeyInSeparateFiles) return { content, warnings };

  const { certificates, privateKey, certificateCount, keyCount } = splitCertificatesAndKeys(value);
  warnings.push(...missingParts(certificateCount, keyCount));
  return { content, certificates, privateKey, warnings };
}

/**
 * `.crt` and `.key` from PEM text, as the reference splits it: each block Go's pem.Decode finds, encoded again by Go's
 * rules, certificates to `.crt`, everything else to `.key`. Text between blocks and blocks Go cannot read are dropped.
 */
function splitCertificatesAndKeys(text: string): {
  certificates: Buffer;
  privateKey: Buffer;
  certificateCount: number;
  /** Blocks that are private keys (PKCS#8, encrypted PKCS#8, RSA, EC): for the "no private key" warning. */
  keyCount: number;
} {
  let certificates = '';
  let others = '';
  let certificateCount = 0;
  let keyCount = 0;
  for (const block of decodeGoPemBlocks(text)) {
    if (block.label === 'CERTIFICATE') {
      certificates += encodeGoPemBlock(block);
      certificateCount++;
    } else {
      others += encodeGoPemBlock(block);
      if (block.label.endsWith('PRIVATE KEY')) keyCount++;
    }
  }
  return { certificates: Buffer.from(certificates, 'utf8'), privateKey: Buffer.from(others, 'utf8'), certificateCount, keyCount };
}

function storedPfx(value: string, opts: CertificateSecretOptions): CertificateSecretContent {
  const content = storedPfxContent(value, opts.encoding);
  if (!opts.writeCertAndKeyInSeparateFiles) return { content, warnings: [] };
  // The reference splits the base64 text like PEM: it finds no block, so it writes both files empty. Applications
  // (or Secret syncs) that name those files keep finding them.
  return {
    content,
    certificates: Buffer.alloc(0),
    privateKey: Buffer.alloc(0),
    warnings: ['with objectFormat pfx the .crt and .key files are empty (the PFX holds no PEM), as with the reference provider'],
  };
}

function storedPfxContent(value: string, encoding: SecretEncoding): Buffer {
  switch (encoding) {
    case 'utf-8':
      return Buffer.from(value, 'utf8'); // the base64 text, as stored
    case 'base64':
      return decodePfxBase64(value); // the binary PFX
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
      warnings.push(`the ${stored.length} certificates in the PFX ${CHAIN_PROBLEMS[chain.problem ?? 'incomplete']}`);
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

const CHAIN_PROBLEMS: Record<ChainProblem, string> = {
  incomplete:
    'do not form one chain linked by key identifiers (an intermediate may be missing, or one is stored twice); they ' +
    'are written in their stored order, as the reference provider writes them',
  'no-leaf':
    'all issue one another (each is linked to another by key identifiers), so there is no leaf; the reference ' +
    'provider fails the mount here ("no leaf found"), we write them in their stored order',
  cycle:
    'are linked in a loop by key identifiers (a certificate stored twice?); the reference provider fails the mount ' +
    'here ("constructing chain resulted in cycle"), we write them in their stored order',
  unreadable: 'include one that is not a readable X.509 certificate; they are written in their stored order',
};

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

let pkcs12: typeof Pkcs12 | undefined;

/**
 * The PKCS#12 reader, loaded on first use: it brings node-forge (a few MiB resident), and many nodes never mount a
 * PFX-backed certificate. Loading is synchronous and happens once per process.
 */
function loadPkcs12(): typeof Pkcs12 {
  pkcs12 ??= require('./pkcs12') as typeof Pkcs12;
  return pkcs12;
}
