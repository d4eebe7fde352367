/**
 * The PFX structure walk: the outer PFX and its MAC data, the authenticated safe's content blocks, the bag lists, and
 * the key and certificate bags turned into PEM. Keys are read by Node (any algorithm) and written as Go does;
 * certificates are written with their stored bytes, byte for byte.
 */
import { createPrivateKey } from 'node:crypto';
import { ContentError } from '../../errors';
import { certificateDerProblem } from '../certificate';
import { pemEncode } from '../pem';
import { goPkcs8Der } from '../pkcs8';
import { type Asn1, explicit, integer, iterationCount, octets, oid, parse, parseDer, required, sequence, toDer } from './asn1';
import { type Budget, decrypt, type MacData, type Password } from './schemes';

export interface DecodedPkcs12 {
  /** Every private key, as PKCS#8 `PRIVATE KEY` PEM, in stored order. */
  privateKeys: string[];
  /** Every X.509 certificate, as `CERTIFICATE` PEM with the stored bytes, in stored order. */
  certificates: string[];
}

const OID = {
  data: '1.2.840.113549.1.7.1',
  encryptedData: '1.2.840.113549.1.7.6',
  keyBag: '1.2.840.113549.1.12.10.1.1',
  pkcs8ShroudedKeyBag: '1.2.840.113549.1.12.10.1.2',
  certBag: '1.2.840.113549.1.12.10.1.3',
  safeContentsBag: '1.2.840.113549.1.12.10.1.6',
  x509Certificate: '1.2.840.113549.1.9.22.1',
} as const;

// PFX ::= SEQUENCE { version INTEGER (3), authSafe ContentInfo, macData MacData OPTIONAL }
export function readPfx(pfx: Buffer): { authSafe: Buffer; macData: MacData | undefined } {
  let root: Asn1;
  try {
    root = parseDer(pfx);
  } catch {
    throw new ContentError(`the PFX (${pfx.length} bytes) is not a PKCS#12 file: it is not valid DER/BER`);
  }
  const [version, contentInfo, mac] = sequence(root, 'the PFX');
  if (integer(version, 'the PFX version') !== 3) {
    throw new ContentError('the PFX has an unsupported version (only PKCS#12 version 3 exists)');
  }
  const [contentType, content] = sequence(contentInfo, 'the PFX content');
  const type = oid(contentType, 'the PFX content type');
  if (type !== OID.data) {
    // signedData here means public-key integrity mode, which nothing we read from Key Vault uses.
    throw new ContentError(`the PFX uses integrity mode ${type}; only password integrity (data) is supported`);
  }
  const authSafe = octets(explicit(content, 'the PFX content'), 'the PFX content');
  return { authSafe, macData: mac ? readMacData(mac) : undefined };
}

// MacData ::= SEQUENCE { mac DigestInfo, macSalt OCTET STRING, iterations INTEGER DEFAULT 1 }
// DigestInfo ::= SEQUENCE { digestAlgorithm AlgorithmIdentifier, digest OCTET STRING }
function readMacData(node: Asn1): MacData {
  const [digestInfo, salt, iterations] = sequence(node, 'the PFX MAC');
  const [algorithm, digest] = sequence(digestInfo, 'the PFX MAC digest');
  return {
    algorithm: required(algorithm, 'the PFX MAC algorithm'),
    digest: octets(digest, 'the PFX MAC digest'),
    salt: octets(salt, 'the PFX MAC salt'),
    iterations: iterations ? iterationCount(iterations, 'the PFX MAC iteration count') : 1,
  };
}

// AuthenticatedSafe ::= SEQUENCE OF ContentInfo (data: plain SafeContents; encryptedData: encrypted SafeContents)
export function readAuthenticatedSafe(authSafe: Buffer, pw: Password, budget: Budget): DecodedPkcs12 {
  const result: DecodedPkcs12 = { privateKeys: [], certificates: [] };
  for (const contentInfo of sequence(parse(authSafe, 'the PFX contents'), 'the PFX contents')) {
    const [contentType, content] = sequence(contentInfo, 'a PFX content block');
    const type = oid(contentType, 'a PFX content block type');
    let safeContents: Buffer;
    if (type === OID.data) {
      safeContents = octets(explicit(content, 'a PFX content block'), 'a PFX content block');
    } else if (type === OID.encryptedData) {
      safeContents = readEncryptedData(explicit(content, 'an encrypted PFX block'), pw, budget);
    } else {
      // envelopedData (public-key privacy mode) would need the recipient's private key.
      throw new ContentError(`the PFX contains a content block of unsupported type ${type}`);
    }
    if (safeContents.length > 0) readSafeContents(parse(safeContents, 'a PFX bag list'), pw, budget, result, 0);
  }
  return result;
}

