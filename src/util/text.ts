/** Cutting text down for a message: what a service or a request said, shown short and on one line. */

/** The first non-blank line of `text`, trimmed and at most 500 characters (an answer's gist, not its body). */
export function firstLine(text: string): string {
  const line = text.split('\n').find((l) => l.trim() !== '') ?? text;
  return line.trim().slice(0, 500);
}

/** A value for a message: JSON-quoted (control characters escaped), cut to `max` characters and then marked "…". */
export function quote(value: string, max: number): string {
  return JSON.stringify(value.length > max ? `${value.slice(0, max)}…` : value);
}
