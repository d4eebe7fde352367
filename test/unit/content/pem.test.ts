import { pemEncode, splitPemBlocks } from '../../../src/content/pem';

describe('pemEncode', () => {
  it.each([
    [0, '-----BEGIN X-----\n-----END X-----\n'],
    [3, '-----BEGIN X-----\nAAAA\n-----END X-----\n'],
    [48, `-----BEGIN X-----\n${'A'.repeat(64)}\n-----END X-----\n`],
    [49, `-----BEGIN X-----\n${'A'.repeat(64)}\nAA==\n-----END X-----\n`],
  ])('%d zero bytes', (length, expected) => {
    expect(pemEncode('X', new Uint8Array(length))).toBe(expected);
  });
});

describe('splitPemBlocks', () => {
  const a = '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----';
  const k = '-----BEGIN PRIVATE KEY-----\r\nBBBB\r\n-----END PRIVATE KEY-----';

  it('finds blocks in order, ignoring text between them', () => {
    const blocks = splitPemBlocks(`Bag Attributes\n${a}\nsubject=CN=x\n${k}\n\n${a}`);
    expect(blocks).toEqual([
      { label: 'CERTIFICATE', text: a },
      { label: 'PRIVATE KEY', text: k },
      { label: 'CERTIFICATE', text: a },
    ]);
  });

  it('drops a block without its END line instead of swallowing the next block', () => {
    expect(splitPemBlocks(`-----BEGIN CERTIFICATE-----\nAAAA\n${a}`)).toEqual([{ label: 'CERTIFICATE', text: a }]);
  });

  it('needs matching labels', () => {
    expect(splitPemBlocks('-----BEGIN CERTIFICATE-----\nAAAA\n-----END PRIVATE KEY-----')).toEqual([]);
  });
});
