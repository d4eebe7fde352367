import { ProviderError } from '../../../src/errors';
import { parseObjects } from '../../../src/mount/objects';
import { objectsYaml } from './fixtures';

function invalid(yaml: string): string {
  try {
    parseObjects(yaml);
  } catch (err) {
    expect(err).toBeInstanceOf(ProviderError);
    expect((err as ProviderError).status).toBe('InvalidArgument');
    return (err as ProviderError).message;
  }
  throw new Error('expected parseObjects to fail');
}

describe('parseObjects', () => {
  it('parses every field with defaults', () => {
    const [plain, full] = parseObjects(
      objectsYaml([
        'objectName: db-password\nobjectType: secret',
        [
          'objectName: tls',
          'objectType: SECRET',
          'objectAlias: certs/tls.pem',
          'objectVersion: 0123456789abcdef0123456789abcdef',
          'objectVersionHistory: 3',
          'objectFormat: PFX',
          'objectEncoding: Base64',
          'filePermission: 0600',
        ].join('\n'),
      ]),
    );
    expect(plain).toEqual({
      index: 0,
      name: 'db-password',
      type: 'secret',
      version: '',
      versionHistory: 1,
      format: 'pem',
      encoding: 'utf-8',
      fileName: 'db-password',
      filePermission: undefined,
      optional: false,
      vaultName: '',
      jsonPaths: [],
      writeObject: true,
      writeTags: false,
      writeAttributes: false,
    });
    expect(full).toEqual({
      index: 1,
      name: 'tls',
      type: 'secret',
      version: '0123456789abcdef0123456789abcdef',
      versionHistory: 3,
      format: 'pfx',
      encoding: 'base64',
      fileName: 'certs/tls.pem',
      filePermission: 0o600,
      optional: false,
      vaultName: '',
      jsonPaths: [],
      writeObject: true,
      writeTags: false,
      writeAttributes: false,
    });
  });

  it('keeps an unquoted octal filePermission as written (0644 stays octal, not the YAML 1.1 number 420)', () => {
    const [object] = parseObjects(objectsYaml(['objectName: a\nobjectType: key\nfilePermission: 0644']));
    expect(object!.filePermission).toBe(0o644);
  });

  it('treats an empty or missing list as no objects, and "latest" as the latest version', () => {
    expect(parseObjects('')).toEqual([]);
    expect(parseObjects('array:')).toEqual([]);
    expect(parseObjects('array: []')).toEqual([]);
    expect(parseObjects(objectsYaml(['objectName: a\nobjectType: cert\nobjectVersion: latest']))[0]!.version).toBe('');
  });

  it('accepts entries written as YAML mappings instead of strings', () => {
    expect(parseObjects('array:\n  - objectName: a\n    objectType: key\n')[0]!.name).toBe('a');
  });

  it.each([
    ['unparseable YAML', 'array: [unclosed', ['objects is not valid YAML']],
    ['a list instead of a mapping', '- a\n- b', ['objects must be a YAML mapping', 'array']],
    ['array not a list', 'array: nope', ['objects.array must be a YAML list']],
    ['bad entry YAML', 'array:\n  - "objectName: [x"', ['objects.array[0] is not valid YAML']],
    ['missing objectName', objectsYaml(['objectType: secret']), ['objects.array[0]: objectName is required']],
    ['bad objectName', objectsYaml(['objectName: my_secret\nobjectType: secret']), ['objectName "my_secret"']],
    ['missing objectType', objectsYaml(['objectName: a']), ['("a")', 'objectType is required']],
    ['unknown objectType', objectsYaml(['objectName: a\nobjectType: password']), ['objectType "password"', 'secret, key or cert']],
    ['unknown objectFormat', objectsYaml(['objectName: a\nobjectType: secret\nobjectFormat: der']), ['objectFormat "der"']],
    ['pfx on a key', objectsYaml(['objectName: a\nobjectType: key\nobjectFormat: pfx']), ['pfx applies only to objectType secret']],
    ['unknown encoding', objectsYaml(['objectName: a\nobjectType: secret\nobjectEncoding: utf-16']), ['objectEncoding "utf-16"']],
    ['encoding on a cert', objectsYaml(['objectName: a\nobjectType: cert\nobjectEncoding: hex']), ['objectEncoding applies only']],
    ['filePermission negative', objectsYaml(['objectName: a\nobjectType: secret\nfilePermission: "-1"']), ['filePermission "-1"', 'world-writable']],
    ['alias with ..', objectsYaml(['objectName: a\nobjectType: secret\nobjectAlias: ../etc/passwd']), ['objectAlias "../etc/passwd"', '".."']],
    ['nested ..', objectsYaml(['objectName: a\nobjectType: secret\nobjectAlias: x/../../y']), ['".."']],
    ['absolute alias', objectsYaml(['objectName: a\nobjectType: secret\nobjectAlias: /etc/passwd']), ['objectAlias "/etc/passwd"', 'relative']],
    ['windows absolute alias', objectsYaml(['objectName: a\nobjectType: secret\nobjectAlias: C:\\x']), ['relative']],
    ['history not a number', objectsYaml(['objectName: a\nobjectType: secret\nobjectVersionHistory: many']), ['objectVersionHistory "many"']],
    ['bad version', objectsYaml(['objectName: a\nobjectType: secret\nobjectVersion: v1/../x']), ['objectVersion "v1/../x"']],
    ['field as a list', objectsYaml(['objectName: [a, b]\nobjectType: secret']), ['objectName must be a single value']],
  ])('rejects %s', (_name, yaml, fragments) => {
    const message = invalid(yaml);
    for (const fragment of fragments) expect(message).toContain(fragment);
  });

  it('rejects an object file that another object uses as a folder', () => {
    expect(
      invalid(objectsYaml(['objectName: a\nobjectType: secret\nobjectVersionHistory: 2', 'objectName: b\nobjectType: secret\nobjectAlias: a'])),
    ).toContain('"a"');
  });
});
