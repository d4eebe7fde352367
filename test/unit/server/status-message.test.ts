import { boundStatusMessage, MAX_STATUS_MESSAGE_ENCODED_BYTES } from '../../../src/server/status-message';

/** What grpc-js puts on the wire for a status message (percent-encoding of everything but printable ASCII). */
function encoded(message: string): string {
  return Buffer.from(message, 'utf8')
    .toString('latin1')
    .replace(/[^\x20-\x24\x26-\x7e]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);
}

describe('boundStatusMessage', () => {
  it('leaves messages of normal length alone', () => {
    const message = 'objects.array[0] ("db"): objectType is required: use secret, key or cert';
    expect(boundStatusMessage(message)).toBe(message);
  });

  it('cuts a message built from a long input so the encoded trailer stays under the bound, and says so', () => {
    const message = `objects.array[0]: objectAlias "${'a'.repeat(100_000)}" must not contain ".."`;
    const bounded = boundStatusMessage(message);
    expect(encoded(bounded).length).toBeLessThanOrEqual(MAX_STATUS_MESSAGE_ENCODED_BYTES);
    expect(bounded.startsWith('objects.array[0]: objectAlias "aaa')).toBe(true);
    expect(bounded).toMatch(/message shortened; the provider log has all of it\)$/);
  });

  it('counts multi-byte characters at their encoded size and never splits one', () => {
    const message = '€😀'.repeat(5000);
    const bounded = boundStatusMessage(message);
    expect(encoded(bounded).length).toBeLessThanOrEqual(MAX_STATUS_MESSAGE_ENCODED_BYTES);
    expect(bounded).not.toMatch(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])/); // no lone high surrogate
    expect(bounded.length).toBeGreaterThan(100);
  });
});
