import type { ListedVersion } from '../../../src/spec/ports';
import { selectVersionHistory } from '../../../src/mount/version-history';

/** A listing entry: version id, creation second, enabled. */
const v = (version: string, createdSecond: number | undefined, enabled = true): ListedVersion => ({
  version,
  enabled,
  createdOn: createdSecond === undefined ? undefined : new Date(createdSecond * 1000),
});

// Listed in version-id order, as the service does; creation order is v1 (oldest) … v6 (newest); v4 is disabled.
const LISTING: ListedVersion[] = [
  v('a6', 600),
  v('b2', 200),
  v('c4', 400, false),
  v('d1', 100),
  v('e5', 500),
  v('f3', 300),
];

const object = (versionHistory: number, version = '') => ({ index: 2, type: 'secret' as const, name: 'db-password', version, versionHistory });

/** The warning of a selection that found nothing (and the check that it found nothing). */
function nothingSelected(run: () => ReturnType<typeof selectVersionHistory>): string {
  const selected = run();
  expect(selected.versions).toEqual([]);
  expect(selected.warning).toBeDefined();
  return selected.warning!;
}

describe('selectVersionHistory', () => {
  it.each<[string, number, string, string[]]>([
    ['newest 3, disabled dropped', 3, '', ['a6', 'e5', 'f3']],
    ['exactly N, never N+1', 2, '', ['a6', 'e5']],
    ['all 5 enabled when N is larger', 10, '', ['a6', 'e5', 'f3', 'b2', 'd1']],
    ['N = number of enabled versions', 5, '', ['a6', 'e5', 'f3', 'b2', 'd1']],
    ['starting at an older version', 3, 'e5', ['e5', 'f3', 'b2']],
    ['starting at a version just below the disabled one', 2, 'f3', ['f3', 'b2']],
    ['starting at the oldest: fewer than N remain', 3, 'd1', ['d1']],
    ['starting version in upper case', 2, 'E5', ['e5', 'f3']],
  ])('%s', (_name, n, start, expected) => {
    expect(selectVersionHistory(object(n, start), LISTING, 'shop-kv').versions).toEqual(expected);
  });

  it('orders by creation time, not by listing order or version id', () => {
    const listing = [v('zz', 100), v('aa', 300), v('mm', 200)];
    expect(selectVersionHistory(object(3), listing, 'kv').versions).toEqual(['aa', 'mm', 'zz']);
    expect(selectVersionHistory(object(3), [...listing].reverse(), 'kv').versions).toEqual(['aa', 'mm', 'zz']);
  });

  it('orders versions created in the same second by version id, whatever the listing order', () => {
    const listing = [v('b0', 100), v('a9', 200), v('c1', 200), v('a0', 200)];
    const expected = ['c1', 'a9', 'a0', 'b0'];
    expect(selectVersionHistory(object(4), listing, 'kv').versions).toEqual(expected);
    expect(selectVersionHistory(object(4), [...listing].reverse(), 'kv').versions).toEqual(expected);
  });

  it('counts a version without (or with an invalid) creation time as the oldest', () => {
    const listing = [v('x1', undefined), v('x2', 50), { version: 'x3', enabled: true, createdOn: new Date(Number.NaN) }];
    expect(selectVersionHistory(object(3), listing, 'kv').versions).toEqual(['x2', 'x3', 'x1']);
  });

  it('ignores listed entries without a version id', () => {
    expect(selectVersionHistory(object(3), [v('', 999), v('a1', 1)], 'kv').versions).toEqual(['a1']);
  });

  it('selects nothing, with a warning naming the object, version and vault, when the start version does not exist', () => {
    expect(nothingSelected(() => selectVersionHistory(object(3, '0123abcd'), LISTING, 'shop-kv'))).toBe(
      'objects.array[2] (secret "db-password") version 0123abcd was not found in Key Vault "shop-kv", so no file is ' +
        'written for it (as the reference provider does): objectVersion must name an existing version of the object ' +
        'to start the history at (empty = the newest)',
    );
  });

  it('says so when the start version exists but is disabled', () => {
    const warning = nothingSelected(() => selectVersionHistory(object(3, 'c4'), LISTING, 'shop-kv'));
    expect(warning).toContain('objects.array[2] (secret "db-password") version c4: this version is disabled');
    expect(warning).toContain('no file is written for it (as the reference provider does)');
    expect(warning).toContain('enable it, or set objectVersion to an enabled version');
  });

  it.each<[string, ListedVersion[]]>([
    ['an empty listing (no such object)', []],
    ['only disabled versions', [v('a1', 1, false), v('a2', 2, false)]],
  ])('selects nothing, with a warning, for %s', (_name, listing) => {
    const warning = nothingSelected(() => selectVersionHistory(object(3), listing, 'shop-kv'));
    expect(warning).toMatch(/^objects\.array\[2\] \(secret "db-password"\): Key Vault "shop-kv" has no enabled version/);
    expect(warning).toContain('check objectName and objectType');
  });

  it('does not modify the listing it is given', () => {
    const copy = LISTING.map((x) => ({ ...x }));
    selectVersionHistory(object(3), LISTING, 'kv');
    expect(LISTING).toEqual(copy);
  });
});
