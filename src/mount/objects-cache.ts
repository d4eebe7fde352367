/**
 * Every mount of a pod, and every rotation of every pod of a class, sends the same `objects` text; parsing it (YAML,
 * twice nested) was the largest single cost of a warm mount. Each distinct text is parsed once and its outcome kept:
 * the result frozen, so no mount can change what the next one gets, and a failure as the same error, since the same
 * text fails the same way. Bounded: 256 texts of at most 16 KiB each (longer ones are parsed every time).
 */
import { ProviderError } from '../errors';
import { BoundedCache } from '../util/bounded-cache';
import { parseObjectsDetailed, type ParsedObjects } from './objects';

const MAX_ENTRIES = 256;
const MAX_CACHED_TEXT = 16 * 1024;

type Outcome = { ok: true; parsed: ParsedObjects } | { ok: false; error: ProviderError };

const cache = new BoundedCache<string, Outcome>(MAX_ENTRIES);

export function parseObjectsCached(yamlText: string): ParsedObjects {
  if (yamlText.length > MAX_CACHED_TEXT) return parseObjectsDetailed(yamlText);
  let outcome = cache.get(yamlText);
  if (!outcome) {
    try {
      outcome = { ok: true, parsed: deepFreeze(parseObjectsDetailed(yamlText)) };
    } catch (err) {
      // Only our own validation errors are stable facts about the text; anything else is not kept.
      if (!(err instanceof ProviderError)) throw err;
      outcome = { ok: false, error: err };
    }
    cache.set(yamlText, outcome);
  }
  if (!outcome.ok) throw outcome.error;
  return outcome.parsed;
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value as Record<string, unknown>)) deepFreeze(child);
  }
  return value;
}