// EncryptedData ::= SEQUENCE { version INTEGER, encryptedContentInfo EncryptedContentInfo }
// EncryptedContentInfo ::= SEQUENCE { contentType OID, contentEncryptionAlgorithm AlgorithmIdentifier,
//                                     encryptedContent [0] IMPLICIT OCTET STRING OPTIONAL }
function readEncryptedData(node: Asn1, pw: Password, budget: Budget): Buffer {
  const [, info] = sequence(node, 'an encrypted PFX block');
  const [, algorithm, encrypted] = sequence(info, 'an encrypted PFX block');
  if (!encrypted) return Buffer.alloc(0);
  const ciphertext = octets(encrypted, 'encrypted PFX content', true);
  return decrypt(required(algorithm, 'an encryption algorithm'), ciphertext, pw, budget);
}

// SafeContents ::= SEQUENCE OF SafeBag
// SafeBag ::= SEQUENCE { bagId OID, bagValue [0] EXPLICIT ANY, bagAttributes SET OF Attribute OPTIONAL }
function readSafeContents(list: Asn1, pw: Password, budget: Budget, result: DecodedPkcs12, depth: number): void {
  for (const bag of sequence(list, 'a PFX bag list')) {
    const [bagId, bagValue] = sequence(bag, 'a PFX bag');
    const value = explicit(bagValue, 'a PFX bag');
    switch (oid(bagId, 'a PFX bag type')) {
      case OID.keyBag:
        result.privateKeys.push(privateKeyPem(toDer(value), result.privateKeys.length));
        break;
      case OID.pkcs8ShroudedKeyBag: {
        // EncryptedPrivateKeyInfo ::= SEQUENCE { encryptionAlgorithm AlgorithmIdentifier, encryptedData OCTET STRING }
        const [algorithm, data] = sequence(value, 'an encrypted private key');
        const ciphertext = octets(data, 'an encrypted private key');
        const pkcs8 = decrypt(required(algorithm, 'an encryption algorithm'), ciphertext, pw, budget);
        result.privateKeys.push(privateKeyPem(pkcs8, result.privateKeys.length));
        break;
      }
      case OID.certBag: {
        // CertBag ::= SEQUENCE { certId OID, certValue [0] EXPLICIT OCTET STRING }
        const [certId, certValue] = sequence(value, 'a certificate bag');
        // Other certificate kinds (SDSI) cannot be written as X.509 PEM; no issuer we know produces them.
        if (oid(certId, 'a certificate bag type') !== OID.x509Certificate) break;
        const der = octets(explicit(certValue, 'a certificate bag'), 'a certificate bag');
        result.certificates.push(certificatePem(der, result.certificates.length));
        break;
      }
      case OID.safeContentsBag:
        // Nested bag lists are legal; real files hardly nest at all, so a small depth limit is plenty.
        if (depth >= 4) throw new ContentError('the PFX nests bag lists too deeply');
        readSafeContents(value, pw, budget, result, depth + 1);
        break;
      default:
        // CRL and secret bags carry nothing that belongs in a PEM key/certificate file.
        break;
    }
  }
}

function privateKeyPem(pkcs8: Buffer, index: number): string {
  try {
    const key = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' });
    // Go's encoding, as the reference writes it (an EC key gets its public key filled in).
    return pemEncode('PRIVATE KEY', goPkcs8Der(key));
  } catch {
    throw new ContentError(
      `private key ${index + 1} in the PFX is not a readable PKCS#8 key ` +
        '(wrong password, damaged file or unsupported key type)',
    );
  }
}

function certificatePem(der: Buffer, index: number): string {
  const problem = certificateDerProblem(der);
  if (problem?.kind === 'not-x509') {
    throw new ContentError(`certificate ${index + 1} in the PFX is not a valid X.509 certificate`);
  }
  if (problem?.kind === 'trailing-bytes') {
    throw new ContentError(`certificate ${index + 1} in the PFX has unexpected bytes after its DER encoding`);
  }
  return pemEncode('CERTIFICATE', der);
}
