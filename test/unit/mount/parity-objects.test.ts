/**
 * Issue 12, object entries: manifests written for the reference provider (v1.8.2) read as it reads them. Each expected
 * value is what the reference's types (pkg/provider/types: yaml.v3 into string and int32 fields, then trimmed) and
 * validate.go make of the same text; where we differ on purpose the test says so.
 */
import { parseObjectsDetailed } from '../../../src/mount/objects';
import { objectsYaml } from './fixtures';

const one = (entry: string) => {
  const parsed = parseObjectsDetailed(objectsYaml([entry]));
  return { object: parsed.objects[0]!, warnings: parsed.warnings };
};

describe('YAML nulls mean "not set", as yaml.v3 reads them into string fields', () => {
  it.each(['null', '~', 'Null', 'NULL', ''])('objectAlias: %s → the file is named after objectName', (value) => {
    const { object } = one(`objectName: db\nobjectType: secret\nobjectAlias: ${value}`);
    expect(object.fileName).toBe('db');
  });

  it('every optional field may be null (what Helm toYaml writes for an unset value)', () => {
    const entry = [
      'objectName: db',
      'objectType: secret',
      'objectAlias: null',
      'objectVersion: null',
      'objectVersionHistory: null',
      'objectFormat: null',
      'objectEncoding: ~',
      'filePermission: null',
    ].join('\n');
    expect(one(entry).object).toEqual({
      index: 0,
      name: 'db',
      type: 'secret',
      version: '',
      versionHistory: 1,
      format: 'pem',
      encoding: 'utf-8',
      fileName: 'db',
      filePermission: undefined,
      optional: false,
      vaultName: '',
      jsonPaths: [],
      writeObject: true,
      writeTags: false,
      writeAttributes: false,
    });
  });

  it.each([`"null"`, `'~'`])('a quoted %s is text: the file is named by it, as with the reference', (value) => {
    expect(one(`objectName: db\nobjectType: secret\nobjectAlias: ${value}`).object.fileName).toBe(value.slice(1, -1));
  });

  it('nNull is not a YAML null', () => {
    expect(one('objectName: db\nobjectType: secret\nobjectAlias: nUll').object.fileName).toBe('nUll');
  });
});

describe('objectVersionHistory as yaml.v3 stores it into an int32', () => {
  it.each([
    ['2.5', 2],
    ['3.0', 3],
    ['1e1', 10],
    ['0x3', 3],
    ['-4', 1],
    ['0.9', 1],
    ['250', 250],
  ])('%s → %d versions', (text, expected) => {
    expect(one(`objectName: db\nobjectType: secret\nobjectVersionHistory: ${text}`).object.versionHistory).toBe(expected);
  });

  it('a number above our bound (4000, a vault\'s reads per 10 s) is lowered to it with a warning, not refused', () => {
    const { object, warnings } = one('objectName: db\nobjectType: secret\nobjectVersionHistory: 100000');
    expect(object.versionHistory).toBe(4000);
    expect(warnings).toEqual([expect.stringContaining('objectVersionHistory 100000 is lowered to 4000')]);
  });
});

describe('filePermission', () => {
  it.each([
    ['0600', 0o600],
    ['00600', 0o600],
    ['000644', 0o644],
    ['600', 0o600],
    ['+0644', 0o644],
    ['0o440', 0o440], // the reference writes mode 0 here; the intent is plain, so we keep our fix
  ])('%s → mode %o, no warning', (text, mode) => {
    const { object, warnings } = one(`objectName: db\nobjectType: secret\nfilePermission: "${text}"`);
    expect(object.filePermission).toBe(mode);
    expect(warnings).toEqual([]);
  });

  it.each(['0900', 'rw-r--r--', '644.0', '77777777777777'])(
    '%s is not octal: mode 0 with a warning, as the reference writes it (strconv.ParseInt fails, the error is dropped)',
    (text) => {
      const { object, warnings } = one(`objectName: db\nobjectType: secret\nfilePermission: "${text}"`);
      expect(object.filePermission).toBe(0);
      expect(warnings).toEqual([expect.stringContaining('so the file is written with mode 0')]);
    },
  );

  it('bits above 0777 are dropped with a warning (the driver writes permission bits only)', () => {
    const { object, warnings } = one('objectName: db\nobjectType: secret\nfilePermission: "04755"');
    expect(object.filePermission).toBe(0o755);
    expect(warnings).toEqual([expect.stringContaining('the file gets mode 0755')]);
  });
});

describe('checks the reference makes case-sensitively', () => {
  it.each(['PFX', 'Pfx'])('objectFormat: %s on a cert mounts the PEM certificate, with a warning', (format) => {
    const { object, warnings } = one(`objectName: web\nobjectType: cert\nobjectFormat: ${format}`);
    expect(object.format).toBe('pem');
    expect(warnings).toEqual([expect.stringContaining(`objectFormat "${format}" is ignored for objectType cert`)]);
  });

  it('objectFormat: pfx (lower case) on a key is refused, as the reference refuses it', () => {
    expect(() => one('objectName: k\nobjectType: key\nobjectFormat: pfx')).toThrow(/objectFormat pfx applies only to objectType secret/);
  });
});

describe('file names as the driver writes them', () => {
  it.each([
    ['./config.yaml', 'config.yaml'],
    ['conf//db.yaml', 'conf/db.yaml'],
    ['conf/./db', 'conf/db'],
    ['conf/', 'conf'],
  ])('objectAlias %s is written as %s (the driver cleans paths)', (alias, expected) => {
    expect(one(`objectName: db\nobjectType: secret\nobjectAlias: ${alias}`).object.fileName).toBe(expected);
  });

  it('two objects writing one path mount (the later one wins, as at the driver), with a warning naming both', () => {
    const parsed = parseObjectsDetailed(
      objectsYaml(['objectName: a\nobjectType: secret', 'objectName: b\nobjectType: secret\nobjectAlias: ./a']),
    );
    expect(parsed.objects.map((o) => o.fileName)).toEqual(['a', 'a']);
    expect(parsed.warnings).toEqual([
      'objects.array[0] (secret "a") and objects.array[1] (secret "b") both write the file "a": the volume gets ' +
        'objects.array[1] (secret "b")\'s (the later one), as with the reference provider; give one of them a different objectAlias',
    ]);
  });
});
