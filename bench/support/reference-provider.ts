/**
 * The reference provider (the Go provider AKS ships, v1.8.2) for the benchmark, built from its published Go module by
 * `test/k8s/build.sh reference`, against the same stand-ins as ours through the standard mechanisms a Go program
 * honours: HTTPS_PROXY for Key Vault, HTTP_PROXY for IMDS (Go's IMDS address is fixed), SSL_CERT_FILE for their CA.
 */
import { execFileSync } from 'node:child_process';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AzureStandIns } from '../../test/support/azure-standins';
import { repoRoot } from '../../test/support/driver-client';

const IMDS_HOST = '169.254.169.254';

export type ReferenceBuild = { binary: string } | { unavailable: string };

/** Builds (or finds the cached build of) the reference; a failure is a reason to print, not an exception. */
export function buildReferenceProvider(): ReferenceBuild {
  try {
    const out = execFileSync('bash', ['test/k8s/build.sh', 'reference'], {
      cwd: repoRoot(),
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 15 * 60_000,
    });
    return { binary: out.trim().split('\n').pop()! };
  } catch (err) {
    const stderr = String((err as { stderr?: unknown }).stderr ?? '').trim();
    return { unavailable: (stderr.split('\n').filter(Boolean).pop() ?? (err as Error).message).slice(0, 300) };
  }
}

/**
 * A plain-http forward proxy that passes requests for the IMDS address to the IMDS stand-in and refuses the rest,
 * so the reference reaches "IMDS" exactly as it would through a node's HTTP_PROXY.
 */
export async function startImdsForwarder(imdsUrl: string): Promise<{ url: string; close(): Promise<void> }> {
  const target = new URL(imdsUrl);
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://invalid');
    if (url.hostname !== IMDS_HOST) {
      req.resume();
      res.writeHead(403, { Connection: 'close' }).end();
      return;
    }
    const upstream = request(
      { host: target.hostname, port: target.port, method: req.method, path: `${url.pathname}${url.search}`, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => res.writeHead(502, { Connection: 'close' }).end());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The environment that points the reference at the stand-ins (a clean one, as startProvider gives ours). */
export function referenceEnv(azure: AzureStandIns, imdsForwarderUrl: string): Record<string, string> {
  return {
    HTTPS_PROXY: azure.proxy.url,
    HTTP_PROXY: imdsForwarderUrl,
    NO_PROXY: '127.0.0.1,localhost,::1',
    SSL_CERT_FILE: azure.caFile,
  };
}
