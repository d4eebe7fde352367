/**
 * Turns the entries that select secrets (object-selection.ts) into the secrets they select, at mount time: one listing
 * of the vault per entry (shared by entries and mounts listing the same vault at once), filtered, bounded by the
 * entry's maxObjects, each selected secret then read like a named object (same bounds, shared reads, retries, and the
 * certificate path for a secret that backs a certificate).
 */
import { createHash } from 'node:crypto';
import { ProviderError } from '../errors';
import { mapBounded } from './concurrency';
import { MAX_OBJECTS_CEILING, selectedFilePath, selectionMatcher, unusableReason } from './object-selection';
import { describeObject } from './objects';
import type { VaultReader } from '../spec/ports';
import type { ObjectSpec } from '../spec/types';

export interface ExpandedObjects {
  /** The mount's objects with every selection replaced by the secrets it selects, in a stable order. */
  objects: ObjectSpec[];
  /** One version per selection, changing whenever a secret joins or leaves it (see selectionVersion). */
  versions: Array<{ id: string; version: string }>;
  /** Worth a warning: a selection that selects nothing. */
  warnings: string[];
  /** Worth a debug line: matching secrets left out (disabled, expired, not yet valid). Names only. */
  notes: string[];
}

export async function expandSelections(
  objects: ObjectSpec[],
  readerFor: (object: ObjectSpec) => Promise<VaultReader>,
  maxParallel: number,
  signal: AbortSignal,
  now: number = Date.now(),
): Promise<ExpandedObjects> {
  const selections = objects.filter((o) => o.select);
  if (selections.length === 0) return { objects, versions: [], warnings: [], notes: [] };
  const expanded = await mapBounded(selections, maxParallel, signal, async (object, s) => select(await readerFor(object), object, s, now));
  const byIndex = new Map(selections.map((o, i) => [o.index, expanded[i]!]));
  return {
    objects: objects.flatMap((o) => byIndex.get(o.index)?.objects ?? [o]),
    versions: expanded.map((e) => e.version),
    warnings: expanded.flatMap((e) => e.warnings),
    notes: expanded.flatMap((e) => e.notes),
  };
}

/**
 * The id of a selection's version: `select/<folder>` (with the vault when the entry names its own), so it stays the
 * same when entries are reordered. Its version is a digest of the selected names: the driver compares the versions it
 * gets back with those it holds, and a secret that leaves the selection has no version of its own any more.
 */
export function selectionVersion(object: ObjectSpec, names: string[]): { id: string; version: string } {
  const digest = createHash('sha256').update(names.map((n) => n.toLowerCase()).join('\n')).digest('hex').slice(0, 32);
  return { id: `select/${object.vaultName ? `${object.vaultName}/` : ''}${object.fileName}`, version: digest };
}

async function select(
  reader: VaultReader,
  object: ObjectSpec,
  signal: AbortSignal,
  now: number,
): Promise<{ objects: ObjectSpec[]; version: { id: string; version: string }; warnings: string[]; notes: string[] }> {
  const selection = object.select!;
  const where = describeObject(object);
  const listed = await reader.listSecrets(signal);
  const matcher = selectionMatcher(selection);
  const usable: string[] = [];
  const left: string[] = [];
  for (const secret of listed) {
    if (!matcher.matches(secret)) continue;
    const why = unusableReason(secret, now);
    if (why) left.push(`"${secret.name}" (${why})`);
    else usable.push(secret.name);
  }
  // Names are unique in a vault without regard to case; sorted so files and versions come in the same order each time.
  usable.sort((a, b) => (a.toLowerCase() < b.toLowerCase() ? -1 : a.toLowerCase() > b.toLowerCase() ? 1 : 0));
  if (usable.length > selection.maxObjects) {
    throw new ProviderError(
      'FailedPrecondition',
      `${where} selects ${usable.length} secrets in Key Vault "${reader.vaultName}", more than its maxObjects ` +
        `${selection.maxObjects}: narrow the selection, or raise maxObjects (at most ${MAX_OBJECTS_CEILING}) if that many are meant`,
    );
  }
  const selected = usable.map((name): ObjectSpec => {
    const file = selectedFilePath(selection, name);
    if ('problem' in file) {
      throw new ProviderError('InvalidArgument', `${where}: secret "${name}" cannot be written: ${file.problem}; change fileNameTemplate`);
    }
    const { select: _selection, ...rest } = object;
    return {
      ...rest,
      name,
      type: 'secret',
      version: '',
      versionHistory: 1,
      fileName: file.path,
      // Deleted between the listing and the read: it has left the selection, so the mount goes on without it.
      optional: true,
      jsonPaths: [],
      writeObject: true,
    };
  });
  return {
    objects: selected,
    version: selectionVersion(object, usable),
    warnings: usable.length === 0 ? [`${where} selects no secret in Key Vault "${reader.vaultName}"${left.length > 0 ? ` (${left.length} matching left out: disabled, expired or not yet valid)` : ''}: the mount goes on without its files`] : [],
    notes: left.length > 0 ? [`${where}: matching secrets left out: ${left.slice(0, 20).join(', ')}${left.length > 20 ? ', …' : ''}`] : [],
  };
}
