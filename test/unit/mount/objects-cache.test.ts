import { ProviderError } from '../../../src/errors';
import { parseObjectsCached } from '../../../src/mount/objects-cache';
import { objectsYaml } from './fixtures';

describe('parseObjectsCached', () => {
  it('parses a text once and hands every mount the same frozen result', () => {
    const text = objectsYaml(['objectName: cached-a\nobjectType: secret']);
    const first = parseObjectsCached(text);
    expect(parseObjectsCached(text)).toBe(first);
    expect(Object.isFrozen(first.objects[0])).toBe(true);
    expect(() => {
      (first.objects as unknown as unknown[]).push({});
    }).toThrow(TypeError);
  });

  it('fails the same text the same way, every time', () => {
    const text = objectsYaml(['objectName: cached-b\nobjectType: no-such-kind']);
    const errors = [0, 1].map(() => {
      try {
        parseObjectsCached(text);
      } catch (err) {
        return err;
      }
      return undefined;
    });
    expect(errors[0]).toBeInstanceOf(ProviderError);
    expect(errors[1]).toBe(errors[0]);
  });

  it('parses texts over 16 KiB every time (not kept)', () => {
    const text = `${objectsYaml(['objectName: cached-c\nobjectType: secret'])}# ${'x'.repeat(17_000)}\n`;
    expect(parseObjectsCached(text)).not.toBe(parseObjectsCached(text));
  });
});
