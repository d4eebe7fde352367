/**
 * Everything Azure, local: a test CA, a token registry, IMDS, Key Vault, and the CONNECT proxy that routes real vault
 * host names to the Key Vault stand-in. `providerEnv()` is the whole contract with the product: standard SDK and Node
 * environment variables, nothing test-only.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo, Socket } from 'node:net';
import { connect as tlsConnect, createServer as createTlsServer, type Server as TlsServer, type TLSSocket } from 'node:tls';
import { startConnectProxy, type ConnectProxy, type ProxyTarget } from './connect-proxy';
import { DEFAULT_KNOWN_RESOURCES, startImds, type ImdsIdentities, type ImdsStandIn } from './imds';
import { CLOUD_SUFFIXES, startKeyVault, type KeyVaultStandIn } from './keyvault';
import { createTestPki, type TestPki } from './pki';
import { createTokenRegistry, type TokenRegistry } from './tokens';

export interface AzureStandInsOptions {
  /** Tenant of the vaults and of IMDS tokens; random when omitted. */
  tenantId?: string;
  /** The node's managed identities. Default: a system-assigned identity with id DEFAULT_SYSTEM_IDENTITY. */
  identities?: ImdsIdentities;
  tokenLifetimeSeconds?: number;
  /** Key Vault's largest listing page (default 25). */
  pageSize?: number;
  /** Extra proxy routes (e.g. Entra ID stand-ins), consulted before the vault routes. */
  route?: (host: string, port: number) => ProxyTarget | undefined;
  /**
   * Key Vault DNS suffixes beyond the four named clouds' (e.g. an Azure Stack Hub's vault.local.azurestack.external).
   * Their vaults (addVault with that suffix) are served through a TLS front with a certificate for `*.<suffix>`.
   */
  extraVaultSuffixes?: string[];
  /** Resources IMDS knows beyond its defaults (e.g. an Azure Stack Hub vault resource). */
  extraImdsResources?: string[];
  /** Host names the CONNECT proxy refuses (403), as a corporate proxy refuses hosts it does not allow. */
  refuseHosts?: string[];
}

export interface AzureStandIns {
  tenantId: string;
  pki: TestPki;
  tokens: TokenRegistry;
  imds: ImdsStandIn;
  keyVault: KeyVaultStandIn;
  proxy: ConnectProxy;
  /** The test CA's PEM file (what NODE_EXTRA_CA_CERTS names). */
  caFile: string;
  /** Temp directory owned by this instance, removed by close(). */
  dir: string;
  /** Exactly the environment the provider process needs to reach the stand-ins. */
  providerEnv(): Record<string, string>;
  close(): Promise<void>;
}

export const DEFAULT_SYSTEM_IDENTITY = 'node-system-assigned-identity';

export async function startAzureStandIns(options: AzureStandInsOptions = {}): Promise<AzureStandIns> {
  const tenantId = options.tenantId ?? randomUUID();
  const pki = createTestPki();
  const tokens = createTokenRegistry();
  const dir = mkdtempSync(join(tmpdir(), 'csi-azure-standins-'));
  const caFile = pki.writeCaFile(dir);
  const started: Array<{ close(): Promise<void> }> = [];
  try {
    const imds = await startImds({
      tokens,
      identities: options.identities ?? { systemAssigned: { id: DEFAULT_SYSTEM_IDENTITY } },
      tenantId,
      ...(options.tokenLifetimeSeconds !== undefined ? { tokenLifetimeSeconds: options.tokenLifetimeSeconds } : {}),
      ...(options.extraImdsResources ? { knownResources: [...DEFAULT_KNOWN_RESOURCES, ...options.extraImdsResources] } : {}),
    });
    started.push(imds);
    const keyVault = await startKeyVault({
      pki,
      tokens,
      tenantId,
      ...(options.pageSize !== undefined ? { pageSize: options.pageSize } : {}),
    });
    started.push(keyVault);
    const suffixes = Object.keys(CLOUD_SUFFIXES);
    const extraSuffixes = (options.extraVaultSuffixes ?? []).map((x) => x.toLowerCase());
    const front = extraSuffixes.length > 0 ? await startVaultFront(pki, extraSuffixes, keyVault) : undefined;
    if (front) started.push(front);
    const proxy = await startConnectProxy({
      route: (host, port) => {
        if (options.refuseHosts?.includes(host)) return undefined;
        const extra = options.route?.(host, port);
        if (extra) return extra;
        if (front && port === 443 && extraSuffixes.some((x) => host.endsWith(`.${x}`))) return { host: '127.0.0.1', port: front.port };
        // Every vault host goes to the stand-in; it refuses unknown vault names in the TLS handshake.
        if (port === 443 && suffixes.some((s) => host.endsWith(`.${s}`))) return { host: keyVault.host, port: keyVault.port };
        return undefined;
      },
    });
    started.push(proxy);
    return {
      tenantId,
      pki,
      tokens,
      imds,
      keyVault,
      proxy,
      caFile,
      dir,
      providerEnv: () => ({
        AZURE_POD_IDENTITY_AUTHORITY_HOST: imds.url,
        HTTPS_PROXY: proxy.url,
        // The SDK sends http requests through HTTPS_PROXY too unless exempted; IMDS is on loopback.
        NO_PROXY: '127.0.0.1,localhost,::1',
        NODE_EXTRA_CA_CERTS: caFile,
      }),
      async close() {
        // Proxy first so no new tunnel reaches a closing server.
        for (const s of [...started].reverse()) await s.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    for (const s of started.reverse()) await s.close().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

/**
 * TLS front for vaults under extra DNS suffixes: terminates TLS with a certificate for `*.<suffix>` and re-originates
 * it to the Key Vault stand-in with the same server name, so the stand-in sees the vault's host as the product sent it.
 */
async function startVaultFront(
  pki: TestPki,
  suffixes: string[],
  keyVault: KeyVaultStandIn,
): Promise<{ port: number; close(): Promise<void> }> {
  const cert = pki.issueServerCert(suffixes.map((x) => `*.${x}`));
  const sockets = new Set<Socket>();
  const server: TlsServer = createTlsServer({ cert: cert.certPem, key: cert.keyPem }, (client: TLSSocket) => {
    sockets.add(client);
    client.once('close', () => sockets.delete(client));
    const servername = typeof client.servername === 'string' ? client.servername : undefined;
    // The hop to the stand-in is test-internal: its certificate does not name these suffixes.
    const upstream = tlsConnect({ host: keyVault.host, port: keyVault.port, ...(servername ? { servername } : {}), rejectUnauthorized: false });
    sockets.add(upstream);
    upstream.once('close', () => sockets.delete(upstream));
    client.pipe(upstream);
    upstream.pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const x of sockets) x.destroy();
      }),
  };
}
