import { yamlInt32 } from '../../../src/mount/yaml-int';

// Expected values: what yaml.v3 (v3.0.1 resolve.go + decode.go) stores into an int32 field for the same plain text.
describe('yamlInt32: objectVersionHistory read as the reference reads it', () => {
  it.each([
    ['3', 3],
    ['+3', 3],
    ['-2', -2],
    ['1_000', 1000],
    ['0x10', 16],
    ['0o17', 15],
    ['0b101', 5],
    ['010', 8], // YAML 1.1 octal, still decoded by yaml.v3
    ['08', 8], // not octal, so yaml.v3 falls back to its float syntax
    ['2.5', 2],
    ['2.999', 2],
    ['-0.5', 0],
    ['1e3', 1000],
    ['.5', 0],
    ['5.', 5],
    ['2147483647', 2147483647],
  ])('%s → %d', (text, expected) => {
    expect(yamlInt32(text)).toBe(expected);
  });

  it.each(['true', 'two', '.inf', '.nan', '2001-12-14', '2147483648', '3e10', '0x', '1.2.3', '9223372036854775808'])(
    '%s → undefined (the reference fails to read it)',
    (text) => {
      expect(yamlInt32(text)).toBeUndefined();
    },
  );
});
