/**
 * `objectEncoding` of a plain secret: how the secret's text becomes the bytes of the file.
 *
 * The rules follow the reference provider (Go: `[]byte(value)`, `base64.StdEncoding.DecodeString`,
 * `hex.DecodeString`) so that a value that mounts there mounts here, and one that fails there fails here.
 */
import { ContentError } from '../errors';

export type SecretEncoding = 'utf-8' | 'base64' | 'hex';

/**
 * Decodes a secret's text by its `objectEncoding`:
 * - utf-8: the text's UTF-8 bytes, unchanged.
 * - base64: the standard alphabet (`A–Z a–z 0–9 + /`) with `=` padding to a multiple of 4 characters, as Go's
 *   StdEncoding requires. CR and LF are skipped wherever they appear (Go's decoder does the same, so base64 wrapped
 *   into lines works); every other character, including spaces, tabs and the URL-safe `-` and `_`, is an error.
 *   We have to check this ourselves: Node's `Buffer.from(s, 'base64')` silently skips characters it does not know
 *   and accepts missing padding and both alphabets, which would write corrupted bytes instead of failing the mount.
 *   Like Go's (non-strict) StdEncoding, unused bits in the last character need not be zero.
 * - hex: pairs of hex digits, either case, nothing else (no whitespace, no `0x`), so an even length.
 *
 * Error messages say which encoding failed and where (a character offset), never the value or the offending
 * character itself.
 */
export function decodeSecretValue(value: string, encoding: SecretEncoding): Buffer {
  switch (encoding) {
    case 'utf-8':
      return Buffer.from(value, 'utf8');
    case 'base64':
      return decodeStrictBase64(value, 'objectEncoding base64: the value');
    case 'hex':
      return decodeHex(value);
    default:
      // Unreachable for typed callers; a clear message if an unchecked string slips through.
      throw new ContentError(`unknown objectEncoding ${JSON.stringify(String(encoding))}: use utf-8, base64 or hex`);
  }
}

const CR = 0x0d;
const LF = 0x0a;
const PAD = 0x3d; // '='

function isBase64Char(c: number): boolean {
  return (
    (c >= 0x41 && c <= 0x5a) || // A-Z
    (c >= 0x61 && c <= 0x7a) || // a-z
    (c >= 0x30 && c <= 0x39) || // 0-9
    c === 0x2b || // +
    c === 0x2f // /
  );
}

/**
 * Standard base64 by the rules above. `subject` starts the error message ("<subject> is not valid standard
 * base64: <why>"), so other callers (the PFX of a certificate secret) can name what they were decoding.
 */
export function decodeStrictBase64(value: string, subject: string): Buffer {
  const base64Error = (reason: string) => new ContentError(`${subject} is not valid standard base64: ${reason}`);
  // First pass: validate, counting data characters (CR/LF excluded) and where the padding starts.
  let count = 0; // characters other than CR/LF seen so far
  let pad = 0; // '=' characters seen so far; once non-zero only more '=' (up to 2 in all) or CR/LF may follow
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c === CR || c === LF) continue;
    if (c === PAD) {
      pad++;
      count++;
      // Padding may only complete the last quantum of four: "xx==" (positions 3 and 4) or "xxx=" (position 4).
      const posInQuantum = count % 4 === 0 ? 4 : count % 4;
      if (pad > 2 || posInQuantum < 3 || (pad === 2 && posInQuantum !== 4)) {
        throw base64Error(`misplaced padding '=' at character offset ${i}`);
      }
      continue;
    }
    if (pad > 0) throw base64Error(`data after the padding at character offset ${i}`);
    if (!isBase64Char(c)) {
      const hint = c === 0x2d || c === 0x5f ? " (URL-safe base64 with '-' and '_' is not accepted)" : '';
      const kind = c === 0x20 || c === 0x09 ? 'whitespace' : 'a character outside the standard alphabet';
      throw base64Error(`${kind} at character offset ${i}${hint}`);
    }
    count++;
  }
  if (count % 4 !== 0) {
    throw base64Error(`length ${count} (not counting line breaks) is not a multiple of 4; is the '=' padding missing?`);
  }
  // Valid now: "xx=x" failed as data after padding, "x===" as misplaced padding, "xx=" as a bad length.
  const clean = value.includes('\n') || value.includes('\r') ? value.replace(/[\r\n]/g, '') : value;
  return Buffer.from(clean, 'base64');
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  return -1;
}

function decodeHex(value: string): Buffer {
  const out = Buffer.alloc(value.length >> 1);
  for (let i = 0; i + 1 < value.length; i += 2) {
    const hi = hexValue(value.charCodeAt(i));
    const lo = hexValue(value.charCodeAt(i + 1));
    if (hi < 0 || lo < 0) {
      throw new ContentError(
        `objectEncoding hex: the value is not valid hex: a non-hex character at character offset ${hi < 0 ? i : i + 1}`,
      );
    }
    out[i >> 1] = (hi << 4) | lo;
  }
  if (value.length % 2 !== 0) {
    if (hexValue(value.charCodeAt(value.length - 1)) < 0) {
      throw new ContentError(
        `objectEncoding hex: the value is not valid hex: a non-hex character at character offset ${value.length - 1}`,
      );
    }
    throw new ContentError(`objectEncoding hex: the value has an odd number of characters (${value.length})`);
  }
  return out;
}
