/**
 * Test material for the content tests: keys from Node's crypto, certificates signed with node-forge (RSA only — forge
 * cannot sign with EC keys; EC certificates come from the OpenSSL fixtures), and a small PKCS#12 writer for the
 * variants that neither forge's writer (one RSA key, SHA-1 MAC) nor the fixtures cover: several keys, EC keys in
 * plain key bags, the "no password" MAC encoding, PBMAC1, BER encodings, nested bag lists.
 */
import {
  createCipheriv,
  createHmac,
  generateKeyPairSync,
  type KeyObject,
  pbkdf2Sync,
  randomBytes,
  X509Certificate,
} from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as forge from 'node-forge';
import type { CertificateSecretOptions } from '../../../src/content/certificate-secret';

export const FIXTURES = join(__dirname, '..', '..', 'fixtures', 'content');

export function fixture(name: string): Buffer {
  return readFileSync(join(FIXTURES, name));
}

/** DER of the (single) certificate in a PEM text. */
export function derOf(pem: string | Buffer): Buffer {
  return new X509Certificate(pem).raw;
}

// ---------------------------------------------------------------------------------------------------------------
// Keys and forge-signed certificates

export interface TestKey {
  privateKey: KeyObject;
  forgePrivate: forge.pki.rsa.PrivateKey;
  forgePublic: forge.pki.rsa.PublicKey;
}

/** RSA keys are slow to make; tests draw from a small pool (certificates only need distinct keys within a chain). */
const pool: TestKey[] = [];
export function rsaKey(index: number): TestKey {
  while (pool.length <= index) {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const pem = privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
    const forgePrivate = forge.pki.privateKeyFromPem(pem) as forge.pki.rsa.PrivateKey;
    const forgePublic = forge.pki.setRsaPublicKey(forgePrivate.n, forgePrivate.e);
    pool.push({ privateKey, forgePrivate, forgePublic });
  }
  return pool[index]!;
}

export interface TestCert {
  name: string;
  key: TestKey;
  pem: string;
  der: Buffer;
  /** The SKI this certificate's key has (whether or not the certificate carries it), as forge binary string. */
  keyId: string;
  forgeCert: forge.pki.Certificate;
}

export interface CertOptions {
  name: string;
  key: TestKey;
  /** Omitted: self-signed. */
  issuer?: TestCert;
  ca?: boolean;
  /** Include the subject key identifier (default true). */
  ski?: boolean;
  /** Include the authority key identifier (default true); a string sets its keyIdentifier bytes explicitly. */
  aki?: boolean | string;
}

let serial = 1;
export function makeCert(opts: CertOptions): TestCert {
  const cert = forge.pki.createCertificate();
  cert.publicKey = opts.key.forgePublic;
  cert.serialNumber = (serial++).toString(16).padStart(4, '0');
  cert.validity.notBefore = new Date(Date.now() - 24 * 3600 * 1000);
  cert.validity.notAfter = new Date(Date.now() + 3650 * 24 * 3600 * 1000);
  const subject = [{ name: 'commonName', value: opts.name }];
  cert.setSubject(subject);
  cert.setIssuer(opts.issuer ? opts.issuer.forgeCert.subject.attributes : subject);
  const keyId = cert.generateSubjectKeyIdentifier().getBytes();
  const issuerKeyId = opts.issuer ? opts.issuer.keyId : keyId;
  const extensions: object[] = [
    { name: 'basicConstraints', cA: opts.ca ?? false, critical: true },
    opts.ca
      ? { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true }
      : { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
  ];
  if (!opts.ca) extensions.push({ name: 'subjectAltName', altNames: [{ type: 2, value: `${opts.name}.test` }] });
  if (opts.ski ?? true) extensions.push({ name: 'subjectKeyIdentifier' });
  const aki = opts.aki ?? true;
  if (aki !== false) {
    extensions.push({ name: 'authorityKeyIdentifier', keyIdentifier: aki === true ? issuerKeyId : aki });
  }
  cert.setExtensions(extensions);
  cert.sign((opts.issuer ?? { key: opts.key }).key.forgePrivate, forge.md.sha256.create());
  const pem = forge.pki.certificateToPem(cert).replace(/\r\n/g, '\n');
  return { name: opts.name, key: opts.key, pem, der: derOf(pem), keyId, forgeCert: cert };
}

/** root → intermediate(s) → leaf, all with key identifiers unless told otherwise. */
export function makeChain(
  length: number,
  leafOptions: Partial<CertOptions> = {},
  keyOffset = 0,
): { leaf: TestCert; cas: TestCert[]; ordered: TestCert[] } {
  const root = makeCert({ name: 'root', key: rsaKey(keyOffset), ca: true });
  const cas = [root];
  for (let i = 1; i < length - 1; i++) {
    cas.push(makeCert({ name: `int${i}`, key: rsaKey(keyOffset + i), issuer: cas[i - 1]!, ca: true }));
  }
  const leaf = makeCert({
    name: 'leaf',
    key: rsaKey(keyOffset + length - 1),
    issuer: cas[cas.length - 1]!,
    ...leafOptions,
  });
  return { leaf, cas, ordered: [leaf, ...[...cas].reverse()] };
}

export function permutations<T>(items: readonly T[]): T[][] {
  if (items.length <= 1) return [[...items]];
  return items.flatMap((item, i) =>
    permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [item, ...rest]),
  );
}

