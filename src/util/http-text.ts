/** Small judgements about HTTP answers and URLs, for messages that must never quote what a service sent. */

/** Whether `text` parses as JSON: an answer that does not is not from the service it claims to be. */
export function isJsonText(text: string | null | undefined): boolean {
  try {
    JSON.parse(text ?? '');
    return true;
  } catch {
    return false;
  }
}

/** The URL's origin for a message (never its path or query, which may carry identifiers); `fallback` if unparsable. */
export function originOf(url: string, fallback: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return fallback;
  }
}
