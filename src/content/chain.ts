/**
 * Orders the certificates of a PFX as leaf → intermediates → root (`--construct-pem-chain`) by the reference
 * provider's rules, so the file has the same certificates in the same order. Node's X509Certificate exposes
 * neither key identifier, so the extensions are read from the DER with a small reader (der.ts).
 */
import { X509Certificate } from 'node:crypto';
import {
  children,
  contentOf,
  contextTag,
  type DerElement,
  readElement,
  TAG_OCTET_STRING,
  TAG_OID,
  TAG_SEQUENCE,
} from './der';

/** Why the stored order was kept: the links do not cover every certificate, or the reference would fail the mount. */
export type ChainProblem = 'incomplete' | 'no-leaf' | 'cycle' | 'unreadable';

export interface OrderedChain {
  certificates: string[];
  complete: boolean;
  /** Set when `complete` is false. */
  problem?: ChainProblem;
}

interface CertInfo {
  /** Absent identifiers are undefined; a present but empty one is an empty Buffer. */
  ski: Buffer | undefined;
  aki: Buffer | undefined;
}

const EMPTY = Buffer.alloc(0);

/**
 * The reference's rules:
 * - certificate i is linked to the first other certificate j, in stored order, whose subject key identifier (SKI)
 *   equals i's authority key identifier (AKI), compared as bytes; a pair where i has no AKI and j no SKI is skipped
 *   (an absent identifier otherwise compares as empty). Names are never compared, so a certificate without an AKI
 *   links to nothing, and a root whose AKI equals its own SKI links to a copy of itself when it is stored twice;
 * - the leaf is the first certificate, in stored order, that no other certificate links to;
 * - following the links from the leaf must visit every certificate exactly once; then that is the order. If it visits
 *   fewer (a missing intermediate, an unlinked certificate, a second chain, a duplicate), the stored order is kept,
 *   every certificate included, duplicates too.
 * Where the reference fails the mount instead (no certificate that is nobody's issuer: "no leaf found"; links that
 * loop: "constructing chain resulted in cycle"; a certificate it cannot parse), we keep the stored order and say why,
 * so the caller can warn; the pod mounts.
 * This function never throws.
 */
export function orderCertificateChain(pems: string[]): OrderedChain {
  const stored = (problem: ChainProblem): OrderedChain => ({ certificates: [...pems], complete: false, problem });
  let certs: CertInfo[];
  try {
    certs = pems.map(readCertificate);
  } catch {
    return stored('unreadable');
  }
  if (certs.length === 0) return { certificates: [], complete: true };

  const issuerOf = certs.map((cert, i) => certs.findIndex((other, j) => j !== i && linked(cert, other)));
  const isIssuer = new Set(issuerOf.filter((j) => j >= 0));
  const leaf = certs.findIndex((_, i) => !isIssuer.has(i));
  if (leaf < 0) return stored('no-leaf');

  const order: number[] = [];
  for (let i = leaf; i >= 0; i = issuerOf[i]!) {
    if (order.length === certs.length) return stored('cycle');
    order.push(i);
  }
  if (order.length !== certs.length) return stored('incomplete');
  return { certificates: order.map((i) => pems[i]!), complete: true };
}

/** Whether `issuer` is taken as the issuer of `child` by the reference's rule. */
function linked(child: CertInfo, issuer: CertInfo): boolean {
  if (child.aki === undefined && issuer.ski === undefined) return false;
  return (child.aki ?? EMPTY).equals(issuer.ski ?? EMPTY);
}

// ---------------------------------------------------------------------------------------------------------------
// Reading the names and key identifiers out of the certificate's DER.

const OID_SKI = Buffer.from([0x55, 0x1d, 0x0e]); // 2.5.29.14 subjectKeyIdentifier
const OID_AKI = Buffer.from([0x55, 0x1d, 0x23]); // 2.5.29.35 authorityKeyIdentifier

function readCertificate(pem: string): CertInfo {
  const der = new X509Certificate(pem).raw;
  // Certificate ::= SEQUENCE { tbsCertificate TBSCertificate, signatureAlgorithm, signatureValue }
  const tbs = children(der, readElement(der, 0))[0];
  if (!tbs || tbs.tag !== TAG_SEQUENCE) throw new Error('no TBSCertificate');
  // TBSCertificate ::= SEQUENCE { version [0] EXPLICIT (optional), serialNumber, signature, issuer, validity,
  //   subject, subjectPublicKeyInfo, issuerUniqueID [1], subjectUniqueID [2], extensions [3] EXPLICIT }
  const fields = children(der, tbs);
  const info: CertInfo = { ski: undefined, aki: undefined };
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
      if (ski.tag === TAG_OCTET_STRING) info.ski = contentOf(der, ski);
    } else if (oid.equals(OID_AKI)) {
      // AuthorityKeyIdentifier ::= SEQUENCE { keyIdentifier [0] IMPLICIT OCTET STRING OPTIONAL, … }
      const aki = readElement(der, value.start, value.end);
      if (aki.tag !== TAG_SEQUENCE) continue;
      const keyId = children(der, aki).find((el) => el.tag === contextTag(0, false));
      if (keyId) info.aki = contentOf(der, keyId);
    }
  }
}
