/**
 * A throwaway certificate authority for the hermetic tests. The stand-ins for Azure endpoints speak real TLS with
 * certificates issued here, and the provider trusts them only through NODE_EXTRA_CA_CERTS: the product keeps its
 * normal certificate checks and has no test switch.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import forge from 'node-forge';

export interface IssuedCert {
  certPem: string;
  keyPem: string;
}

export interface IssueServerCertOptions {
  /** IP SANs; default ['127.0.0.1'] so a stand-in can also be reached by address. */
  ipAddresses?: string[];
  /** Common name; default the first DNS name. */
  commonName?: string;
}

export interface TestPki {
  caCertPem: string;
  /** The CA's private key, for tests that need to issue something unusual themselves. */
  caKeyPem: string;
  /** Writes the CA certificate as `test-ca.pem` into `dir` (created if missing) and returns the file's path. */
  writeCaFile(dir: string): string;
  /** A TLS server certificate (serverAuth) for the given DNS names, wildcards allowed (`*.vault.azure.net`). */
  issueServerCert(dnsNames: string[], options?: IssueServerCertOptions): IssuedCert;
}

/** A fresh CA with an RSA 2048 key. Each call makes a new one, so test files never share trust by accident. */
export function createTestPki(commonName = 'csi-provider-azure test CA'): TestPki {
  const caKey = rsaKeyPair();
  const caCert = forge.pki.createCertificate();
  caCert.publicKey = caKey.forgePublic;
  caCert.serialNumber = serialNumber();
  // Backdated an hour so small clock differences between processes never make it "not yet valid".
  caCert.validity.notBefore = new Date(Date.now() - 3600_000);
  caCert.validity.notAfter = new Date(Date.now() + 7 * 24 * 3600_000);
  const caName = [
    { name: 'commonName', value: commonName },
    { name: 'organizationName', value: 'csi-provider-azure tests' },
  ];
  caCert.setSubject(caName);
  caCert.setIssuer(caName);
  caCert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    // OpenSSL 3 refuses a CA that cannot sign certificates.
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  caCert.sign(caKey.forgePrivate, forge.md.sha256.create());
  const caCertPem = forge.pki.certificateToPem(caCert);
  const caKeyId = caCert.generateSubjectKeyIdentifier().getBytes();

  return {
    caCertPem,
    caKeyPem: caKey.privatePem,
    writeCaFile(dir: string): string {
      mkdirSync(dir, { recursive: true });
      const path = join(dir, 'test-ca.pem');
      writeFileSync(path, caCertPem, { mode: 0o644 });
      return path;
    },
    issueServerCert(dnsNames: string[], options: IssueServerCertOptions = {}): IssuedCert {
      if (dnsNames.length === 0) throw new Error('issueServerCert needs at least one DNS name');
      const key = rsaKeyPair();
      const cert = forge.pki.createCertificate();
      cert.publicKey = key.forgePublic;
      cert.serialNumber = serialNumber();
      cert.validity.notBefore = new Date(Date.now() - 3600_000);
      cert.validity.notAfter = new Date(Date.now() + 24 * 3600_000);
      cert.setSubject([{ name: 'commonName', value: options.commonName ?? dnsNames[0]! }]);
      cert.setIssuer(caCert.subject.attributes);
      const ips = options.ipAddresses ?? ['127.0.0.1'];
      cert.setExtensions([
        { name: 'basicConstraints', cA: false, critical: true },
        { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
        { name: 'extKeyUsage', serverAuth: true },
        // Type 2 = dNSName, 7 = iPAddress (RFC 5280 GeneralName); Node checks the SAN, never the CN.
        { name: 'subjectAltName', altNames: [...dnsNames.map((value) => ({ type: 2, value })), ...ips.map((ip) => ({ type: 7, ip }))] },
        { name: 'subjectKeyIdentifier' },
        { name: 'authorityKeyIdentifier', keyIdentifier: caKeyId },
      ]);
      cert.sign(caKey.forgePrivate, forge.md.sha256.create());
      return { certPem: forge.pki.certificateToPem(cert), keyPem: key.privatePem };
    },
  };
}

interface RsaKeys {
  privatePem: string;
  forgePrivate: forge.pki.rsa.PrivateKey;
  forgePublic: forge.pki.rsa.PublicKey;
}

/** Node generates the key (fast, native); forge only signs. */
function rsaKeyPair(): RsaKeys {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  return {
    privatePem: privateKey,
    forgePrivate: forge.pki.privateKeyFromPem(privateKey),
    forgePublic: forge.pki.publicKeyFromPem(publicKey),
  };
}

/** 16 random bytes with the top bit clear: a positive DER integer, unique per certificate. */
function serialNumber(): string {
  const bytes = randomBytes(16);
  bytes[0] = bytes[0]! & 0x7f;
  return bytes.toString('hex');
}
