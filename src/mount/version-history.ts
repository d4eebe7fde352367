/**
 * `objectVersionHistory: N` (N > 1): which versions of an object a mount writes, as `<file>/0` … `<file>/N-1`.
 *
 * From a full version listing: drop disabled versions, order newest first by creation time, start at `objectVersion`
 * (empty = the newest), take N, or fewer when fewer exist. Pure: the listing comes from the vault reader.
 */
import { describeObject } from './objects';
import type { ListedVersion } from '../spec/ports';
import type { ObjectSpec } from '../spec/types';

export interface SelectedVersions {
  /** The versions to write, in file order: index i goes to `<file>/i` with id `<type>/<name>/i`. */
  versions: string[];
  /** Set when nothing could be selected: why, and what to change. */
  warning?: string;
}

const NOTHING = 'so no file is written for it (as the reference provider does)';

/**
 * When nothing can be selected (a start version that is not among the enabled versions, or an object without any
 * enabled version, which includes one that does not exist), the reference writes no file for the object and the
 * mount goes on. Pods run like that today, so we do the same and return a warning that says what is missing; a
 * disabled start version gets its own words, since disabling a version is a usual way to retire it. (A mount in which
 * no object produced a file fails, as the driver would fail it.)
 *
 * Deliberate differences from the reference provider:
 * - exactly N versions (its loop returned N+1 whenever enough versions existed);
 * - versions created in the same second (Key Vault records creation in whole seconds) are ordered by version id, so
 *   every rotation poll writes the same version to the same file; the reference's sort left their order unspecified.
 */
export function selectVersionHistory(
  object: Pick<ObjectSpec, 'index' | 'type' | 'name' | 'version' | 'versionHistory'>,
  listed: readonly ListedVersion[],
  vaultName: string,
): SelectedVersions {
  const enabled = listed.filter((v) => v.enabled && v.version !== '');
  const what = `${describeObject(object)}${object.version ? ` version ${object.version}` : ''}`;
  if (enabled.length === 0) {
    return {
      versions: [],
      warning:
        `${what}: Key Vault "${vaultName}" has no enabled version of it (the object does not exist, or every version ` +
        `is disabled), ${NOTHING}: check objectName and objectType, or enable a version`,
    };
  }
  const newestFirst = [...enabled].sort(newerFirst);

  let start = 0;
  if (object.version) {
    const wanted = object.version.toLowerCase();
    start = newestFirst.findIndex((v) => v.version.toLowerCase() === wanted);
    if (start < 0) {
      const disabled = listed.some((v) => !v.enabled && v.version.toLowerCase() === wanted);
      return {
        versions: [],
        warning: disabled
          ? `${what}: this version is disabled in Key Vault "${vaultName}", so the history cannot start there and ` +
            `${NOTHING.replace(/^so /, '')}: enable it, or set objectVersion to an enabled version (empty = the newest)`
          : `${what} was not found in Key Vault "${vaultName}", ${NOTHING}: objectVersion must name an existing ` +
            'version of the object to start the history at (empty = the newest)',
      };
    }
  }
  return { versions: newestFirst.slice(start, start + object.versionHistory).map((v) => v.version) };
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
