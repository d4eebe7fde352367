/**
 * PKCS#12 (PFX) → PEM private keys (PKCS#8) and certificates.
 *
 * Who does what, and why:
 * - node-forge parses the container (its ASN.1 reader accepts the BER that PKCS#12 allows: indefinite lengths and
 *   chunked OCTET STRINGs, which Windows and Java produce), derives PKCS#12 keys (RFC 7292 appendix B, used by the
 *   MAC and by the legacy "pbeWithSHAAnd…" schemes) and decrypts RC2, which Node's OpenSSL 3 only has in its legacy
 *   provider (not loaded by Node; `tls.createSecureContext({ pfx })` therefore rejects RC2 PFX files).
 * - Node's crypto does everything else: HMAC for the MAC, PBKDF2 and AES/3DES for PBES2, 3DES for the legacy 3DES
 *   scheme, and it reads the keys (any algorithm: RSA, EC, Ed25519…) and the certificates.
 *
 * We walk the PFX structure ourselves instead of calling `forge.pkcs12.pkcs12FromAsn1`. forge 1.4.3 does decode
 * every variant we need (RC2-40, 3DES, PBES2 with AES and HMAC-SHA1…512 PRFs, SHA-1…SHA-512 MACs — checked against
 * OpenSSL 3.0 output), but its result is not what we must write:
 * - it turns RSA certificates into forge objects; writing them out again rebuilds the outer signature algorithm from
 *   parsed fields, which is not guaranteed to reproduce the stored bytes (a different fingerprint, and for some
 *   encodings an outer algorithm that no longer matches the signed one). We want the stored DER, byte for byte.
 * - it passes one password string to every scheme, but PBES2 needs the password as UTF-8 bytes while the PKCS#12
 *   KDF needs it as UTF-16 (BMPString); forge's PBKDF2 mangles non-ASCII text, so such a PFX fails to decrypt.
 * - its PBKDF2 is JavaScript, about 20x slower than Node's native one on the same iteration count.
 * - it has no limit on iteration counts; a crafted PFX could keep the provider's event loop busy for minutes.
 *
 * Passwords: Key Vault's PFX secrets have no password, and "no password" is ambiguous in PKCS#12: the PKCS#12 KDF
 * can get zero bytes or a lone 16-bit terminator (the empty BMPString). OpenSSL writes the latter; other writers
 * (forge with a null password, some Windows exports) the former. For an empty password we try both, as OpenSSL's
 * reader does.
 */
import { createDecipheriv, createHmac, createPrivateKey, pbkdf2Sync, timingSafeEqual, X509Certificate } from 'crypto';
import * as forge from 'node-forge';
import { ContentError } from '../errors';
import { pemEncode } from './pem';
import { goPkcs8Der } from './pkcs8';

export interface DecodedPkcs12 {
  /** Every private key, as PKCS#8 `PRIVATE KEY` PEM, in stored order. */
  privateKeys: string[];
  /** Every X.509 certificate, as `CERTIFICATE` PEM with the stored bytes, in stored order. */
  certificates: string[];
}

/**
 * Upper bound on the key-derivation iterations one PFX may ask for, summed over its MAC and all encrypted parts.
 * Real files use 2,000–2,048 per part (Windows, OpenSSL, Key Vault) and at most ~100,000 (Java); three parts at the
 * largest common count fit easily. The bound keeps a crafted file from blocking the provider (the PKCS#12 KDF runs in
 * JavaScript at roughly 1.5 µs per iteration and output block).
 */
const MAX_TOTAL_ITERATIONS = 1_000_000;

