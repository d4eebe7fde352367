import { certificatePemFromDer } from '../../../src/content/certificate';
import { ContentError } from '../../../src/errors';
import { derOf, fixture } from './helpers';

describe('certificatePemFromDer', () => {
  it.each(['rsa-leaf', 'rsa-root', 'ec-leaf', 'mixed-leaf', 'c4-leaf'])('%s → the same PEM OpenSSL writes', (name) => {
    const pem = fixture(`${name}.crt`).toString('utf8');
    const result = certificatePemFromDer(new Uint8Array(derOf(pem)));
    expect(result).toBe(pem);
    // One block, 64-character lines, newline-terminated.
    const lines = result.trimEnd().split('\n');
    expect(lines[0]).toBe('-----BEGIN CERTIFICATE-----');
    expect(lines[lines.length - 1]).toBe('-----END CERTIFICATE-----');
    for (const line of lines.slice(1, -2)) expect(line).toHaveLength(64);
    expect(lines[lines.length - 2]!.length).toBeLessThanOrEqual(64);
  });

  it('reads a Uint8Array view into a larger buffer', () => {
    const der = derOf(fixture('ec-root.crt'));
    const backing = new Uint8Array(der.length + 7);
    backing.set(der, 3);
    expect(certificatePemFromDer(backing.subarray(3, 3 + der.length))).toBe(fixture('ec-root.crt').toString('utf8'));
  });

  const der = derOf(fixture('rsa-leaf.crt'));
  it.each([
    ['empty', new Uint8Array(0), /the certificate is empty/],
    ['not DER', new Uint8Array(Buffer.from('hello world')), /\(11 bytes\) is not a valid DER X\.509 certificate/],
    ['truncated', new Uint8Array(der.subarray(0, der.length - 10)), /not a valid DER X\.509 certificate/],
    ['PEM text instead of DER', new Uint8Array(fixture('rsa-leaf.crt')), /not a valid DER X\.509 certificate/],
    ['trailing bytes', new Uint8Array(Buffer.concat([der, Buffer.from([0, 0])])), /followed by 2 unexpected bytes/],
  ])('refuses %s', (_name, input, pattern) => {
    expect(() => certificatePemFromDer(input)).toThrow(ContentError);
    expect(() => certificatePemFromDer(input)).toThrow(pattern);
  });
});
