/**
 * The Azure clouds a SecretProviderClass can name (CONTRACT §2). Pure data: the identity and Key Vault layers take
 * their hosts from here, so supporting a cloud is one row. Names are matched case-insensitively, as the reference does.
 */

export interface Cloud {
  /** Canonical name, e.g. AzurePublicCloud. */
  name: string;
  /** DNS suffix of vault hosts: https://<vault>.<keyVaultDnsSuffix>/ */
  keyVaultDnsSuffix: string;
  /** Entra ID (AAD) authority host for client-secret and client-assertion flows. */
  authorityHost: string;
  /** Resource (audience) of Key Vault tokens; the scope is `${keyVaultResource}/.default`. */
  keyVaultResource: string;
}

const KNOWN_CLOUDS: readonly Cloud[] = [
  cloud('AzurePublicCloud', 'vault.azure.net', 'https://login.microsoftonline.com'),
  cloud('AzureUSGovernmentCloud', 'vault.usgovcloudapi.net', 'https://login.microsoftonline.us'),
  cloud('AzureChinaCloud', 'vault.azure.cn', 'https://login.chinacloudapi.cn'),
  cloud('AzureGermanCloud', 'vault.microsoftazure.de', 'https://login.microsoftonline.de'),
];

/** Azure Stack Hub: its hosts come from a per-mount environment file (`cloudEnvFileName`). */
export const AZURE_STACK_CLOUD = 'AzureStackCloud';

function cloud(name: string, keyVaultDnsSuffix: string, authorityHost: string): Cloud {
  return { name, keyVaultDnsSuffix, authorityHost, keyVaultResource: `https://${keyVaultDnsSuffix}` };
}

export const CLOUD_NAMES: readonly string[] = [...KNOWN_CLOUDS.map((c) => c.name), AZURE_STACK_CLOUD];

/** The canonical spelling of a cloud name, or undefined when it is not one we know. */
export function canonicalCloudName(name: string): string | undefined {
  const lower = name.trim().toLowerCase();
  return CLOUD_NAMES.find((n) => n.toLowerCase() === lower);
}

/** A well-known cloud by canonical name; undefined for Azure Stack (which needs its environment file). */
export function knownCloud(canonicalName: string): Cloud | undefined {
  return KNOWN_CLOUDS.find((c) => c.name === canonicalName);
}

export function vaultUrl(vaultName: string, cloud: Cloud): string {
  return `https://${vaultName.toLowerCase()}.${cloud.keyVaultDnsSuffix}/`;
}
