import { createPrivateKey, generateKeyPairSync, X509Certificate } from 'node:crypto';
import { createSecureContext } from 'node:tls';
import * as forge from 'node-forge';
import { convertCertificateSecret } from '../../../src/content/certificate-secret';
import { splitPemBlocks } from '../../../src/content/pem';
import { ContentError } from '../../../src/errors';
import { certificateSecretOptions as options, derOf, fixture, makeChain } from './helpers';

const PKCS12 = 'application/x-pkcs12';
const PEM = 'application/x-pem-file';


/** The secret value Key Vault returns for a PFX-backed certificate: the PFX in base64. */
const pfxSecret = (file: string) => ({ value: fixture(file).toString('base64'), contentType: PKCS12 });

const blocks = (pem: string | Buffer) => splitPemBlocks(pem.toString());
const labels = (pem: string | Buffer) => blocks(pem).map((b) => b.label);
const certDers = (pem: string | Buffer) =>
  blocks(pem)
    .filter((b) => b.label === 'CERTIFICATE')
    .map((b) => derOf(b.text));
const fixtureDers = (...names: string[]) => names.map((n) => derOf(fixture(`${n}.crt`)));
const keyDer = (pem: string | Buffer) => createPrivateKey(pem).export({ type: 'pkcs8', format: 'der' });

function expectError(run: () => unknown, pattern: RegExp): string {
  try {
    run();
  } catch (err) {
    expect(err).toBeInstanceOf(ContentError);
    expect((err as Error).message).toMatch(pattern);
    return (err as Error).message;
  }
  throw new Error('expected a ContentError');
}

describe('convertCertificateSecret — PKCS#12 to PEM', () => {
  it.each([
    ['rsa-3des.p12', 'rsa-leaf', ['rsa-leaf', 'rsa-int', 'rsa-root']],
    ['rsa-rc2.p12', 'rsa-leaf', ['rsa-leaf', 'rsa-int', 'rsa-root']],
    ['rsa-aes256.p12', 'rsa-leaf', ['rsa-leaf', 'rsa-int', 'rsa-root']],
    ['ec-rc2.p12', 'ec-leaf', ['ec-leaf', 'ec-int', 'ec-root']],
    ['ec-aes256.p12', 'ec-leaf', ['ec-leaf', 'ec-int', 'ec-root']],
    ['mixed-aes256.p12', 'mixed-leaf', ['mixed-leaf', 'ec-int', 'ec-root']],
    ['chain4-rc2.p12', 'c4-leaf', ['c4-leaf', 'c4-int2', 'c4-int1', 'c4-root']],
    ['chain4-aes256.p12', 'c4-leaf', ['c4-leaf', 'c4-int2', 'c4-int1', 'c4-root']],
  ])('%s → PKCS#8 key first, then leaf → intermediates → root', (file, key, chain) => {
    const result = convertCertificateSecret(pfxSecret(file), options());
    expect(result.warnings).toEqual([]);
    expect(result.certificates).toBeUndefined();
    expect(result.privateKey).toBeUndefined();
    expect(labels(result.content)).toEqual(['PRIVATE KEY', ...chain.map(() => 'CERTIFICATE')]);
    expect(keyDer(blocks(result.content)[0]!.text)).toEqual(keyDer(fixture(`${key}.key`)));
    expect(certDers(result.content)).toEqual(fixtureDers(...chain));
    // What a TLS server would do with the file: the combined file as both key and certificate chain.
    expect(() => createSecureContext({ key: result.content, cert: result.content })).not.toThrow();
  });

  it('keeps the stored order without constructPemChain', () => {
    const result = convertCertificateSecret(pfxSecret('rsa-rc2.p12'), options({ constructPemChain: false }));
    expect(certDers(result.content)).toEqual(fixtureDers('rsa-leaf', 'rsa-root', 'rsa-int'));
    expect(result.warnings).toEqual([]);
  });

  it('writes .crt and .key parts that TLS accepts', () => {
    const result = convertCertificateSecret(pfxSecret('ec-rc2.p12'), options({ writeCertAndKeyInSeparateFiles: true }));
    expect(labels(result.privateKey!)).toEqual(['PRIVATE KEY']);
    expect(certDers(result.certificates!)).toEqual(fixtureDers('ec-leaf', 'ec-int', 'ec-root'));
    expect(labels(result.certificates!)).toEqual(['CERTIFICATE', 'CERTIFICATE', 'CERTIFICATE']);
    expect(result.content.toString()).toBe(result.privateKey!.toString() + result.certificates!.toString());
    expect(() => createSecureContext({ key: result.privateKey, cert: result.certificates })).not.toThrow();
  });

  it('keeps the stored order and warns when an intermediate is missing', () => {
    const { leaf, cas } = makeChain(3);
    const stored = [leaf, cas[0]!]; // leaf and root, no intermediate
    const forgeCerts = stored.map((c) => c.forgeCert);
    const asn1 = forge.pkcs12.toPkcs12Asn1(leaf.key.forgePrivate, forgeCerts, '', { algorithm: '3des' });
    const value = Buffer.from(forge.asn1.toDer(asn1).getBytes(), 'binary').toString('base64');
    const result = convertCertificateSecret({ value, contentType: PKCS12 }, options());
    expect(certDers(result.content)).toEqual(stored.map((c) => c.der));
    expect(result.warnings).toEqual([
      'the 2 certificates in the PFX do not form one chain linked by key identifiers (an intermediate may be missing, ' +
        'or one is stored twice); they are written in their stored order, as the reference provider writes them',
    ]);
  });

  it('warns when the PFX holds no private key (a certificate whose key is not exportable)', () => {
    const { leaf } = makeChain(2);
    const asn1 = forge.pkcs12.toPkcs12Asn1(null, [leaf.forgeCert], '');
    const value = Buffer.from(forge.asn1.toDer(asn1).getBytes(), 'binary').toString('base64');
    const result = convertCertificateSecret({ value, contentType: PKCS12 }, options());
    expect(labels(result.content)).toEqual(['CERTIFICATE']);
    expect(result.warnings).toEqual(['the certificate secret contains no private key']);
  });

  it.each([
    ['mixed case', 'Application/X-PKCS12'],
    ['with a parameter', 'application/x-pkcs12; charset=binary'],
    ['padded', '  application/x-pkcs12 '],
  ])('accepts the content type %s', (_name, contentType) => {
    const result = convertCertificateSecret({ ...pfxSecret('rsa-aes256.p12'), contentType }, options());
    expect(labels(result.content)[0]).toBe('PRIVATE KEY');
  });

  it('refuses a PFX that is not valid base64, saying so', () => {
    expectError(
      () => convertCertificateSecret({ value: 'MIIJ-not-base64', contentType: PKCS12 }, options()),
      /^the stored PFX is not valid standard base64: a character outside the standard alphabet at character offset 4/,
    );
  });

  it('refuses a PFX with a password (Key Vault never sets one)', () => {
    const secret = pfxSecret('rsa-3des-password.p12');
    expectError(() => convertCertificateSecret(secret, options()), /protected by a password/);
  });

  it.each(['base64', 'hex'] as const)('refuses objectEncoding %s for PEM output, saying what to do', (encoding) => {
    expectError(
      () => convertCertificateSecret(pfxSecret('rsa-aes256.p12'), options({ encoding })),
      new RegExp(`objectEncoding ${encoding} does not apply to a certificate written as PEM text`),
    );
  });
});