const OID = {
  data: '1.2.840.113549.1.7.1',
  encryptedData: '1.2.840.113549.1.7.6',
  keyBag: '1.2.840.113549.1.12.10.1.1',
  pkcs8ShroudedKeyBag: '1.2.840.113549.1.12.10.1.2',
  certBag: '1.2.840.113549.1.12.10.1.3',
  safeContentsBag: '1.2.840.113549.1.12.10.1.6',
  x509Certificate: '1.2.840.113549.1.9.22.1',
  pbeWithSHAAnd128BitRC2CBC: '1.2.840.113549.1.12.1.5',
  pbeWithSHAAnd40BitRC2CBC: '1.2.840.113549.1.12.1.6',
  pbeWithSHAAnd3KeyTripleDESCBC: '1.2.840.113549.1.12.1.3',
  pbeWithSHAAnd2KeyTripleDESCBC: '1.2.840.113549.1.12.1.4',
  pbes2: '1.2.840.113549.1.5.13',
  pbkdf2: '1.2.840.113549.1.5.12',
  pbmac1: '1.2.840.113549.1.5.14',
  desEde3Cbc: '1.2.840.113549.3.7',
} as const;

/** Digests usable for the PKCS#12 MAC: Node's name, forge's implementation (for the KDF), output length. */
const MAC_DIGESTS: Record<string, { node: string; forge: () => forge.md.MessageDigest; size: number }> = {
  '1.3.14.3.2.26': { node: 'sha1', forge: () => forge.md.sha1.create(), size: 20 },
  '2.16.840.1.101.3.4.2.1': { node: 'sha256', forge: () => forge.md.sha256.create(), size: 32 },
  '2.16.840.1.101.3.4.2.2': { node: 'sha384', forge: () => forge.md.sha384.create(), size: 48 },
  '2.16.840.1.101.3.4.2.3': { node: 'sha512', forge: () => forge.md.sha512.create(), size: 64 },
};

/** PBKDF2 pseudo-random functions (HMAC with …) by OID, as Node digest names. */
const PBKDF2_PRFS: Record<string, string> = {
  '1.2.840.113549.2.7': 'sha1',
  '1.2.840.113549.2.8': 'sha224',
  '1.2.840.113549.2.9': 'sha256',
  '1.2.840.113549.2.10': 'sha384',
  '1.2.840.113549.2.11': 'sha512',
};

/** PBES2 ciphers by OID: Node cipher name and key length in bytes (all CBC with PKCS#7 padding). */
const PBES2_CIPHERS: Record<string, { node: string; keyLength: number }> = {
  '2.16.840.1.101.3.4.1.2': { node: 'aes-128-cbc', keyLength: 16 },
  '2.16.840.1.101.3.4.1.22': { node: 'aes-192-cbc', keyLength: 24 },
  '2.16.840.1.101.3.4.1.42': { node: 'aes-256-cbc', keyLength: 32 },
  [OID.desEde3Cbc]: { node: 'des-ede3-cbc', keyLength: 24 },
};

/**
 * The password forms one decoding attempt uses. `bmp` feeds the PKCS#12 KDF (forge turns the string into UTF-16 with
 * a terminator; `null` means "no password": zero bytes); `utf8` feeds PBKDF2.
 */
interface Password {
  bmp: string | null;
  utf8: Buffer;
}

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

// ---------------------------------------------------------------------------------------------------------------
// PFX ::= SEQUENCE { version INTEGER (3), authSafe ContentInfo, macData MacData OPTIONAL }

interface MacData {
  algorithm: forge.asn1.Asn1;
  digest: Buffer;
  salt: Buffer;
  iterations: number;
}

