/**
 * A minimal reader of DER (distinguished encoding) TLV elements over a Buffer.
 *
 * Why our own and not forge's ASN.1: the chain code needs exact byte slices of a certificate (the issuer and subject
 * Names, the key identifiers) to compare them, and only walks a handful of well-known positions. Forge would copy the
 * whole certificate into its binary-string representation and build an object tree for it; a few bounds-checked
 * index computations are cheaper and keep Buffers throughout. Certificates are DER, so indefinite lengths (BER) are
 * rejected here; the PKCS#12 container, which may be BER, is parsed with forge instead (see pkcs12.ts).
 *
 * Every function throws a plain Error on malformed input; callers decide what that means for them.
 */

/** One element: `tag` is the whole identifier octet (class, constructed bit and number; low-tag-number form only). */
export interface DerElement {
  tag: number;
  /** Offset of the identifier octet: the element's whole encoding is `offset`..`end`. */
  offset: number;
  /** Offset of the first content byte. */
  start: number;
  /** Offset one past the last content byte. */
  end: number;
}

export const TAG_OCTET_STRING = 0x04;
export const TAG_OID = 0x06;
export const TAG_SEQUENCE = 0x30;

/** Context-specific tag number `n`; `constructed` for EXPLICIT (and constructed IMPLICIT) tagging. */
export function contextTag(n: number, constructed: boolean): number {
  return 0x80 | (constructed ? 0x20 : 0) | n;
}

/** Reads the element starting at `offset`; it must end within `limit` (default: the end of the buffer). */
export function readElement(buf: Buffer, offset: number, limit = buf.length): DerElement {
  if (offset + 2 > limit) throw new Error('DER element truncated');
  const tag = buf[offset]!;
  if ((tag & 0x1f) === 0x1f) throw new Error('DER high-tag-number form is not supported');
  let pos = offset + 1;
  const first = buf[pos++]!;
  let length: number;
  if (first < 0x80) {
    length = first;
  } else {
    const count = first & 0x7f;
    // 0x80 is BER's indefinite length; more than 4 length octets cannot describe anything in memory.
    if (count === 0 || count > 4) throw new Error('DER length form not supported');
    if (pos + count > limit) throw new Error('DER element truncated');
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + buf[pos++]!;
  }
  if (pos + length > limit) throw new Error('DER element truncated');
  return { tag, offset, start: pos, end: pos + length };
}

/** The elements directly inside a constructed element, in order. */
export function children(buf: Buffer, parent: DerElement): DerElement[] {
  const out: DerElement[] = [];
  let pos = parent.start;
  while (pos < parent.end) {
    const el = readElement(buf, pos, parent.end);
    out.push(el);
    pos = el.end;
  }
  return out;
}

/** The whole encoding of an element, header included. */
export function encodingOf(buf: Buffer, el: DerElement): Buffer {
  return buf.subarray(el.offset, el.end);
}

/** The content bytes of an element. */
export function contentOf(buf: Buffer, el: DerElement): Buffer {
  return buf.subarray(el.start, el.end);
}
