/**
 * Entries that select secrets by objectNamePrefix, objectNameRegex and objectTags: what the parser accepts and
 * refuses (before any request), which listed secrets match, the file each is written to, and the mount-time
 * expansion against an in-memory listing (bounds, order, left-out secrets, the selection's version).
 */
import { ProviderError } from '../../../src/errors';
import { parseObjects } from '../../../src/mount/objects';
import {
  checkNameRegex,
  DEFAULT_MAX_OBJECTS,
  selectedFilePath,
  selectionMatcher,
  unusableReason,
} from '../../../src/mount/object-selection';
import { expandSelections, selectionVersion } from '../../../src/mount/selected-secrets';
import type { ListedSecret, VaultReader } from '../../../src/spec/ports';
import type { ObjectSpec } from '../../../src/spec/types';
import { objectsYaml } from './fixtures';

function invalid(...entries: string[]): string {
  try {
    parseObjects(objectsYaml(entries));
  } catch (err) {
    expect(err).toBeInstanceOf(ProviderError);
    expect((err as ProviderError).status).toBe('InvalidArgument');
    return (err as ProviderError).message;
  }
  throw new Error('expected parseObjects to fail');
}

function one(entry: string): ObjectSpec {
  return parseObjects(objectsYaml([entry]))[0]!;
}