function readPfx(pfx: Buffer): { authSafe: Buffer; macData: MacData | undefined } {
  let root: forge.asn1.Asn1;
  try {
    // strict: lengths must fit; parseAllBytes: no trailing data (Go's pkcs12, used by the reference, refuses it
    // too); decodeBitStrings off: nothing here needs forge to guess at BIT STRING contents.
    root = fromDer(pfx.toString('binary'), { strict: true, parseAllBytes: true, decodeBitStrings: false });
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
function readMacData(node: forge.asn1.Asn1): MacData {
  const [digestInfo, salt, iterations] = sequence(node, 'the PFX MAC');
  const [algorithm, digest] = sequence(digestInfo, 'the PFX MAC digest');
  return {
    algorithm: required(algorithm, 'the PFX MAC algorithm'),
    digest: octets(digest, 'the PFX MAC digest'),
    salt: octets(salt, 'the PFX MAC salt'),
    iterations: iterations ? iterationCount(iterations, 'the PFX MAC iteration count') : 1,
  };
}

function macMatches(mac: MacData, authSafe: Buffer, pw: Password, budget: Budget): boolean {
  const [algOid, params] = sequence(mac.algorithm, 'the PFX MAC algorithm');
  const algorithm = oid(algOid, 'the PFX MAC algorithm');
  let expected: Buffer;
  if (algorithm === OID.pbmac1) {
    // RFC 9579 (OpenSSL 3.4+ `-pbmac1_pbkdf2`, FIPS-friendly): the MAC key comes from PBKDF2 over the UTF-8
    // password; MacData's own salt and iteration count are then unused.
    const [kdf, scheme] = sequence(params, 'the PBMAC1 parameters');
    const derived = readPbkdf2(kdf, 'PBMAC1');
    const hmac = PBKDF2_PRFS[oid(sequence(scheme, 'the PBMAC1 MAC scheme')[0], 'the PBMAC1 MAC scheme')];
    if (!hmac) throw new ContentError('the PFX MAC (PBMAC1) uses an unsupported HMAC');
    if (derived.keyLength === undefined) throw new ContentError('the PFX MAC (PBMAC1) does not state its key length');
    budget.spend(derived.iterations);
    const key = pbkdf2Sync(pw.utf8, derived.salt, derived.iterations, derived.keyLength, derived.prf);
    expected = createHmac(hmac, key).update(authSafe).digest();
  } else {
    const digest = MAC_DIGESTS[algorithm];
    if (!digest) throw new ContentError(`the PFX MAC uses an unsupported digest algorithm ${algorithm}`);
    budget.spend(mac.iterations);
    const key = pkcs12Kdf(pw.bmp, mac.salt, 3, mac.iterations, digest.size, digest.forge());
    expected = createHmac(digest.node, key).update(authSafe).digest();
  }
  return expected.length === mac.digest.length && timingSafeEqual(expected, mac.digest);
}

// ---------------------------------------------------------------------------------------------------------------
// AuthenticatedSafe ::= SEQUENCE OF ContentInfo (data: plain SafeContents; encryptedData: encrypted SafeContents)

function readAuthenticatedSafe(authSafe: Buffer, pw: Password, budget: Budget): DecodedPkcs12 {
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
function readEncryptedData(node: forge.asn1.Asn1, pw: Password, budget: Budget): Buffer {
  const [, info] = sequence(node, 'an encrypted PFX block');
  const [, algorithm, encrypted] = sequence(info, 'an encrypted PFX block');
  if (!encrypted) return Buffer.alloc(0);
  const ciphertext = octets(encrypted, 'encrypted PFX content', true);
  return decrypt(required(algorithm, 'an encryption algorithm'), ciphertext, pw, budget);
}

// SafeContents ::= SEQUENCE OF SafeBag
// SafeBag ::= SEQUENCE { bagId OID, bagValue [0] EXPLICIT ANY, bagAttributes SET OF Attribute OPTIONAL }
function readSafeContents(
  list: forge.asn1.Asn1,
  pw: Password,
  budget: Budget,
  result: DecodedPkcs12,
  depth: number,
): void {
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
  const invalid = () => new ContentError(`certificate ${index + 1} in the PFX is not a valid X.509 certificate`);
  if (der[0] !== 0x30) throw invalid(); // not DER (X509Certificate would also accept PEM text)
  let parsed: X509Certificate;
  try {
    parsed = new X509Certificate(der);
  } catch {
    throw invalid();
  }
  if (parsed.raw.length !== der.length) {
    throw new ContentError(`certificate ${index + 1} in the PFX has unexpected bytes after its DER encoding`);
  }
  return pemEncode('CERTIFICATE', der);
}

// ---------------------------------------------------------------------------------------------------------------
// Decryption: AlgorithmIdentifier { algorithm OID, parameters }

function decrypt(algorithm: forge.asn1.Asn1, ciphertext: Buffer, pw: Password, budget: Budget): Buffer {
  const [algOid, params] = sequence(algorithm, 'an encryption algorithm');
  const scheme = oid(algOid, 'an encryption algorithm');
  switch (scheme) {
    case OID.pbes2:
      return decryptPbes2(required(params, 'the PBES2 parameters'), ciphertext, pw, budget);
    case OID.pbeWithSHAAnd3KeyTripleDESCBC:
      return decryptPkcs12Pbe(params, ciphertext, pw, budget, 'des-ede3-cbc', 24);
    case OID.pbeWithSHAAnd2KeyTripleDESCBC:
      return decryptPkcs12Pbe(params, ciphertext, pw, budget, 'des-ede-cbc', 16);
    case OID.pbeWithSHAAnd40BitRC2CBC:
      return decryptPkcs12Pbe(params, ciphertext, pw, budget, 'rc2', 5);
    case OID.pbeWithSHAAnd128BitRC2CBC:
      return decryptPkcs12Pbe(params, ciphertext, pw, budget, 'rc2', 16);
    default:
      // RC4 variants and anything newer: named by OID so the user can see what the file uses.
      throw new ContentError(`the PFX is encrypted with an unsupported algorithm ${scheme}`);
  }
}

// pkcs-12PbeParams ::= SEQUENCE { salt OCTET STRING, iterations INTEGER }
function decryptPkcs12Pbe(
  params: forge.asn1.Asn1 | undefined,
  ciphertext: Buffer,
  pw: Password,
  budget: Budget,
  cipher: 'des-ede3-cbc' | 'des-ede-cbc' | 'rc2',
  keyLength: number,
): Buffer {
  const [saltNode, iterNode] = sequence(required(params, 'the PKCS#12 PBE parameters'), 'the PKCS#12 PBE parameters');
  const salt = octets(saltNode, 'the PKCS#12 PBE salt');
  const iterations = iterationCount(iterNode, 'the PKCS#12 PBE iteration count');
  budget.spend(2 * iterations);
  // The legacy schemes always use SHA-1 in the KDF: ID 1 derives the key, ID 2 the IV.
  const key = pkcs12Kdf(pw.bmp, salt, 1, iterations, keyLength, forge.md.sha1.create());
  const iv = pkcs12Kdf(pw.bmp, salt, 2, iterations, 8, forge.md.sha1.create());
  if (cipher === 'rc2') return decryptRc2(ciphertext, key, iv);
  return nodeDecrypt(cipher, key, iv, ciphertext);
}

// PBES2-params ::= SEQUENCE { keyDerivationFunc AlgorithmIdentifier (PBKDF2), encryptionScheme AlgorithmIdentifier }
function decryptPbes2(params: forge.asn1.Asn1, ciphertext: Buffer, pw: Password, budget: Budget): Buffer {
  const [kdf, scheme] = sequence(params, 'the PBES2 parameters');
  const derived = readPbkdf2(kdf, 'PBES2');
  const [encOid, ivNode] = sequence(scheme, 'the PBES2 encryption scheme');
  const encryption = oid(encOid, 'the PBES2 encryption scheme');
  const cipher = PBES2_CIPHERS[encryption];
  if (!cipher) throw new ContentError(`the PFX is encrypted with an unsupported PBES2 cipher ${encryption}`);
  if (derived.keyLength !== undefined && derived.keyLength !== cipher.keyLength) {
    throw new ContentError('the PFX PBES2 parameters state a key length that does not fit the cipher');
  }
  budget.spend(derived.iterations);
  const key = pbkdf2Sync(pw.utf8, derived.salt, derived.iterations, cipher.keyLength, derived.prf);
  return nodeDecrypt(cipher.node, key, octets(ivNode, 'the PBES2 IV'), ciphertext);
}

// PBKDF2-params ::= SEQUENCE { salt OCTET STRING (the "otherSource" choice is reserved), iterationCount INTEGER,
//                              keyLength INTEGER OPTIONAL, prf AlgorithmIdentifier DEFAULT hmacWithSHA1 }
function readPbkdf2(
  node: forge.asn1.Asn1 | undefined,
  what: string,
): { salt: Buffer; iterations: number; keyLength: number | undefined; prf: string } {
  const [kdfOid, params] = sequence(required(node, `the ${what} key derivation`), `the ${what} key derivation`);
  if (oid(kdfOid, `the ${what} key derivation`) !== OID.pbkdf2) {
    throw new ContentError(`the PFX ${what} parameters use a key derivation other than PBKDF2`);
  }
  const fields = sequence(params, 'the PBKDF2 parameters');
  const salt = octets(fields[0], 'the PBKDF2 salt');
  const iterations = iterationCount(fields[1], 'the PBKDF2 iteration count');
  let keyLength: number | undefined;
  let prf = 'sha1';
  for (const field of fields.slice(2)) {
    if (field.tagClass === forge.asn1.Class.UNIVERSAL && field.type === forge.asn1.Type.INTEGER) {
      keyLength = integer(field, 'the PBKDF2 key length');
    } else {
      const prfOid = oid(sequence(field, 'the PBKDF2 PRF')[0], 'the PBKDF2 PRF');
      const name = PBKDF2_PRFS[prfOid];
      if (!name) throw new ContentError(`the PFX uses an unsupported PBKDF2 PRF ${prfOid}`);
      prf = name;
    }
  }
  return { salt, iterations, keyLength, prf };
}

function nodeDecrypt(cipher: string, key: Buffer, iv: Buffer, ciphertext: Buffer): Buffer {
  try {
    const decipher = createDecipheriv(cipher, key, iv);
    return Buffer.concat([decipher.update(ciphertext), decipher.final()]);
  } catch {
    // Bad padding after decryption almost always means a wrong password.
    throw new ContentError('a part of the PFX could not be decrypted: wrong password or damaged file');
  }
}

function decryptRc2(ciphertext: Buffer, key: Buffer, iv: Buffer): Buffer {
  if (iv.length !== 8 || ciphertext.length === 0 || ciphertext.length % 8 !== 0) {
    throw new ContentError('a part of the PFX could not be decrypted: wrong password or damaged file');
  }
  const rc2 = forge.rc2.createDecryptionCipher(key.toString('binary'), key.length * 8);
  rc2.start(iv.toString('binary'));
  rc2.update(forge.util.createBuffer(ciphertext.toString('binary')));
  // forge's own unpadding only checks the last byte; we keep the padding (a no-op pad function) and check it fully.
  rc2.finish(() => true);
  return stripPkcs7Padding(Buffer.from(rc2.output.getBytes(), 'binary'), 8);
}

function stripPkcs7Padding(plain: Buffer, blockSize: number): Buffer {
  const n = plain.length > 0 ? plain[plain.length - 1]! : 0;
  let ok = n >= 1 && n <= blockSize && n <= plain.length;
  for (let i = plain.length - n; ok && i < plain.length; i++) ok = plain[i] === n;
  if (!ok) throw new ContentError('a part of the PFX could not be decrypted: wrong password or damaged file');
  return plain.subarray(0, plain.length - n);
}

/** RFC 7292 appendix B key derivation, by forge (it takes the password as text and encodes it as BMPString). */
function pkcs12Kdf(
  password: string | null,
  salt: Buffer,
  id: 1 | 2 | 3,
  iterations: number,
  length: number,
  md: forge.md.MessageDigest,
): Buffer {
  const salted = forge.util.createBuffer(salt.toString('binary'));
  return Buffer.from(forge.pkcs12.generateKey(password, salted, id, iterations, length, md).getBytes(), 'binary');
}

class Budget {
  private spent = 0;
  spend(iterations: number): void {
    this.spent += iterations;
    if (this.spent > MAX_TOTAL_ITERATIONS) {
      throw new ContentError(
        `the PFX asks for more than ${MAX_TOTAL_ITERATIONS} key-derivation iterations in total; ` +
          'refusing to spend that much CPU',
      );
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// ASN.1 access on forge's tree, each failure a ContentError naming the part of the PFX.

interface FromDerOptions {
  strict: boolean;
  parseAllBytes: boolean;
  decodeBitStrings: boolean;
}

// forge's fromDer takes an options object since 1.x; the published typings only know the older boolean form.
const fromDer = forge.asn1.fromDer as unknown as (bytes: string, options: FromDerOptions) => forge.asn1.Asn1;

function parse(bytes: Buffer, what: string): forge.asn1.Asn1 {
  try {
    return fromDer(bytes.toString('binary'), { strict: true, parseAllBytes: true, decodeBitStrings: false });
  } catch {
    throw malformed(what);
  }
}

function toDer(node: forge.asn1.Asn1): Buffer {
  return Buffer.from(forge.asn1.toDer(node).getBytes(), 'binary');
}

function malformed(what: string): ContentError {
  return new ContentError(`the PFX is malformed: ${what} is not what PKCS#12 prescribes`);
}

function required(node: forge.asn1.Asn1 | undefined, what: string): forge.asn1.Asn1 {
  if (!node) throw malformed(what);
  return node;
}

function isUniversal(node: forge.asn1.Asn1 | undefined, type: forge.asn1.Type): node is forge.asn1.Asn1 {
  return node !== undefined && node.tagClass === forge.asn1.Class.UNIVERSAL && node.type === type;
}

function sequence(node: forge.asn1.Asn1 | undefined, what: string): forge.asn1.Asn1[] {
  if (!isUniversal(node, forge.asn1.Type.SEQUENCE) || !Array.isArray(node.value)) throw malformed(what);
  return node.value;
}

/** The single element inside a `[0] EXPLICIT` wrapper. */
function explicit(node: forge.asn1.Asn1 | undefined, what: string): forge.asn1.Asn1 {
  if (
    !node ||
    node.tagClass !== forge.asn1.Class.CONTEXT_SPECIFIC ||
    node.type !== 0 ||
    !Array.isArray(node.value) ||
    node.value.length !== 1
  ) {
    throw malformed(what);
  }
  return node.value[0]!;
}

function oid(node: forge.asn1.Asn1 | undefined, what: string): string {
  if (!isUniversal(node, forge.asn1.Type.OID) || typeof node.value !== 'string') throw malformed(what);
  return forge.asn1.derToOid(node.value);
}

/** A non-negative INTEGER that fits comfortably in a JavaScript number (iteration counts, lengths, versions). */
function integer(node: forge.asn1.Asn1 | undefined, what: string): number {
  if (!isUniversal(node, forge.asn1.Type.INTEGER) || typeof node.value !== 'string') throw malformed(what);
  const bytes = node.value;
  if (bytes.length === 0 || bytes.length > 6 || bytes.charCodeAt(0) & 0x80) throw malformed(what);
  let n = 0;
  for (let i = 0; i < bytes.length; i++) n = n * 256 + bytes.charCodeAt(i);
  return n;
}

/** An iteration count: at least 1 (RFC 7292 and RFC 8018 define no derivation without iterating). */
function iterationCount(node: forge.asn1.Asn1 | undefined, what: string): number {
  const n = integer(node, what);
  if (n < 1) throw malformed(what);
  return n;
}

/**
 * The bytes of an OCTET STRING, also in BER's constructed form (a series of OCTET STRING chunks). With `implicit0`,
 * the string is tagged `[0] IMPLICIT`, as EncryptedContentInfo's content is.
 */
function octets(node: forge.asn1.Asn1 | undefined, what: string, implicit0 = false): Buffer {
  if (!node) throw malformed(what);
  const tagged = implicit0
    ? node.tagClass === forge.asn1.Class.CONTEXT_SPECIFIC && node.type === 0
    : node.tagClass === forge.asn1.Class.UNIVERSAL && node.type === forge.asn1.Type.OCTETSTRING;
  if (!tagged) throw malformed(what);
  if (typeof node.value === 'string') return Buffer.from(node.value, 'binary');
  return Buffer.concat(node.value.map((chunk) => octets(chunk, what)));
}
