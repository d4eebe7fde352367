import { decodeSecretValue } from '../../../src/content/encoding';
import { ContentError } from '../../../src/errors';

const bytes = (...b: number[]) => Buffer.from(b);

describe('decodeSecretValue', () => {
  describe('utf-8: the bytes as they are', () => {
    it.each([
      ['', Buffer.alloc(0)],
      ['plain', Buffer.from('plain')],
      ['héllo €', Buffer.from([0x68, 0xc3, 0xa9, 0x6c, 0x6c, 0x6f, 0x20, 0xe2, 0x82, 0xac])],
      ['  spaces and\nnewlines\n', Buffer.from('  spaces and\nnewlines\n')],
      ['aGVsbG8=', Buffer.from('aGVsbG8=')], // not decoded
    ])('%j', (value, expected) => {
      expect(decodeSecretValue(value, 'utf-8')).toEqual(expected);
    });
  });

  describe('base64: the standard alphabet with padding, like Go StdEncoding', () => {
    it.each([
      ['', Buffer.alloc(0)],
      ['aGVsbG8=', Buffer.from('hello')],
      ['aGVsbA==', Buffer.from('hell')],
      ['aGVs', Buffer.from('hel')],
      ['+/8=', bytes(0xfb, 0xff)],
      ['AAECAwQFBgcICQ==', bytes(0, 1, 2, 3, 4, 5, 6, 7, 8, 9)],
      ['aGVs\nbG8=', Buffer.from('hello')], // line breaks are skipped (Go does too)
      ['aGVs\r\nbG8=\r\n', Buffer.from('hello')],
      ['\naG\nVsbG8=\n\n', Buffer.from('hello')],
      ['aGVsbG9=', Buffer.from('hello')], // non-zero unused bits: Go's StdEncoding accepts them
    ])('%j', (value, expected) => {
      expect(decodeSecretValue(value, 'base64')).toEqual(expected);
    });

    it.each([
      ['aGVsbG8', /length 7 .* not a multiple of 4/],
      ['aGVsbA', /length 6 .* multiple of 4/],
      ['aGVsbA=', /length 7/],
      ['a', /length 1/],
      ['aGVs bG8=', /whitespace at character offset 4/],
      ['aGVs\tbG8=', /whitespace at character offset 4/],
      [' aGVsbG8=', /whitespace at character offset 0/],
      ['aGVsbG8= ', /data after the padding at character offset 8/],
      ['a-_b', /outside the standard alphabet at character offset 1 \(URL-safe base64/],
      ['aGVsbG8=aGVs', /data after the padding at character offset 8/],
      ['aGVsbA==aGVs', /data after the padding/],
      ['aG=s', /data after the padding at character offset 3/],
      ['====', /misplaced padding '=' at character offset 0/],
      ['a===', /misplaced padding '=' at character offset 1/],
      ['aGVsbG8==', /misplaced padding/],
      ['aGVsb===', /misplaced padding/],
      ['aGVsbé8=', /outside the standard alphabet at character offset 5/],
      ['aGVs*G8=', /outside the standard alphabet/],
      ['aGVsbG8=\u0000', /data after the padding/],
    ])('rejects %j', (value, pattern) => {
      expect(() => decodeSecretValue(value, 'base64')).toThrow(ContentError);
      expect(() => decodeSecretValue(value, 'base64')).toThrow(pattern);
      const prefix = /^objectEncoding base64: the value is not valid standard base64: /;
      expect(() => decodeSecretValue(value, 'base64')).toThrow(prefix);
    });
  });

  describe('hex: pairs of hex digits, either case', () => {
    it.each([
      ['', Buffer.alloc(0)],
      ['00ff', bytes(0, 255)],
      ['deadBEEF', bytes(0xde, 0xad, 0xbe, 0xef)],
      ['0123456789abcdefABCDEF', bytes(0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0xab, 0xcd, 0xef)],
    ])('%j', (value, expected) => {
      expect(decodeSecretValue(value, 'hex')).toEqual(expected);
    });

    it.each([
      ['abc', /odd number of characters \(3\)/],
      ['a', /odd number of characters/],
      ['zz', /non-hex character at character offset 0/],
      ['0x12', /non-hex character at character offset 1/],
      ['de ad', /non-hex character at character offset 2/],
      ['abg0', /non-hex character at character offset 2/],
      ['abcg', /non-hex character at character offset 3/],
      ['abc-', /non-hex character at character offset 3/],
      ['00\n', /non-hex character at character offset 2/],
    ])('rejects %j', (value, pattern) => {
      expect(() => decodeSecretValue(value, 'hex')).toThrow(ContentError);
      expect(() => decodeSecretValue(value, 'hex')).toThrow(pattern);
      expect(() => decodeSecretValue(value, 'hex')).toThrow(/^objectEncoding hex: /);
    });
  });

  it('never puts the value into an error message', () => {
    const secret = 'TopSecret-Value!';
    for (const encoding of ['base64', 'hex'] as const) {
      for (const value of [secret, `${secret}=`, `${secret.repeat(3)}`, `ab${secret}`]) {
        try {
          decodeSecretValue(value, encoding);
          throw new Error('expected a failure');
        } catch (err) {
          expect(err).toBeInstanceOf(ContentError);
          expect((err as Error).message).not.toContain('TopSecret');
          expect((err as Error).message).not.toContain('Value');
        }
      }
    }
  });

  it('names an unknown encoding', () => {
    expect(() => decodeSecretValue('x', 'utf-16' as never)).toThrow(/unknown objectEncoding "utf-16"/);
  });
});