describe('parsing a selection entry', () => {
  it('reads prefix, pattern, tags, bound, folder and template; the shared fields as for any object', () => {
    const object = one(
      [
        'objectNamePrefix: app-',
        'objectNameRegex: ^app-(db|cache)-',
        'objectTags:',
        '  team: shop',
        '  env: prod',
        'maxObjects: 20',
        'objectAlias: conf',
        'fileNameTemplate: "{nameWithoutPrefix}.txt"',
        'filePermission: "0400"',
        'keyvaultName: other-kv',
        'writeTags: "true"',
      ].join('\n'),
    );
    expect(object).toMatchObject({
      index: 0,
      name: '',
      type: 'secret',
      fileName: 'conf',
      filePermission: 0o400,
      vaultName: 'other-kv',
      writeTags: true,
      select: {
        namePrefix: 'app-',
        nameRegex: '^app-(db|cache)-',
        tags: { team: 'shop', env: 'prod' },
        maxObjects: 20,
        folder: 'conf',
        fileNameTemplate: '{nameWithoutPrefix}.txt',
        criteria: 'secrets by objectNamePrefix "app-" and objectNameRegex "^app-(db|cache)-" and objectTags "team", "env"',
      },
    });
  });

  it('defaults: objectType secret, maxObjects 10, the prefix as folder, {name} as file name', () => {
    expect(one('objectNamePrefix: app-').select).toEqual({
      namePrefix: 'app-',
      nameRegex: '',
      tags: {},
      maxObjects: DEFAULT_MAX_OBJECTS,
      folder: 'app-',
      fileNameTemplate: '{name}',
      criteria: 'secrets by objectNamePrefix "app-"',
    });
    expect(DEFAULT_MAX_OBJECTS).toBe(10);
  });

  it('is opt-in: an entry without the selection fields is a plain object', () => {
    expect(one('objectName: db\nobjectType: secret').select).toBeUndefined();
  });

  it('refuses fields that mean nothing for a selection, naming the field', () => {
    expect(invalid('objectNamePrefix: app-\nobjectName: db')).toMatch(/objectName cannot be used with .*remove objectName/);
    expect(invalid('objectNamePrefix: app-\nobjectVersion: 0123456789abcdef0123456789abcdef')).toMatch(/objectVersion cannot be used/);
    expect(invalid('objectNamePrefix: app-\nobjectVersionHistory: 3')).toMatch(/objectVersionHistory cannot be used/);
    expect(invalid('objectNamePrefix: app-\noptional: "true"')).toMatch(/optional cannot be used/);
    expect(invalid('objectNamePrefix: app-\nwriteObject: "false"')).toMatch(/writeObject cannot be used/);
    expect(invalid('objectNamePrefix: app-\njsonPaths:\n  - path: a\n    objectAlias: b')).toMatch(/jsonPaths cannot be used/);
    expect(invalid('objectNamePrefix: app-\nobjectType: cert')).toMatch(/objectType "cert" cannot be selected .*use objectType secret/);
    expect(invalid('objectNamePrefix: app-\nobjectType: key')).toMatch(/objectType "key"/);
  });

  it('refuses a prefix no Key Vault name can start with', () => {
    expect(invalid('objectNamePrefix: app_')).toMatch(/objects\.array\[0\]: objectNamePrefix "app_" can never match/);
    expect(invalid(`objectNamePrefix: ${'a'.repeat(128)}`)).toMatch(/objectNamePrefix/);
  });

  it('refuses a pattern that is not RE2 or is too long, naming the field and the fix', () => {
    expect(invalid('objectNameRegex: "(a"\nobjectAlias: x')).toMatch(/objectNameRegex "\(a" is not an RE2 regular expression \(missing closing \)\)/);
    // Lookaround and backreferences are what make backtracking engines exponential; RE2 has neither.
    expect(invalid('objectNameRegex: "(?=a)b"\nobjectAlias: x')).toMatch(/objectNameRegex .*not an RE2 regular expression.*no lookaround/);
    expect(invalid('objectNameRegex: "(a)\\\\1"\nobjectAlias: x')).toMatch(/objectNameRegex .*not an RE2/);
    expect(invalid(`objectNameRegex: "${'a'.repeat(257)}"\nobjectAlias: x`)).toMatch(/objectNameRegex is 257 characters, above the limit of 256/);
    expect(checkNameRegex('^app-(db|cache)$')).toBeUndefined();
  });

  it('matches a catastrophic-backtracking pattern in linear time', () => {
    // (a+)+$ against "aaaa…b" takes exponential time in a backtracking engine; RE2 does not backtrack.
    const matcher = selectionMatcher(one('objectNameRegex: "^(a+)+$"\nobjectAlias: x').select!);
    // No timing assertion (tests never assert timings): returning at all is the point (JavaScript's RegExp would not).
    expect(matcher.matches({ name: `${'a'.repeat(120)}-`, tags: {} })).toBe(false);
  });

  it('refuses tags that are not a mapping of text, without quoting a tag value', () => {
    expect(invalid('objectTags: shop\nobjectAlias: x')).toMatch(/objectTags must be a mapping of tag names to values/);
    expect(invalid('objectTags:\n  - team\nobjectAlias: x')).toMatch(/objectTags must be a mapping/);
    const nested = invalid('objectTags:\n  team:\n    a: b\nobjectAlias: x');
    expect(nested).toMatch(/objectTags tag "team" must have one text value/);
    const tooLong = invalid(`objectTags:\n  team: ${'v'.repeat(257)}\nobjectAlias: x`);
    expect(tooLong).toMatch(/tag "team" has a value longer than Key Vault's 256/);
    expect(tooLong).not.toContain('vvvv');
    const many = Array.from({ length: 16 }, (_, i) => `  t${i}: v`).join('\n');
    expect(invalid(`objectTags:\n${many}\nobjectAlias: x`)).toMatch(/16 tags, above Key Vault's 15/);
  });

  it('never puts a tag value into its description', () => {
    const object = one('objectTags:\n  team: canary-tag-value-7\nobjectAlias: x');
    expect(object.select!.criteria).toBe('secrets by objectTags "team"');
    expect(invalid('objectTags:\n  team: canary-tag-value-7\nobjectAlias: x\nobjectName: db')).not.toContain('canary-tag-value-7');
  });

  it('needs objectAlias when there is no prefix to name the folder', () => {
    expect(invalid('objectNameRegex: ^app-')).toMatch(/objectAlias is required with objectNameRegex or objectTags alone/);
    expect(invalid('objectTags:\n  team: shop')).toMatch(/objectAlias is required/);
    expect(invalid('objectNamePrefix: app-\nobjectAlias: ../up')).toMatch(/objectAlias "..\/up" must not contain "\.\."/);
  });

  it('refuses a maxObjects outside 1..100', () => {
    for (const bad of ['0', '101', '-1', 'ten', '1.5', '100000000']) {
      expect(invalid(`objectNamePrefix: app-\nmaxObjects: "${bad}"`)).toMatch(/maxObjects ".*" is not a count from 1 to 100/);
    }
    expect(one('objectNamePrefix: app-\nmaxObjects: 100').select!.maxObjects).toBe(100);
  });

  it('refuses a template with unknown or missing placeholders, or one that gives bad paths', () => {
    expect(invalid('objectNamePrefix: app-\nfileNameTemplate: "{secret}"')).toMatch(/fileNameTemplate "\{secret\}" has the unknown placeholder \{secret\}/);
    expect(invalid('objectNamePrefix: app-\nfileNameTemplate: same')).toMatch(/has no \{name\}.*every selected secret would write the same file/);
    expect(invalid('objectNameRegex: x\nobjectAlias: a\nfileNameTemplate: "{nameWithoutPrefix}"')).toMatch(/without objectNamePrefix/);
    expect(invalid('objectNamePrefix: app-\nfileNameTemplate: "../{name}"')).toMatch(/does not give a valid path/);
    expect(invalid('objectNamePrefix: app-\nfileNameTemplate: "{name}}"')).toMatch(/unmatched/);
  });

  it('tells a misspelt selection field by its right spelling', () => {
    expect(invalid('objectnameprefix: app-')).toMatch(/"objectnameprefix" is not a field: the field is spelt objectNamePrefix/);
    expect(invalid('objectNamePrefix: app-\nMaxObjects: 3')).toMatch(/spelt maxObjects/);
  });

  it('counts a selection as maxObjects files toward the mount bound', () => {
    const entries = Array.from({ length: 101 }, (_, i) => `objectNamePrefix: p${i}-\nmaxObjects: 100`);
    expect(invalid(...entries)).toMatch(/objects ask for 10100 files/);
  });
});

describe('matching and naming', () => {
  const selection = one('objectNamePrefix: App-\nobjectNameRegex: "-(db|cache)$"\nobjectTags:\n  team: shop\nobjectAlias: conf').select!;
  const matcher = selectionMatcher(selection);

  it('needs the prefix (without regard to case, as Key Vault compares names), the pattern and every tag', () => {
    expect(matcher.matches({ name: 'app-db', tags: { team: 'shop', other: 'x' } })).toBe(true);
    expect(matcher.matches({ name: 'APP-cache', tags: { team: 'shop' } })).toBe(true);
    expect(matcher.matches({ name: 'app-web', tags: { team: 'shop' } })).toBe(false);
    expect(matcher.matches({ name: 'x-app-db', tags: { team: 'shop' } })).toBe(false);
    expect(matcher.matches({ name: 'app-db', tags: { team: 'Shop' } })).toBe(false);
    expect(matcher.matches({ name: 'app-db', tags: {} })).toBe(false);
  });

  it('leaves out disabled, expired and not yet valid secrets', () => {
    const now = Date.UTC(2026, 0, 1);
    expect(unusableReason({ enabled: true, expiresOn: undefined, notBefore: undefined }, now)).toBeUndefined();
    expect(unusableReason({ enabled: false, expiresOn: undefined, notBefore: undefined }, now)).toBe('disabled');
    expect(unusableReason({ enabled: true, expiresOn: new Date(now - 1), notBefore: undefined }, now)).toBe('expired');
    expect(unusableReason({ enabled: true, expiresOn: new Date(now + 1), notBefore: new Date(now + 1000) }, now)).toBe('not yet valid');
  });

  it('writes <folder>/<template>', () => {
    expect(selectedFilePath(selection, 'app-db')).toEqual({ path: 'conf/app-db' });
    const trimmed = one('objectNamePrefix: app-\nfileNameTemplate: "{nameWithoutPrefix}/value"').select!;
    expect(selectedFilePath(trimmed, 'APP-db')).toEqual({ path: 'app-/db/value' });
    // A secret named exactly the prefix has nothing left to name its file.
    expect(selectedFilePath(one('objectNamePrefix: app-\nfileNameTemplate: "{nameWithoutPrefix}"').select!, 'app-')).toEqual({
      problem: 'its file "app-" is the folder itself',
    });
  });
});

function listed(name: string, extra: Partial<ListedSecret> = {}): ListedSecret {
  return { name, enabled: true, expiresOn: undefined, notBefore: undefined, tags: {}, managed: false, contentType: undefined, ...extra };
}

function readerWith(secrets: ListedSecret[]): VaultReader & { lists: number } {
  const reader = {
    vaultName: 'shop-kv',
    lists: 0,
    getSecret: () => Promise.reject(new Error('not used')),
    getKey: () => Promise.reject(new Error('not used')),
    getCertificate: () => Promise.reject(new Error('not used')),
    listVersions: () => Promise.reject(new Error('not used')),
    listSecrets: async () => {
      reader.lists++;
      return secrets;
    },
  };
  return reader;
}

describe('expandSelections', () => {
  const signal = new AbortController().signal;

  it('replaces each selection by its secrets in name order, keeping the other objects where they were', async () => {
    const objects = parseObjects(objectsYaml(['objectName: first\nobjectType: secret', 'objectNamePrefix: app-\nfilePermission: "0440"', 'objectName: last\nobjectType: secret']));
    const reader = readerWith([listed('app-zeta'), listed('other'), listed('App-alpha', { managed: true, contentType: 'application/x-pkcs12' }), listed('app-mid')]);
    const result = await expandSelections(objects, async () => reader, 4, signal);
    expect(result.objects.map((o) => [o.index, o.name, o.fileName, o.type, o.optional, o.filePermission, o.select])).toEqual([
      [0, 'first', 'first', 'secret', false, undefined, undefined],
      [1, 'App-alpha', 'app-/App-alpha', 'secret', true, 0o440, undefined],
      [1, 'app-mid', 'app-/app-mid', 'secret', true, 0o440, undefined],
      [1, 'app-zeta', 'app-/app-zeta', 'secret', true, 0o440, undefined],
      [2, 'last', 'last', 'secret', false, undefined, undefined],
    ]);
    expect(result.versions).toEqual([selectionVersion(objects[1]!, ['App-alpha', 'app-mid', 'app-zeta'])]);
    expect(result.versions[0]!.id).toBe('select/app-');
    expect(reader.lists).toBe(1);
  });

  it('gives the selection a version that changes when a secret joins or leaves it, not when the listing order does', () => {
    const [object] = parseObjects(objectsYaml(['objectNamePrefix: app-']));
    const before = selectionVersion(object!, ['app-a', 'app-b']);
    expect(selectionVersion(object!, ['APP-A', 'app-b'])).toEqual(before);
    expect(selectionVersion(object!, ['app-a']).version).not.toBe(before.version);
    expect(selectionVersion(object!, ['app-a', 'app-b', 'app-c']).version).not.toBe(before.version);
    expect(before.version).toMatch(/^[0-9a-f]{32}$/);
    const [inOther] = parseObjects(objectsYaml(['objectNamePrefix: app-\nkeyvaultName: other-kv']));
    expect(selectionVersion(inOther!, []).id).toBe('select/other-kv/app-');
  });

  it('fails naming the entry and the count when more secrets match than maxObjects', async () => {
    const objects = parseObjects(objectsYaml(['objectNamePrefix: app-\nmaxObjects: 2']));
    const reader = readerWith([listed('app-a'), listed('app-b'), listed('app-c')]);
    await expect(expandSelections(objects, async () => reader, 4, signal)).rejects.toMatchObject({
      status: 'FailedPrecondition',
      message:
        'objects.array[0] (secrets by objectNamePrefix "app-") selects 3 secrets in Key Vault "shop-kv", more than its ' +
        'maxObjects 2: narrow the selection, or raise maxObjects (at most 100) if that many are meant',
    });
  });

  it('leaves out disabled and expired secrets before counting, and says which (names only)', async () => {
    const objects = parseObjects(objectsYaml(['objectNamePrefix: app-\nmaxObjects: 1']));
    const reader = readerWith([
      listed('app-a'),
      listed('app-off', { enabled: false }),
      listed('app-old', { expiresOn: new Date(Date.now() - 1000), tags: { secretish: 'tag-canary' } }),
    ]);
    const result = await expandSelections(objects, async () => reader, 4, signal);
    expect(result.objects.map((o) => o.name)).toEqual(['app-a']);
    expect(result.notes).toEqual(['objects.array[0] (secrets by objectNamePrefix "app-"): matching secrets left out: "app-off" (disabled), "app-old" (expired)']);
    expect(JSON.stringify(result)).not.toContain('tag-canary');
  });

  it('a selection that selects nothing warns and still gives its version (the driver needs one)', async () => {
    const objects = parseObjects(objectsYaml(['objectTags:\n  team: none\nobjectAlias: x']));
    const result = await expandSelections(objects, async () => readerWith([listed('a', { tags: { team: 'shop' } })]), 4, signal);
    expect(result.objects).toEqual([]);
    expect(result.versions).toHaveLength(1);
    expect(result.warnings).toEqual(['objects.array[0] (secrets by objectTags "team") selects no secret in Key Vault "shop-kv": the mount goes on without its files']);
    expect(result.warnings.join()).not.toContain('none');
  });

  it('fails naming the secret when the template leaves it no file name', async () => {
    const objects = parseObjects(objectsYaml(['objectNamePrefix: app-\nfileNameTemplate: "{nameWithoutPrefix}"']));
    await expect(expandSelections(objects, async () => readerWith([listed('app-')]), 4, signal)).rejects.toMatchObject({
      status: 'InvalidArgument',
      message: expect.stringContaining('secret "app-" cannot be written: its file "app-" is the folder itself; change fileNameTemplate'),
    });
  });
});
