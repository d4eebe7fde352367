/**
 * PEM blocks read and written by the rules of Go's encoding/pem (Go 1.25 and later, what the reference is built
 * with). The reference writes a certificate's `.crt` and `.key` files by decoding the stored PEM block by block and
 * encoding each block again, so those files get Go's form whatever the stored text looked like: LF line ends, base64
 * in lines of 64, headers (`Proc-Type` first, then sorted), nothing between blocks. To give the same bytes we read
 * and write the same way; the main file is never re-encoded (it is written as stored).
 *
 * Reading, as Go does: find the first `\n-----END `, take the last `-----BEGIN ` before it that starts a line; the
 * BEGIN line must end in `-----`; lines right after it that contain `:` are headers; the END line must repeat the
 * label and end in `-----`, followed only by spaces or tabs; the body is standard base64 (spaces and tabs dropped,
 * line breaks ignored). A block that breaks a rule is skipped and the search goes on after its END line.
 */
import { ContentError } from '../errors';
import { decodeStrictBase64 } from './encoding';
import { pemEncode } from './pem';

export interface GoPemBlock {
  label: string;
  /** Header lines in the order read (a repeated key keeps its last value, at its first position). */
  headers: Map<string, string>;
  bytes: Buffer;
}

const BEGIN = Buffer.from('-----BEGIN ');
const END = Buffer.from('\n-----END ');
const DASHES = Buffer.from('-----');
const NL = 0x0a;

/** Every block Go's pem.Decode finds in `text`, in order (what a loop of Decode calls over the rest returns). */
export function decodeGoPemBlocks(text: string): GoPemBlock[] {
  const blocks: GoPemBlock[] = [];
  let data: Buffer = Buffer.from(text, 'utf8');
  for (;;) {
    const found = decodeOne(data);
    if (!found) return blocks;
    blocks.push(found.block);
    data = found.rest;
  }
}

/** A block as Go's pem.EncodeToMemory writes it. */
export function encodeGoPemBlock(block: GoPemBlock): string {
  if (block.headers.size === 0) return pemEncode(block.label, block.bytes);
  const keys = [...block.headers.keys()].filter((k) => k !== 'Proc-Type').sort(compareBytes);
  if (block.headers.has('Proc-Type')) keys.unshift('Proc-Type');
  const headerText = keys.map((k) => `${k}: ${block.headers.get(k)}\n`).join('');
  const plain = pemEncode(block.label, block.bytes);
  const afterBegin = plain.indexOf('\n') + 1;
  return `${plain.slice(0, afterBegin)}${headerText}\n${plain.slice(afterBegin)}`;
}

function decodeOne(data: Buffer): { block: GoPemBlock; rest: Buffer } | undefined {
  let rest = data;
  let endTrailerIndex = 0;
  for (;;) {
    if (endTrailerIndex < 0 || endTrailerIndex > rest.length) return undefined;
    rest = rest.subarray(endTrailerIndex);
    let endIndex = rest.indexOf(END);
    if (endIndex < 0) return undefined;
    endTrailerIndex = endIndex + END.length;
    const beginIndex = rest.subarray(0, endIndex).lastIndexOf(BEGIN);
    if (beginIndex < 0 || (beginIndex > 0 && rest[beginIndex - 1] !== NL)) continue;
    const skip = beginIndex + BEGIN.length;
    rest = rest.subarray(skip);
    endIndex -= skip;
    endTrailerIndex -= skip;

    const typeLine = getLine(rest);
    rest = typeLine.rest;
    endIndex -= typeLine.consumed;
    endTrailerIndex -= typeLine.consumed;
    if (!endsWith(typeLine.line, DASHES)) continue;
    const label = typeLine.line.subarray(0, typeLine.line.length - DASHES.length);

    const headers = new Map<string, string>();
    let truncated = false;
    for (;;) {
      if (rest.length === 0) {
        truncated = true;
        break;
      }
      const line = getLine(rest);
      const colon = line.line.indexOf(0x3a);
      if (colon < 0) break;
      headers.set(trimSpace(line.line.subarray(0, colon)), trimSpace(line.line.subarray(colon + 1)));
      rest = line.rest;
      endIndex -= line.consumed;
      endTrailerIndex -= line.consumed;
    }
    if (truncated) return undefined;
    if (headers.size > 0 && endIndex < 0) continue;

    const trailerLength = label.length + DASHES.length;
    if (endTrailerIndex < 0 || rest.length - endTrailerIndex < trailerLength) continue;
    const trailer = rest.subarray(endTrailerIndex, endTrailerIndex + trailerLength);
    if (!trailer.subarray(0, label.length).equals(label) || !endsWith(trailer, DASHES)) continue;
    if (getLine(rest.subarray(endTrailerIndex + trailerLength)).line.length !== 0) continue;

    let bytes: Buffer = Buffer.alloc(0);
    if (endIndex > 0) {
      const base64 = rest.subarray(0, endIndex).toString('latin1').replace(/[ \t]/g, '');
      try {
        bytes = decodeStrictBase64(base64, 'PEM body');
      } catch (err) {
        if (err instanceof ContentError) continue;
        throw err;
      }
    }
    // The END line may start right at endIndex - 1 when the block is empty: skip from there to the end of that line.
    const after = getLine(rest.subarray(endIndex + END.length - 1));
    return { block: { label: label.toString('utf8'), headers, bytes }, rest: after.rest };
  }
}

/** Go's getLine: up to "\n" (exclusive, a "\r" before it dropped), trailing spaces and tabs trimmed. */
function getLine(data: Buffer): { line: Buffer; rest: Buffer; consumed: number } {
  let i = data.indexOf(NL);
  let j: number;
  if (i < 0) {
    i = data.length;
    j = i;
  } else {
    j = i + 1;
    if (i > 0 && data[i - 1] === 0x0d) i--;
  }
  let e = i;
  while (e > 0 && (data[e - 1] === 0x20 || data[e - 1] === 0x09)) e--;
  return { line: data.subarray(0, e), rest: data.subarray(j), consumed: j };
}

function endsWith(data: Buffer, suffix: Buffer): boolean {
  return data.length >= suffix.length && data.subarray(data.length - suffix.length).equals(suffix);
}

/** bytes.TrimSpace for the ASCII white space a header line can hold. */
function trimSpace(data: Buffer): string {
  return data.toString('utf8').replace(/^[\t\n\v\f\r ]+|[\t\n\v\f\r ]+$/g, '');
}

/** Go sorts header keys as byte strings. */
function compareBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}