describe('convertCertificateSecret — PKCS#12 as pfx', () => {
  const secret = pfxSecret('rsa-rc2.p12');

  it('utf-8 (default) → the stored base64 text', () => {
    const result = convertCertificateSecret(secret, options({ format: 'pfx' }));
    expect(result).toEqual({ content: Buffer.from(secret.value), warnings: [] });
  });

  it('base64 → the binary PFX', () => {
    const result = convertCertificateSecret(secret, options({ format: 'pfx', encoding: 'base64' }));
    expect(result).toEqual({ content: fixture('rsa-rc2.p12'), warnings: [] });
  });

  it('writes empty .crt/.key parts when separate files are requested (the reference splits the base64 text and finds no PEM)', () => {
    const result = convertCertificateSecret(secret, options({ format: 'pfx', writeCertAndKeyInSeparateFiles: true }));
    expect(result.content).toEqual(Buffer.from(secret.value));
    expect(result.certificates).toEqual(Buffer.alloc(0));
    expect(result.privateKey).toEqual(Buffer.alloc(0));
    expect(result.warnings).toEqual([expect.stringContaining('the .crt and .key files are empty')]);
  });

  it('refuses hex', () => {
    expectError(
      () => convertCertificateSecret(secret, options({ format: 'pfx', encoding: 'hex' })),
      /objectEncoding hex does not apply to objectFormat pfx.*use objectEncoding base64 for the binary PFX/,
    );
  });

  it('refuses base64 that is not valid', () => {
    expectError(
      () =>
        convertCertificateSecret({ value: 'abc', contentType: PKCS12 }, options({ format: 'pfx', encoding: 'base64' })),
      /the stored PFX is not valid standard base64/,
    );
  });
});

