/**
 * The PKCS#12 crypto schemes: the integrity MAC (PKCS#12 KDF + HMAC, or PBMAC1) and the encryption schemes (PBES2, the
 * legacy "pbeWithSHAAnd…" 3DES and RC2 ones). node-forge derives PKCS#12 keys and decrypts RC2, which Node's OpenSSL 3
 * only has in its legacy provider; Node's crypto does the HMAC, PBKDF2, AES and 3DES, natively and fast.
 */
import { createDecipheriv, createHmac, pbkdf2Sync, timingSafeEqual } from 'node:crypto';
import * as forge from 'node-forge';
import { ContentError } from '../../errors';
import { type Asn1, integer, isInteger, iterationCount, octets, oid, required, sequence } from './asn1';

/**
 * Upper bound on the key-derivation iterations one PFX may ask for, summed over its MAC and all encrypted parts.
 * Real files use 2,000–2,048 per part (Windows, OpenSSL, Key Vault) and at most ~100,000 (Java); three parts at the
 * largest common count fit easily. The bound keeps a crafted file from blocking the provider (the PKCS#12 KDF runs in
 * JavaScript at roughly 1.5 µs per iteration and output block).
 */
const MAX_TOTAL_ITERATIONS = 1_000_000;

const OID = {
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
export interface Password {
  bmp: string | null;
  utf8: Buffer;
}

/** The iterations one PFX has spent so far on key derivation, refused past MAX_TOTAL_ITERATIONS. */
export class Budget {
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

// MacData ::= SEQUENCE { mac DigestInfo, macSalt OCTET STRING, iterations INTEGER DEFAULT 1 }
export interface MacData {
  algorithm: Asn1;
  digest: Buffer;
  salt: Buffer;
  iterations: number;
}

/** Whether the PFX MAC over `authSafe` matches with this password. */
export function macMatches(mac: MacData, authSafe: Buffer, pw: Password, budget: Budget): boolean {
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

/** Decrypts `ciphertext` with the scheme an AlgorithmIdentifier { algorithm OID, parameters } names. */
export function decrypt(algorithm: Asn1, ciphertext: Buffer, pw: Password, budget: Budget): Buffer {
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
  params: Asn1 | undefined,
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
function decryptPbes2(params: Asn1, ciphertext: Buffer, pw: Password, budget: Budget): Buffer {
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
  node: Asn1 | undefined,
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
    if (isInteger(field)) {
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
