/**
 * Orders the certificates of a PFX as leaf → intermediates → root (`--construct-pem-chain`), the order TLS servers
 * send and most clients expect in a PEM bundle.
 *
 * Each certificate is linked to its issuer among the others:
 * - by key identifier: the child's authority key identifier (AKI keyIdentifier) equals the candidate's subject key
 *   identifier (SKI). When both exist and differ, the candidate is not the issuer, whatever the names say (a re-keyed
 *   CA keeps its name).
 * - otherwise (the child has no AKI or the candidate no SKI, which RFC 5280 allows for leaves and old CAs), by name:
 *   the child's issuer equals the candidate's subject. We compare the DER bytes, and as a second chance Node's
 *   rendering of the names (it decodes string types, so PrintableString vs UTF8String with the same text match).
 * Node's X509Certificate exposes neither identifier (only `checkIssued`, which mixes both rules and key usage checks
 * without telling which matched), so the extensions are read from the DER with a small reader (der.ts).
 *
 * A self-issued certificate (a root) ends the chain: it is never linked to anything, so no cycle can start there.
 * The result is complete when the links form a single path through all distinct certificates; anything else
 * (missing intermediate, two unrelated certificates, cross-signing loops, two candidate issuers) returns the stored
 * order unchanged with `complete: false`, so the caller can warn and still write every certificate.
 *
 * The reference provider matched AKI against SKI only, which linked a leaf without AKI to any certificate without SKI,
 * and dropped certificates it could not link. Neither happens here. This function never throws.
 */
import { X509Certificate } from 'crypto';
import {
  children,
  contentOf,
  contextTag,
  type DerElement,
  encodingOf,
  readElement,
  TAG_OCTET_STRING,
  TAG_OID,
  TAG_SEQUENCE,
} from './der';

export interface OrderedChain {
  certificates: string[];
  complete: boolean;
}

interface CertInfo {
  pem: string;
  der: Buffer;
  subject: Buffer;
  issuer: Buffer;
  subjectText: string;
  issuerText: string;
  ski: Buffer | undefined;
  aki: Buffer | undefined;
}

export function orderCertificateChain(pems: string[]): OrderedChain {
  const stored = { certificates: [...pems], complete: false };
  let certs: CertInfo[];
  try {
    certs = dedupe(pems.map(readCertificate));
  } catch {
    return stored; // not a certificate we can read: keep what we were given
  }
  if (certs.length <= 1) return { certificates: certs.map((c) => c.pem), complete: true };

  const issuerOf = certs.map((cert, i) => findIssuer(cert, i, certs));
  if (issuerOf.includes(-2)) return stored; // ambiguous: two certificates could have issued the same one

  // The leaf is the one certificate that issued none of the others.
  const isIssuer = new Set(issuerOf.filter((j) => j >= 0));
  const leaves = certs.map((_, i) => i).filter((i) => !isIssuer.has(i));
  if (leaves.length !== 1) return stored;

  const order: number[] = [];
  const seen = new Set<number>();
  for (let i = leaves[0]!; i >= 0 && !seen.has(i); i = issuerOf[i]!) {
    seen.add(i);
    order.push(i);
  }
  if (order.length !== certs.length) return stored;
  return { certificates: order.map((i) => certs[i]!.pem), complete: true };
}

/** Index of the certificate that issued certs[i]; -1 for none, -2 when more than one candidate qualifies. */
function findIssuer(cert: CertInfo, i: number, certs: CertInfo[]): number {
  if (isSelfIssued(cert)) return -1;
  let found = -1;
  for (let j = 0; j < certs.length; j++) {
    if (j === i || !issued(certs[j]!, cert)) continue;
    if (found >= 0) return -2;
    found = j;
  }
  return found;
}

function issued(parent: CertInfo, child: CertInfo): boolean {
  if (child.aki && parent.ski) return child.aki.equals(parent.ski);
  return namesEqual(child.issuer, child.issuerText, parent.subject, parent.subjectText);
}

