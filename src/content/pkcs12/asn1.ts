/**
 * ASN.1 access on node-forge's parsed tree for the PFX reader: each accessor checks the shape PKCS#12 prescribes and
 * fails with a ContentError naming the part of the PFX, so the walk itself reads as the ASN.1 definitions it follows.
 */
import * as forge from 'node-forge';
import { ContentError } from '../../errors';

export type Asn1 = forge.asn1.Asn1;

interface FromDerOptions {
  strict: boolean;
  parseAllBytes: boolean;
  decodeBitStrings: boolean;
}

// forge's fromDer takes an options object since 1.x; the published typings only know the older boolean form.
const fromDer = forge.asn1.fromDer as unknown as (bytes: string, options: FromDerOptions) => Asn1;

/**
 * strict: lengths must fit; parseAllBytes: no trailing data (Go's pkcs12, used by the reference, refuses it too);
 * decodeBitStrings off: nothing here needs forge to guess at BIT STRING contents. Throws forge's own error.
 */
export function parseDer(bytes: Buffer): Asn1 {
  return fromDer(bytes.toString('binary'), { strict: true, parseAllBytes: true, decodeBitStrings: false });
}

export function parse(bytes: Buffer, what: string): Asn1 {
  try {
    return parseDer(bytes);
  } catch {
    throw malformed(what);
  }
}

export function toDer(node: Asn1): Buffer {
  return Buffer.from(forge.asn1.toDer(node).getBytes(), 'binary');
}

function malformed(what: string): ContentError {
  return new ContentError(`the PFX is malformed: ${what} is not what PKCS#12 prescribes`);
}

export function required(node: Asn1 | undefined, what: string): Asn1 {
  if (!node) throw malformed(what);
  return node;
}

function isUniversal(node: Asn1 | undefined, type: forge.asn1.Type): node is Asn1 {
  return node !== undefined && node.tagClass === forge.asn1.Class.UNIVERSAL && node.type === type;
}

export function isInteger(node: Asn1): boolean {
  return isUniversal(node, forge.asn1.Type.INTEGER);
}

export function sequence(node: Asn1 | undefined, what: string): Asn1[] {
  if (!isUniversal(node, forge.asn1.Type.SEQUENCE) || !Array.isArray(node.value)) throw malformed(what);
  return node.value;
}

/** The single element inside a `[0] EXPLICIT` wrapper. */
export function explicit(node: Asn1 | undefined, what: string): Asn1 {
  if (
    !node ||
    node.tagClass !== forge.asn1.Class.CONTEXT_SPECIFIC ||
    node.type !== 0 ||
    !Array.isArray(node.value) ||
    node.value.length !== 1
  ) {
    throw malformed(what);
  }
  return node.value[0]!;
}

export function oid(node: Asn1 | undefined, what: string): string {
  if (!isUniversal(node, forge.asn1.Type.OID) || typeof node.value !== 'string') throw malformed(what);
  return forge.asn1.derToOid(node.value);
}

/** A non-negative INTEGER that fits comfortably in a JavaScript number (iteration counts, lengths, versions). */
export function integer(node: Asn1 | undefined, what: string): number {
  if (!isUniversal(node, forge.asn1.Type.INTEGER) || typeof node.value !== 'string') throw malformed(what);
  const bytes = node.value;
  if (bytes.length === 0 || bytes.length > 6 || bytes.charCodeAt(0) & 0x80) throw malformed(what);
  let n = 0;
  for (let i = 0; i < bytes.length; i++) n = n * 256 + bytes.charCodeAt(i);
  return n;
}

/** An iteration count: at least 1 (RFC 7292 and RFC 8018 define no derivation without iterating). */
export function iterationCount(node: Asn1 | undefined, what: string): number {
  const n = integer(node, what);
  if (n < 1) throw malformed(what);
  return n;
}

/**
 * The bytes of an OCTET STRING, also in BER's constructed form (a series of OCTET STRING chunks). With `implicit0`,
 * the string is tagged `[0] IMPLICIT`, as EncryptedContentInfo's content is.
 */
export function octets(node: Asn1 | undefined, what: string, implicit0 = false): Buffer {
  if (!node) throw malformed(what);
  const tagged = implicit0
    ? node.tagClass === forge.asn1.Class.CONTEXT_SPECIFIC && node.type === 0
    : node.tagClass === forge.asn1.Class.UNIVERSAL && node.type === forge.asn1.Type.OCTETSTRING;
  if (!tagged) throw malformed(what);
  if (typeof node.value === 'string') return Buffer.from(node.value, 'binary');
  return Buffer.concat(node.value.map((chunk) => octets(chunk, what)));
}