// ---------------------------------------------------------------------------------------------------------------
// A minimal PKCS#12 writer (tests only)

const { Class, Type } = forge.asn1;
type Asn1 = forge.asn1.Asn1;

const bin = (b: Buffer) => b.toString('binary');
const oidNode = (oid: string) =>
  forge.asn1.create(Class.UNIVERSAL, Type.OID, false, forge.asn1.oidToDer(oid).getBytes());
const seq = (items: Asn1[]) => forge.asn1.create(Class.UNIVERSAL, Type.SEQUENCE, true, items);
const octet = (b: Buffer) => forge.asn1.create(Class.UNIVERSAL, Type.OCTETSTRING, false, bin(b));
const int = (n: number) =>
  forge.asn1.create(Class.UNIVERSAL, Type.INTEGER, false, forge.asn1.integerToDer(n).getBytes());
const explicit0 = (node: Asn1) => forge.asn1.create(Class.CONTEXT_SPECIFIC, 0, true, [node]);
const der = (node: Asn1) => Buffer.from(forge.asn1.toDer(node).getBytes(), 'binary');
/** BER: an OCTET STRING sent as constructed chunks of `size` bytes. */
const chunkedOctet = (b: Buffer, size: number) => {
  const chunks: Asn1[] = [];
  for (let i = 0; i < b.length; i += size) chunks.push(octet(b.subarray(i, i + size)));
  return forge.asn1.create(Class.UNIVERSAL, Type.OCTETSTRING, true, chunks);
};

export const OIDS = {
  data: '1.2.840.113549.1.7.1',
  encryptedData: '1.2.840.113549.1.7.6',
  keyBag: '1.2.840.113549.1.12.10.1.1',
  shroudedKeyBag: '1.2.840.113549.1.12.10.1.2',
  certBag: '1.2.840.113549.1.12.10.1.3',
  crlBag: '1.2.840.113549.1.12.10.1.4',
  safeContentsBag: '1.2.840.113549.1.12.10.1.6',
  x509Certificate: '1.2.840.113549.1.9.22.1',
  pbes2: '1.2.840.113549.1.5.13',
  pbkdf2: '1.2.840.113549.1.5.12',
  pbmac1: '1.2.840.113549.1.5.14',
  hmacWithSHA256: '1.2.840.113549.2.9',
  aes256cbc: '2.16.840.1.101.3.4.1.42',
  sha1: '1.3.14.3.2.26',
  sha256: '2.16.840.1.101.3.4.2.1',
  sha512: '2.16.840.1.101.3.4.2.3',
};

export type Bag =
  | { kind: 'cert'; der: Buffer }
  | { kind: 'key'; pkcs8: Buffer; shrouded: boolean }
  | { kind: 'crl' }
  | { kind: 'nested'; bags: Bag[] };

export interface PfxOptions {
  /** Each inner array is one content block; `encrypted` blocks use PBES2/AES-256. */
  blocks: Array<{ bags: Bag[]; encrypted: boolean }>;
  /** For the MAC: null encodes "no password" (zero bytes) in the PKCS#12 KDF; PBES2 uses '' then. */
  password: string | null;
  mac: 'sha1' | 'sha256' | 'sha512' | 'pbmac1' | 'none';
  iterations?: number;
  /** Encode OCTET STRINGs as BER chunks and the outer SEQUENCE with an indefinite length. */
  ber?: boolean;
  /** Override the encryption OID (to test unsupported algorithms). */
  encryptionOid?: string;
  /** Write this iteration count into the MAC and PBES2 parameters, while computing with `iterations`. */
  claimIterations?: number;
}

function pbes2(plain: Buffer, opts: PfxOptions): { alg: Asn1; data: Buffer } {
  const { password, encryptionOid } = opts;
  const iterations = opts.iterations ?? 2048;
  const salt = randomBytes(16);
  const iv = randomBytes(16);
  const key = pbkdf2Sync(Buffer.from(password ?? '', 'utf8'), salt, iterations, 32, 'sha256');
  const cipher = createCipheriv('aes-256-cbc', key, iv);
  const data = Buffer.concat([cipher.update(plain), cipher.final()]);
  const alg = seq([
    oidNode(encryptionOid ?? OIDS.pbes2),
    seq([
      seq([
        oidNode(OIDS.pbkdf2),
        seq([octet(salt), int(opts.claimIterations ?? iterations), seq([oidNode(OIDS.hmacWithSHA256)])]),
      ]),
      seq([oidNode(OIDS.aes256cbc), octet(iv)]),
    ]),
  ]);
  return { alg, data };
}

