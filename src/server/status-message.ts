/**
 * The message of a gRPC status travels in the `grpc-message` trailer, percent-encoded (every byte outside printable
 * ASCII, and `%` itself, becomes three characters). The driver's gRPC client refuses trailers above its metadata limit
 * and then reports only "received initial metadata size exceeds limit", losing our message entirely. A message built
 * from a long input (a 4 KiB objectAlias, a vault's verbose answer) must therefore be cut to a size that always fits,
 * while the whole message stays in the provider's log.
 */

/** Encoded size a status message may take: a quarter of the smallest limit in use (grpc-go's 16 KiB), and still
 * more than any message we write for a human (those are a few hundred characters). */
export const MAX_STATUS_MESSAGE_ENCODED_BYTES = 4096;

const CUT_NOTE = ' … (message shortened; the provider log has all of it)';

/** `message`, or its longest prefix (whole characters) that encodes within the bound, followed by a note. */
export function boundStatusMessage(message: string, maxEncoded = MAX_STATUS_MESSAGE_ENCODED_BYTES): string {
  if (encodedSize(message) <= maxEncoded) return message;
  const budget = maxEncoded - encodedSize(CUT_NOTE);
  let used = 0;
  let end = 0;
  for (const ch of message) {
    const cost = encodedSize(ch);
    if (used + cost > budget) break;
    used += cost;
    end += ch.length;
  }
  return message.slice(0, end) + CUT_NOTE;
}

/**
 * Size after gRPC's percent-encoding: printable ASCII but `%` stays one byte, everything else is %XX per UTF-8 byte.
 */
function encodedSize(text: string): number {
  let size = 0;
  for (const ch of text) {
    const code = ch.codePointAt(0)!;
    if (code >= 0x20 && code <= 0x7e && code !== 0x25) size += 1;
    else size += 3 * Buffer.byteLength(ch, 'utf8');
  }
  return size;
}
