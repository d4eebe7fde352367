/**
 * PEM text: writing one block, and finding the blocks of a bundle.
 *
 * The output format matches what Go's encoding/pem writes (and what the reference provider therefore produced):
 * `-----BEGIN <label>-----`, base64 in lines of 64 characters, `-----END <label>-----`, each line ending in "\n".
 */

/** One PEM block of a bundle, exactly as it appears in the text (`-----BEGIN …` to the end of `-----END …-----`). */
export interface PemBlock {
  label: string;
  text: string;
}

const LINE = 64;

/** Encodes DER bytes as one PEM block. */
export function pemEncode(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString('base64');
  let body = '';
  for (let i = 0; i < b64.length; i += LINE) body += `${b64.slice(i, i + LINE)}\n`;
  return `-----BEGIN ${label}-----\n${body}-----END ${label}-----\n`;
}

// A block runs from a BEGIN line to the first END line with the same label, without crossing another BEGIN (so a
// block missing its END line is dropped instead of swallowing the next one). Text between blocks (for example
// OpenSSL's "Bag Attributes" lines) is not part of any block.
const BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----(?:(?!-----BEGIN )[\s\S])*?-----END \1-----/g;

/** The PEM blocks of a bundle, in the order they appear. Text that is not inside a block is ignored. */
export function splitPemBlocks(text: string): PemBlock[] {
  const blocks: PemBlock[] = [];
  for (const match of text.matchAll(BLOCK)) blocks.push({ label: match[1]!, text: match[0] });
  return blocks;
}
