/** Cutting text down for a message: what a service or a request said, shown short and on one line. */

/** The first non-blank line of `text`, trimmed and at most 500 characters (an answer's gist, not its body). */
export function firstLine(text: string): string {
  const line = text.split('\n').find((l) => l.trim() !== '') ?? text;
  return line.trim().slice(0, 500);
}