function isSelfIssued(cert: CertInfo): boolean {
  if (!namesEqual(cert.issuer, cert.issuerText, cert.subject, cert.subjectText)) return false;
  // Same name but a different key identifier: a CA certificate issued by an older key of the same CA.
  return !(cert.aki && cert.ski) || cert.aki.equals(cert.ski);
}

function namesEqual(a: Buffer, aText: string, b: Buffer, bText: string): boolean {
  return a.equals(b) || aText === bText;
}

/** Exact duplicates (same DER) are written once, at the first position they appear. */
function dedupe(certs: CertInfo[]): CertInfo[] {
  const seen = new Set<string>();
  return certs.filter((c) => {
    const key = c.der.toString('base64');
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Reading the names and key identifiers out of the certificate's DER.

const OID_SKI = Buffer.from([0x55, 0x1d, 0x0e]); // 2.5.29.14 subjectKeyIdentifier
const OID_AKI = Buffer.from([0x55, 0x1d, 0x23]); // 2.5.29.35 authorityKeyIdentifier

function readCertificate(pem: string): CertInfo {
  const x509 = new X509Certificate(pem);
  const der = x509.raw;
  // Certificate ::= SEQUENCE { tbsCertificate TBSCertificate, signatureAlgorithm, signatureValue }
  const tbs = children(der, readElement(der, 0))[0];
  if (!tbs || tbs.tag !== TAG_SEQUENCE) throw new Error('no TBSCertificate');
  // TBSCertificate ::= SEQUENCE { version [0] EXPLICIT (optional), serialNumber, signature, issuer, validity,
  //   subject, subjectPublicKeyInfo, issuerUniqueID [1], subjectUniqueID [2], extensions [3] EXPLICIT }
  const fields = children(der, tbs);
  const base = fields[0]?.tag === contextTag(0, true) ? 1 : 0;
  const issuer = fields[base + 2];
  const subject = fields[base + 4];
  if (!issuer || !subject) throw new Error('TBSCertificate too short');
  const info: CertInfo = {
    pem,
    der,
    issuer: encodingOf(der, issuer),
    subject: encodingOf(der, subject),
    issuerText: x509.issuer,
    subjectText: x509.subject,
    ski: undefined,
    aki: undefined,
  };
  const extensions = fields.find((f) => f.tag === contextTag(3, true));
  if (extensions) readKeyIdentifiers(der, children(der, extensions)[0], info);
  return info;
}

// Extensions ::= SEQUENCE OF Extension; Extension ::= SEQUENCE { extnID OID, critical BOOLEAN DEFAULT FALSE,
//   extnValue OCTET STRING (containing the DER of the extension's value) }
function readKeyIdentifiers(der: Buffer, list: DerElement | undefined, info: CertInfo): void {
  if (!list || list.tag !== TAG_SEQUENCE) return;
  for (const ext of children(der, list)) {
    const parts = children(der, ext);
    const id = parts[0];
    const value = parts[parts.length - 1];
    if (!id || id.tag !== TAG_OID || !value || value.tag !== TAG_OCTET_STRING) continue;
    const oid = contentOf(der, id);
    if (oid.equals(OID_SKI)) {
      // SubjectKeyIdentifier ::= OCTET STRING
      const ski = readElement(der, value.start, value.end);
      if (ski.tag === TAG_OCTET_STRING) info.ski = nonEmpty(contentOf(der, ski));
    } else if (oid.equals(OID_AKI)) {
      // AuthorityKeyIdentifier ::= SEQUENCE { keyIdentifier [0] IMPLICIT OCTET STRING OPTIONAL, … }
      const aki = readElement(der, value.start, value.end);
      if (aki.tag !== TAG_SEQUENCE) continue;
      const keyId = children(der, aki).find((el) => el.tag === contextTag(0, false));
      if (keyId) info.aki = nonEmpty(contentOf(der, keyId));
    }
  }
}

function nonEmpty(bytes: Buffer): Buffer | undefined {
  return bytes.length > 0 ? bytes : undefined;
}
