/**
 * Issue 12, certificate content: the bytes the reference provider (v1.8.2) writes, for the same stored certificate.
 * The expected files in test/fixtures/parity were written by Go's own encoding/pem and crypto/x509 (expected.go),
 * the functions the reference's getSecret/splitCertAndKey/decodePKCS12 call; the chain orders follow its
 * fetchCertChains rule (see chain.ts and chain.test.ts).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { convertCertificateSecret } from '../../../src/content/certificate-secret';
import { certificateSecretOptions as options } from './helpers';

const PARITY = join(__dirname, '..', '..', 'fixtures', 'parity');
const CONTENT = join(__dirname, '..', '..', 'fixtures', 'content');
const parity = (name: string) => readFileSync(join(PARITY, name));
const content = (name: string) => readFileSync(join(CONTENT, name));

const separate = options({ writeCertAndKeyInSeparateFiles: true });

describe('a PEM-stored certificate with separate files: .crt and .key as Go re-encodes each block', () => {
  it.each([
    ['pem-crlf', 'CRLF line ends, base64 in lines of 76, text between blocks'],
    ['pem-ec-params', 'EC PARAMETERS before the EC private key (openssl ecparam -genkey), then the chain'],
    ['pem-encrypted-key', 'a legacy encrypted key with Proc-Type and DEK-Info headers after the certificate'],
    ['pem-damaged', 'a block with damaged base64 and a BEGIN without END (Go skips both)'],
  ])('%s: %s', (name) => {
    const stored = parity(`${name}.pem`).toString('utf8');
    const result = convertCertificateSecret({ value: stored, contentType: 'application/x-pem-file' }, separate);
    expect(result.content).toEqual(Buffer.from(stored, 'utf8')); // the combined file: as stored, never re-encoded
    expect(result.certificates).toEqual(parity(`${name}.expected.crt`));
    expect(result.privateKey).toEqual(parity(`${name}.expected.key`));
  });
});

describe('private keys from a PFX: the PKCS#8 bytes of x509.MarshalPKCS8PrivateKey', () => {
  it('an EC key stored without its public key gets it filled in, as Go writes it (OpenSSL would leave it out)', () => {
    const pfx = parity('ec-nopub.p12').toString('base64');
    const result = convertCertificateSecret({ value: pfx, contentType: 'application/x-pkcs12' }, options());
    const expected = Buffer.concat([parity('ec-nopub.expected-key.pem'), parity('ec-nopub.crt')]);
    expect(result.content).toEqual(expected);
    expect(result.warnings).toEqual([]);
  });

  it.each([
    ['rsa-3des.p12', 'rsa-leaf'],
    ['ec-3des.p12', 'ec-leaf'],
  ])('%s: the key block is byte for byte what Go writes', (file, key) => {
    const pfx = content(file).toString('base64');
    const result = convertCertificateSecret({ value: pfx, contentType: 'application/x-pkcs12' }, options());
    const expectedKey = parity(`${key}.expected-key.pem`).toString('utf8');
    expect(result.content.toString('utf8').startsWith(expectedKey)).toBe(true);
  });
});
