/**
 * The Azure side of the provider, built from its flags and environment: one pool of kept connections (and proxy
 * tunnels) for Key Vault and Entra ID alike, the identity-keyed credential cache and Key Vault access. The provider
 * and `check --probe` build it here, so a probe talks to Azure exactly as a mount would.
 */
import { CredentialCache } from '../identity/credentials';
import { KeyVaultConnections, proxySettingsFrom } from '../keyvault/connections';
import { AzureVaultAccess } from '../keyvault/vault-access';
import type { ProviderMetrics } from '../observability/metrics';
import type { ProviderConfig } from './flags';
import { providerVersion } from './version';

export interface AzureAccess {
  userAgentPrefix: string;
  connections: KeyVaultConnections;
  credentials: CredentialCache;
  vaults: AzureVaultAccess;
}

export interface AzureAccessOptions {
  metrics?: ProviderMetrics;
  /** Appended to the User-Agent (e.g. "check"), after the operator's --custom-user-agent. */
  userAgentSuffix?: string;
  /** Instead of --credential-cache-size. */
  credentialCacheSize?: number;
}

export function createAzureAccess(config: ProviderConfig, env: NodeJS.ProcessEnv, options: AzureAccessOptions = {}): AzureAccess {
  const { metrics } = options;
  const userAgentPrefix = ['csi-provider-azure/' + providerVersion(), config.customUserAgent, options.userAgentSuffix]
    .filter(Boolean)
    .join(' ');
  const connections = new KeyVaultConnections(proxySettingsFrom(env), { maxSocketsPerHost: config.maxRequestsPerVault });
  const credentials = new CredentialCache({
    userAgentPrefix,
    ...(metrics ? { metrics } : {}),
    maxEntries: options.credentialCacheSize ?? config.credentialCacheSize,
    tokenProxy: {
      url: config.tokenProxyUrl,
      sniName: config.sniName,
      ...(Number(env['KUBERNETES_SERVICE_PORT']) > 0 ? { apiServerPort: Number(env['KUBERNETES_SERVICE_PORT']) } : {}),
    },
    // The SDK would let these turn "the node's managed identity" into the provider pod's own workload identity.
    ambientWorkloadIdentity: {
      clientId: Boolean(env['AZURE_CLIENT_ID']),
      tenantId: Boolean(env['AZURE_TENANT_ID']),
      federatedTokenFile: Boolean(env['AZURE_FEDERATED_TOKEN_FILE']),
    },
    agentFor: (url) => connections.agentFor(url),
    // The Azure SDKs' convention for another IMDS address (aad-pod-identity's NMI, and our tests' stand-in).
    ...(env['AZURE_POD_IDENTITY_AUTHORITY_HOST'] ? { imdsEndpoint: env['AZURE_POD_IDENTITY_AUTHORITY_HOST'] } : {}),
  });
  const vaults = new AzureVaultAccess(credentials, {
    userAgentPrefix,
    ...(metrics ? { metrics } : {}),
    connections,
    maxRequestsPerVault: config.maxRequestsPerVault,
    ...(config.vaultRequestsPerSecond > 0 ? { requestsPerSecondPerVault: config.vaultRequestsPerSecond } : {}),
    cloudFiles: { dir: config.cloudEnvFileDir },
  });
  return { userAgentPrefix, connections, credentials, vaults };
}