function bagNode(bag: Bag, opts: PfxOptions): Asn1 {
  switch (bag.kind) {
    case 'cert':
      return seq([oidNode(OIDS.certBag), explicit0(seq([oidNode(OIDS.x509Certificate), explicit0(octet(bag.der))]))]);
    case 'key': {
      if (!bag.shrouded) return seq([oidNode(OIDS.keyBag), explicit0(forge.asn1.fromDer(bin(bag.pkcs8)))]);
      const { alg, data } = pbes2(bag.pkcs8, opts);
      return seq([oidNode(OIDS.shroudedKeyBag), explicit0(seq([alg, octet(data)]))]);
    }
    case 'crl':
      // A CrlBag with an x509CRL id and a dummy value: the decoder must skip it without reading it.
      return seq([
        oidNode(OIDS.crlBag),
        explicit0(seq([oidNode('1.2.840.113549.1.9.23.1'), explicit0(octet(Buffer.from([5, 0])))])),
      ]);
    case 'nested':
      return seq([oidNode(OIDS.safeContentsBag), explicit0(seq(bag.bags.map((b) => bagNode(b, opts))))]);
  }
}

export function buildPfx(opts: PfxOptions): Buffer {
  const iterations = opts.iterations ?? 2048;
  const octets = (b: Buffer) => (opts.ber ? chunkedOctet(b, 100) : octet(b));
  const contentInfos = opts.blocks.map((block) => {
    const safeContents = der(seq(block.bags.map((b) => bagNode(b, opts))));
    if (!block.encrypted) return seq([oidNode(OIDS.data), explicit0(octets(safeContents))]);
    const { alg, data } = pbes2(safeContents, opts);
    const encryptedContent = forge.asn1.create(Class.CONTEXT_SPECIFIC, 0, false, bin(data));
    return seq([
      oidNode(OIDS.encryptedData),
      explicit0(seq([int(0), seq([oidNode(OIDS.data), alg, encryptedContent])])),
    ]);
  });
  const authSafe = der(seq(contentInfos));
  const parts: Asn1[] = [int(3), seq([oidNode(OIDS.data), explicit0(octets(authSafe))])];
  if (opts.mac !== 'none') parts.push(macData(authSafe, opts.password, opts.mac, iterations, opts.claimIterations));
  const pfx = der(seq(parts));
  if (!opts.ber) return pfx;
  // Re-frame the outer SEQUENCE with BER's indefinite length (0x80 … 00 00).
  const inner = seq(parts).value as Asn1[];
  return Buffer.concat([Buffer.from([0x30, 0x80]), ...inner.map(der), Buffer.from([0, 0])]);
}

function macData(
  authSafe: Buffer,
  password: string | null,
  mac: 'sha1' | 'sha256' | 'sha512' | 'pbmac1',
  iterations: number,
  claimIterations = iterations,
): Asn1 {
  const salt = randomBytes(8);
  if (mac === 'pbmac1') {
    const kdfSalt = randomBytes(16);
    const key = pbkdf2Sync(Buffer.from(password ?? '', 'utf8'), kdfSalt, iterations, 32, 'sha256');
    const digest = createHmac('sha256', key).update(authSafe).digest();
    const algorithm = seq([
      oidNode(OIDS.pbmac1),
      seq([
        seq([
          oidNode(OIDS.pbkdf2),
          seq([octet(kdfSalt), int(iterations), int(32), seq([oidNode(OIDS.hmacWithSHA256)])]),
        ]),
        seq([oidNode(OIDS.hmacWithSHA256)]),
      ]),
    ]);
    return seq([seq([algorithm, octet(digest)]), octet(salt), int(1)]);
  }
  const md = { sha1: forge.md.sha1.create(), sha256: forge.md.sha256.create(), sha512: forge.md.sha512.create() }[mac];
  const size = { sha1: 20, sha256: 32, sha512: 64 }[mac];
  const oid = { sha1: OIDS.sha1, sha256: OIDS.sha256, sha512: OIDS.sha512 }[mac];
  const key = Buffer.from(
    forge.pkcs12.generateKey(password, forge.util.createBuffer(bin(salt)), 3, iterations, size, md).getBytes(),
    'binary',
  );
  const digest = createHmac(mac, key).update(authSafe).digest();
  return seq([seq([seq([oidNode(oid)]), octet(digest)]), octet(salt), int(claimIterations)]);
}

/** PKCS#8 DER of a key. */
export function pkcs8(key: KeyObject): Buffer {
  return key.export({ type: 'pkcs8', format: 'der' });
}

/** convertCertificateSecret's options as the provider's defaults set them, with `overrides`. */
export const certificateSecretOptions = (overrides: Partial<CertificateSecretOptions> = {}): CertificateSecretOptions => ({
  format: 'pem',
  encoding: 'utf-8',
  constructPemChain: true,
  writeCertAndKeyInSeparateFiles: false,
  ...overrides,
});
