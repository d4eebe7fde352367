import { createPrivateKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import * as forge from 'node-forge';
import { ContentError } from '../../../src/errors';
import { decodePkcs12 } from '../../../src/content/pkcs12';
import { buildPfx, derOf, fixture, makeChain, pkcs8, rsaKey, type Bag } from './helpers';

const keyDer = (pem: string | Buffer) => createPrivateKey(pem).export({ type: 'pkcs8', format: 'der' });

function expectError(run: () => unknown, pattern: RegExp, secret?: string): ContentError {
  let caught: unknown;
  try {
    run();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(ContentError);
  const error = caught as ContentError;
  expect(error.message).toMatch(pattern);
  if (secret) expect(error.message).not.toContain(secret);
  return error;
}

describe('decodePkcs12 — OpenSSL fixtures', () => {
  // The PFX stores the leaf first, then the chain file's order (root, intermediate[s]): see make-fixtures.sh.
  const rsa = ['rsa-leaf', 'rsa-root', 'rsa-int'];
  const ec = ['ec-leaf', 'ec-root', 'ec-int'];
  const c4 = ['c4-leaf', 'c4-int1', 'c4-root', 'c4-int2'];
  const mixed = ['mixed-leaf', 'ec-root', 'ec-int'];
  const rows: Array<[file: string, encryption: string, password: string, key: string, certs: string[]]> = [
    ['rsa-3des.p12', '3DES certificates and key, SHA-1 MAC', '', 'rsa-leaf', rsa],
    ['rsa-rc2.p12', 'RC2-40 certificates, 3DES key, SHA-1 MAC', '', 'rsa-leaf', rsa],
    ['rsa-aes256.p12', 'PBES2 AES-256-CBC + HMAC-SHA256, SHA-256 MAC', '', 'rsa-leaf', rsa],
    ['rsa-rc2-128.p12', 'RC2-128 certificates, 2-key 3DES key, SHA-384 MAC', '', 'rsa-leaf', rsa],
    ['ec-3des.p12', '3DES, EC P-521 key', '', 'ec-leaf', ec],
    ['ec-rc2.p12', 'RC2-40, EC P-521 key', '', 'ec-leaf', ec],
    ['ec-aes256.p12', 'PBES2 AES-256, EC P-521 key', '', 'ec-leaf', ec],
    ['mixed-aes256.p12', 'RSA leaf signed with ECDSA', '', 'mixed-leaf', mixed],
    ['chain4-rc2.p12', '4 certificates, RC2-40', '', 'c4-leaf', c4],
    ['chain4-aes256.p12', '4 certificates, PBES2 AES-256', '', 'c4-leaf', c4],
    ['rsa-plain.p12', 'nothing encrypted: plain key bag, SHA-256 MAC', '', 'rsa-leaf', rsa],
    ['rsa-nomac.p12', 'no MAC', '', 'rsa-leaf', rsa],
    ['rsa-aes256-password.p12', 'PBES2 with an ASCII password', 'correct horse', 'rsa-leaf', rsa],
    ['rsa-3des-password.p12', '3DES with an ASCII password', 'correct horse', 'rsa-leaf', rsa],
    ['rsa-aes256-unicode.p12', 'PBES2 with a non-ASCII password (UTF-8 for PBKDF2)', 'pässwörd-€', 'rsa-leaf', rsa],
    ['rsa-3des-unicode.p12', '3DES with a non-ASCII password (BMPString)', 'pässwörd-€', 'rsa-leaf', rsa],
  ];

  it.each(rows)('%s (%s)', (file, _encryption, password, key, certs) => {
    const result = decodePkcs12(fixture(file), password);
    expect(result.privateKeys).toHaveLength(1);
    const pkcs8Pem = /^-----BEGIN PRIVATE KEY-----\n(?:[A-Za-z0-9+/=]{1,64}\n)+-----END PRIVATE KEY-----\n$/;
    expect(result.privateKeys[0]).toMatch(pkcs8Pem);
    expect(keyDer(result.privateKeys[0]!)).toEqual(keyDer(fixture(`${key}.key`)));
    // The stored certificate bytes, in stored order, as PEM identical to OpenSSL's own output.
    expect(result.certificates).toEqual(certs.map((name) => fixture(`${name}.crt`).toString('utf8')));
  });

  it('refuses a wrong password without repeating it', () => {
    const pfx = fixture('rsa-aes256-password.p12');
    expectError(() => decodePkcs12(pfx, 'wrong horse'), /MAC\) failed: the password is wrong/, 'wrong horse');
  });

  it('says a file needs a password when none was given', () => {
    expectError(() => decodePkcs12(fixture('rsa-3des-password.p12')), /without a password: .*protected by a password/);
  });

  it('refuses a wrong password on a file without MAC (the decryption fails)', () => {
    const pfx = fixture('rsa-nomac.p12');
    expectError(() => decodePkcs12(pfx, 'nope'), /could not be decrypted|not a readable PKCS#8/, 'nope');
  });

  it('detects a modified file through the MAC', () => {
    const pfx = Buffer.from(fixture('rsa-aes256.p12'));
    pfx[pfx.length - 100]! ^= 0x01; // inside the authenticated content
    expectError(() => decodePkcs12(pfx), /integrity check \(MAC\) failed/);
  });
});

describe('decodePkcs12 — forge-written PFX', () => {
  // forge's writer: one RSA key, certificates in a plain block, SHA-1 MAC; the key encrypted with PBES2 or 3DES, or
  // not at all when the password is null (and then the MAC uses the zero-length "no password" encoding).
  const chain = () => makeChain(3);
  it.each([
    ['aes256', 'secret'],
    ['aes128', ''],
    ['3des', ''],
    ['3des', 'secret'],
  ] as const)('key encrypted with %s, password %j', (algorithm, password) => {
    const { leaf, ordered } = chain();
    const forgeCerts = ordered.map((c) => c.forgeCert);
    const asn1 = forge.pkcs12.toPkcs12Asn1(leaf.key.forgePrivate, forgeCerts, password, { algorithm });
    const pfx = Buffer.from(forge.asn1.toDer(asn1).getBytes(), 'binary');
    const result = decodePkcs12(pfx, password);
    expect(result.certificates.map(derOf)).toEqual(ordered.map((c) => c.der));
    expect(keyDer(result.privateKeys[0]!)).toEqual(pkcs8(leaf.key.privateKey));
  });

  it('decodes a PFX whose MAC uses the "no password" encoding, given an empty password', () => {
    const { leaf, ordered } = chain();
    const asn1 = forge.pkcs12.toPkcs12Asn1(leaf.key.forgePrivate, ordered.map((c) => c.forgeCert), null);
    const result = decodePkcs12(Buffer.from(forge.asn1.toDer(asn1).getBytes(), 'binary'));
    expect(result.privateKeys).toHaveLength(1);
    expect(result.certificates).toHaveLength(3);
  });
});

describe('decodePkcs12 — hand-built variants', () => {
  const ecKey = (curve: string): KeyObject => generateKeyPairSync('ec', { namedCurve: curve }).privateKey;
  const { leaf, ordered } = makeChain(3);
  const certBags: Bag[] = ordered.map((c) => ({ kind: 'cert', der: c.der }));

  it('returns every private key, in stored order, whatever the key type and bag kind', () => {
    const ed25519 = generateKeyPairSync('ed25519').privateKey;
    const keys = [rsaKey(0).privateKey, ecKey('P-256'), ecKey('P-384'), ecKey('P-521'), ed25519];
    const pfx = buildPfx({
      blocks: [
        { bags: certBags, encrypted: true },
        { bags: keys.map((k, i) => ({ kind: 'key', pkcs8: pkcs8(k), shrouded: i % 2 === 0 })), encrypted: false },
      ],
      password: '',
      mac: 'sha256',
    });
    const result = decodePkcs12(pfx);
    expect(result.privateKeys.map(keyDer)).toEqual(keys.map(pkcs8));
    expect(result.certificates.map(derOf)).toEqual(ordered.map((c) => c.der));
  });

  it.each([
    ['SHA-1 MAC, "no password" encoding', { mac: 'sha1', password: null }],
    ['SHA-512 MAC', { mac: 'sha512', password: '' }],
    ['PBMAC1 (RFC 9579) MAC', { mac: 'pbmac1', password: '' }],
    ['BER: indefinite length and chunked OCTET STRINGs', { mac: 'sha256', password: '', ber: true }],
  ] as const)('%s', (_name, variant) => {
    const pfx = buildPfx({
      blocks: [
        { bags: certBags, encrypted: true },
        { bags: [{ kind: 'key', pkcs8: pkcs8(leaf.key.privateKey), shrouded: true }], encrypted: false },
      ],
      ...variant,
    });
    const result = decodePkcs12(pfx);
    expect(result.certificates.map(derOf)).toEqual(ordered.map((c) => c.der));
    expect(result.privateKeys.map(keyDer)).toEqual([pkcs8(leaf.key.privateKey)]);
  });

  it('reads nested bag lists and skips CRL bags', () => {
    const pfx = buildPfx({
      blocks: [
        {
          bags: [
            { kind: 'crl' },
            { kind: 'nested', bags: [certBags[0]!, { kind: 'nested', bags: [certBags[1]!] }] },
            certBags[2]!,
            { kind: 'key', pkcs8: pkcs8(leaf.key.privateKey), shrouded: false },
          ],
          encrypted: false,
        },
      ],
      password: '',
      mac: 'sha1',
    });
    const result = decodePkcs12(pfx);
    expect(result.certificates.map(derOf)).toEqual(ordered.map((c) => c.der));
    expect(result.privateKeys).toHaveLength(1);
  });

  it('returns empty lists for an empty PFX', () => {
    const empty = buildPfx({ blocks: [], password: '', mac: 'sha1' });
    expect(decodePkcs12(empty)).toEqual({ privateKeys: [], certificates: [] });
  });

  it.each([
    ['MAC', 'sha1'],
    ['PBES2 key derivation (no MAC)', 'none'],
  ] as const)('refuses a PFX whose %s asks for millions of iterations, before spending them', (_where, mac) => {
    const pfx = buildPfx({
      blocks: [{ bags: certBags, encrypted: true }],
      password: '',
      mac,
      iterations: 1,
      claimIterations: 5_000_000,
    });
    const started = Date.now();
    expectError(() => decodePkcs12(pfx), /more than 1000000 key-derivation iterations/);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('names an unsupported encryption algorithm', () => {
    const pfx = buildPfx({
      blocks: [{ bags: certBags, encrypted: true }],
      password: '',
      mac: 'sha1',
      encryptionOid: '1.2.840.113549.1.12.1.1', // pbeWithSHAAnd128BitRC4
    });
    expectError(() => decodePkcs12(pfx), /unsupported algorithm 1\.2\.840\.113549\.1\.12\.1\.1/);
  });

  it('fails only with ContentError on damaged files (deterministic fuzzing)', () => {
    let seed = 12345;
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    // No MAC and nothing encrypted except the key: the damage reaches the parser instead of stopping at the MAC.
    const original = fixture('rsa-nomac.p12');
    for (let i = 0; i < 300; i++) {
      const damaged = Buffer.from(original);
      for (let flips = 1 + random(3); flips > 0; flips--) damaged[random(damaged.length)] = random(256);
      try {
        decodePkcs12(damaged);
      } catch (err) {
        expect(err).toBeInstanceOf(ContentError);
      }
    }
  });

  it.each([
    ['empty input', Buffer.alloc(0), /not a PKCS#12 file/],
    ['not ASN.1', Buffer.from('definitely not a pfx'), /not a PKCS#12 file/],
    ['truncated', fixture('rsa-rc2.p12').subarray(0, 1000), /not a PKCS#12 file/],
    ['trailing data', Buffer.concat([fixture('rsa-rc2.p12'), Buffer.from([0])]), /not a PKCS#12 file/],
    ['another ASN.1 structure', derOf(fixture('rsa-leaf.crt')), /malformed|version/],
  ])('refuses %s', (_name, input, pattern) => {
    expectError(() => decodePkcs12(input), pattern);
  });
});