describe('convertCertificateSecret — PEM as stored', () => {
  const { leaf, cas } = makeChain(3);
  const key = leaf.key.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const certs = [leaf.pem, cas[1]!.pem, cas[0]!.pem];
  const keyFirst = key + certs.join('');
  const keyLast = certs.join('') + key;
  const separate = options({ writeCertAndKeyInSeparateFiles: true });

  it.each([
    ['key first', keyFirst],
    ['key last', keyLast],
  ])('%s: the combined file is the stored text', (_name, value) => {
    expect(convertCertificateSecret({ value, contentType: PEM }, options())).toEqual({
      content: Buffer.from(value),
      warnings: [],
    });
  });

  it.each([
    ['key first', keyFirst],
    ['key last', keyLast],
    ['CRLF line ends and text between blocks', `Bag Attributes\r\n${keyLast.replace(/\n/g, '\r\n')}`],
  ])('%s: separate files get the certificates and the key, and TLS accepts them', (_name, value) => {
    const result = convertCertificateSecret({ value, contentType: PEM }, separate);
    expect(result.content).toEqual(Buffer.from(value));
    expect(certDers(result.certificates!)).toEqual(certs.map(derOf));
    expect(labels(result.privateKey!)).toEqual(['PRIVATE KEY']);
    expect(keyDer(result.privateKey!)).toEqual(keyDer(key));
    expect(result.warnings).toEqual([]);
    expect(() => createSecureContext({ key: result.privateKey, cert: result.certificates })).not.toThrow();
    expect(new X509Certificate(result.certificates!).subject).toBe('CN=leaf');
  });

  it('puts every block that is not a certificate into .key, EC PARAMETERS included (as the reference)', () => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const sec1 = ec.export({ type: 'sec1', format: 'pem' }).toString();
    const value = `-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n${sec1}${leaf.pem}`;
    const result = convertCertificateSecret({ value, contentType: PEM }, separate);
    expect(labels(result.privateKey!)).toEqual(['EC PARAMETERS', 'EC PRIVATE KEY']);
    expect(result.privateKey!.toString()).toBe(`-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n${sec1}`);
    expect(labels(result.certificates!)).toEqual(['CERTIFICATE']);
    expect(result.warnings).toEqual([]);
  });

  it('warns about a missing key or certificate when splitting', () => {
    const result = convertCertificateSecret({ value: leaf.pem, contentType: PEM }, separate);
    expect(result.privateKey).toEqual(Buffer.alloc(0));
    expect(result.warnings).toEqual(['the certificate secret contains no private key']);
    const none = convertCertificateSecret({ value: 'no pem here', contentType: PEM }, separate);
    expect(none.warnings).toEqual([
      'the certificate secret contains no certificate',
      'the certificate secret contains no private key',
    ]);
  });

  it('objectFormat pfx: writes the stored PEM (as the reference) and warns why', () => {
    const result = convertCertificateSecret({ value: keyFirst, contentType: PEM }, options({ format: 'pfx' }));
    expect(result.content).toEqual(Buffer.from(keyFirst));
    expect(result.warnings).toEqual([
      expect.stringMatching(/^objectFormat pfx was requested, but this certificate is stored as PEM \(application\/x-pem-file\), so Key Vault holds no PFX for it: the file is the stored PEM/),
    ]);
  });

  it('refuses objectEncoding base64', () => {
    expectError(
      () => convertCertificateSecret({ value: keyFirst, contentType: PEM }, options({ encoding: 'base64' })),
      /objectEncoding base64 does not apply/,
    );
  });
});

describe('convertCertificateSecret — other content types', () => {
  it.each([
    [undefined, /has no content type; expected application\/x-pkcs12 or application\/x-pem-file/],
    ['', /has no content type/],
    ['text/plain', /content type "text\/plain", which is neither application\/x-pkcs12 nor application\/x-pem-file/],
    ['application/pkix-cert', /content type "application\/pkix-cert"/],
  ])('%j', (contentType, pattern) => {
    expectError(() => convertCertificateSecret({ value: 'x', contentType }, options()), pattern);
  });

  it('never puts the secret value into a message', () => {
    const value = 'SuperSecretValue+123';
    for (const contentType of [undefined, 'text/plain', PKCS12]) {
      for (const format of ['pem', 'pfx'] as const) {
        for (const encoding of ['utf-8', 'base64', 'hex'] as const) {
          try {
            convertCertificateSecret({ value, contentType }, options({ format, encoding }));
          } catch (err) {
            expect((err as Error).message).not.toContain('SuperSecret');
          }
        }
      }
    }
  });
});
