/**
 * `objectVersionHistory: N` (N > 1): which versions of an object a mount writes, as `<file>/0` … `<file>/N-1`.
 *
 * From a full version listing: drop disabled versions, order newest first by creation time, start at `objectVersion`
 * (empty = the newest), take N, or fewer when fewer exist. Pure: the listing comes from the vault reader.
 *
 * Deliberate differences from the reference provider (CONTRACT §3):
 * - exactly N versions (its loop returned N+1 whenever enough versions existed);
 * - a start version that is not among the enabled versions is an error; the reference silently mounted nothing for
 *   the object, which looks like success until the application reads the missing file. A disabled start version gets
 *   its own message, since disabling a version is a usual way to retire it;
 * - an object with no enabled version is an error, as reading the single latest version of it would be;
 * - versions created in the same second (Key Vault records creation in whole seconds) are ordered by version id, so
 *   every rotation poll writes the same version to the same file; the reference's sort left their order unspecified.
 */
import { ProviderError } from '../errors';
import { describeObject } from './objects';
import type { ListedVersion } from './ports';
import type { ObjectSpec } from './types';

/** The versions to write, in file order: index i goes to `<file>/i` with id `<type>/<name>/i`. */
export function selectVersionHistory(
  object: Pick<ObjectSpec, 'index' | 'type' | 'name' | 'version' | 'versionHistory'>,
  listed: readonly ListedVersion[],
  vaultName: string,
): string[] {
  const enabled = listed.filter((v) => v.enabled && v.version !== '');
  const what = `${describeObject(object)}${object.version ? ` version ${object.version}` : ''}`;
  if (enabled.length === 0) {
    throw new ProviderError(
      'NotFound',
      `${what}: Key Vault "${vaultName}" has no enabled version of it (the object does not exist, or every version ` +
        'is disabled): check objectName and objectType, or enable a version',
    );
  }
  const newestFirst = [...enabled].sort(newerFirst);

  let start = 0;
  if (object.version) {
    const wanted = object.version.toLowerCase();
    start = newestFirst.findIndex((v) => v.version.toLowerCase() === wanted);
    if (start < 0) {
      const disabled = listed.some((v) => !v.enabled && v.version.toLowerCase() === wanted);
      throw new ProviderError(
        'NotFound',
        disabled
          ? `${what}: this version is disabled in Key Vault "${vaultName}", so the history cannot start there: ` +
              'enable it, or set objectVersion to an enabled version (empty = the newest)'
          : `${what} was not found in Key Vault "${vaultName}": objectVersion must name an existing version ` +
              'of the object to start the history at (empty = the newest)',
      );
    }
  }
  return newestFirst.slice(start, start + object.versionHistory).map((v) => v.version);
}

/** Newest first; a version without a creation time counts as the oldest; same second → higher version id first. */
function newerFirst(a: ListedVersion, b: ListedVersion): number {
  const byTime = createdMs(b) - createdMs(a);
  if (byTime !== 0) return byTime;
  const x = a.version.toLowerCase();
  const y = b.version.toLowerCase();
  return x < y ? 1 : x > y ? -1 : 0;
}

function createdMs(v: ListedVersion): number {
  const ms = v.createdOn?.getTime();
  return ms !== undefined && Number.isFinite(ms) ? ms : 0;
}
