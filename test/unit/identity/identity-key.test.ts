import { identityKey, secretDigest } from '../../../src/identity/identity-key';

describe('identity keys', () => {
  it('digests a secret the same way within the process, differently for another secret, never containing it', () => {
    const a = secretDigest('hunter2-client-secret');
    expect(secretDigest('hunter2-client-secret')).toBe(a);
    expect(secretDigest('hunter3-client-secret')).not.toBe(a);
    expect(a).not.toContain('hunter2');
    expect(a).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it('cannot be made to collide by moving the separator between parts', () => {
    expect(identityKey('sp', 'a|b', 'c')).not.toBe(identityKey('sp', 'a', 'b|c'));
    expect(identityKey('wi', 'ns/sa', 'x')).not.toBe(identityKey('wi', 'ns', 'sa/x'));
  });
});
