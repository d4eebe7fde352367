/**
 * The TLS server name (SNI) of the AKS identity binding token proxy. The proxy shares the API server's address and is
 * reached only with its own server name, derived from the cluster's id as AKS (and the reference provider) does:
 *
 *   id   = X from the API server certificate's DNS name "hcp-kubernetes.X.svc.cluster.local"
 *   name = "a" + lower(base32hex-without-padding(sha256("identity-binding" + id))) + ".ests.aks"
 *
 * The id is read from the certificate the API server presents at kubernetes.default.svc.cluster.local, verified
 * against the service account CA. `--sni-name` skips all of this.
 */
import { createHash, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { connect } from 'node:tls';

export const API_SERVER_HOST = 'kubernetes.default.svc.cluster.local';
export const SERVICE_ACCOUNT_CA_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/ca.crt';

const SAN_PREFIX = 'hcp-kubernetes.';
const SAN_SUFFIX = '.svc.cluster.local';

export function identityBindingSniName(clusterId: string): string {
  const digest = createHash('sha256').update(`identity-binding${clusterId}`, 'utf8').digest();
  return `a${base32HexNoPadding(digest)}.ests.aks`.toLowerCase();
}

/** RFC 4648 "base32hex" (0-9A-V), without padding: Go's base32.HexEncoding.WithPadding(NoPadding). */
export function base32HexNoPadding(bytes: Uint8Array): string {
  const alphabet = '0123456789ABCDEFGHIJKLMNOPQRSTUV';
  let out = '';
  let buffer = 0;
  let bits = 0;
  for (const byte of bytes) {
    buffer = ((buffer << 8) | byte) & 0xffff;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(buffer >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += alphabet[(buffer << (5 - bits)) & 31];
  return out;
}

/** The cluster id from a certificate's subjectAltName text ("DNS:a, DNS:b, IP Address:…"); undefined if absent. */
export function clusterIdFromSubjectAltName(subjectAltName: string | undefined): string | undefined {
  for (const entry of (subjectAltName ?? '').split(',')) {
    const name = entry.trim();
    if (!name.startsWith('DNS:')) continue;
    const dns = name.slice(4);
    if (dns.startsWith(SAN_PREFIX) && dns.endsWith(SAN_SUFFIX)) {
      const id = dns.slice(SAN_PREFIX.length, dns.length - SAN_SUFFIX.length);
      if (id) return id;
    }
  }
  return undefined;
}

export interface SniDiscoveryOptions {
  /** Where to connect; default the in-cluster API server name. */
  host?: string;
  /** Default 443 (main.ts passes KUBERNETES_SERVICE_PORT when set). */
  port?: number;
  caFile?: string;
  timeoutMs?: number;
}

/**
 * Connects to the API server (TLS, verified against the service account CA, as the reference does), reads the
 * cluster id from its certificate and returns the proxy's server name. Errors say what failed and that --sni-name
 * avoids the discovery.
 */
export async function discoverSniName(options: SniDiscoveryOptions = {}): Promise<string> {
  const caFile = options.caFile ?? SERVICE_ACCOUNT_CA_FILE;
  const host = options.host ?? API_SERVER_HOST;
  const port = options.port ?? 443;
  let ca: string;
  try {
    ca = await readFile(caFile, 'utf8');
  } catch (err) {
    throw new Error(
      `the service account CA ${caFile} cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}), so the ` +
        "token proxy's server name cannot be derived from the API server certificate",
    );
  }
  const leaf = await new Promise<X509Certificate>((resolve, reject) => {
    const socket = connect({ host, port, servername: API_SERVER_HOST, ca, minVersion: 'TLSv1.2' });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`the API server at ${host}:${port} did not complete a TLS handshake within ${(options.timeoutMs ?? 10_000) / 1000} s`));
    }, options.timeoutMs ?? 10_000);
    socket.once('secureConnect', () => {
      clearTimeout(timer);
      const raw = socket.getPeerCertificate().raw;
      socket.end();
      try {
        resolve(new X509Certificate(raw));
      } catch (err) {
        reject(err instanceof Error ? err : new Error(String(err)));
      }
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(new Error(`TLS connection to the API server at ${host}:${port} failed (${err.code ?? err.message})`));
    });
  });
  const id = clusterIdFromSubjectAltName(leaf.subjectAltName);
  if (!id) {
    throw new Error(`the API server certificate at ${host}:${port} has no DNS name ${SAN_PREFIX}<cluster id>${SAN_SUFFIX}`);
  }
  return identityBindingSniName(id);
}
