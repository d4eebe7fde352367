/**
 * Go's strconv.ParseBool words: the reference reads its boolean parameters, object fields and flags with it, so a
 * manifest that says "True" or "1" means the same here.
 */
const TRUE_WORDS: ReadonlySet<string> = new Set(['1', 't', 'T', 'TRUE', 'true', 'True']);
const FALSE_WORDS: ReadonlySet<string> = new Set(['0', 'f', 'F', 'FALSE', 'false', 'False']);

/** The word's value, or undefined when it is not one of Go's boolean words. */
export function goBool(word: string): boolean | undefined {
  if (TRUE_WORDS.has(word)) return true;
  if (FALSE_WORDS.has(word)) return false;
  return undefined;
}
