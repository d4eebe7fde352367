/**
 * The Azure clouds a SecretProviderClass can name in `cloudName`. Pure data and pure parsing: the identity and Key
 * Vault layers take their hosts from here, so supporting a cloud is one row. Names are matched case-insensitively, as
 * the reference does. Azure Stack Hub (and any other custom cloud) comes from an environment file; reading that file is
 * the caller's job (vault-access), parsing it is here.
 */
import { ProviderError } from '../errors';

export interface Cloud {
  /** Canonical name, e.g. AzurePublicCloud. */
  name: string;
  /** DNS suffix of vault hosts: https://<vault>.<keyVaultDnsSuffix>/ */
  keyVaultDnsSuffix: string;
  /** Entra ID (AAD) or AD FS authority host for client-secret and client-assertion flows, without a trailing slash. */
  authorityHost: string;
  /** Resource (audience) of Key Vault tokens; the scope is `${keyVaultResource}/.default`. */
  keyVaultResource: string;
  /**
   * Whether the authority is one MSAL knows (the four named clouds). Custom clouds must skip MSAL's instance
   * discovery, which would ask login.microsoftonline.com about a host it has never heard of (and fail air-gapped).
   */
  knownAuthority: boolean;
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
  return { name, keyVaultDnsSuffix, authorityHost, keyVaultResource: `https://${keyVaultDnsSuffix}`, knownAuthority: true };
}

export const CLOUD_NAMES: readonly string[] = [...KNOWN_CLOUDS.map((c) => c.name), AZURE_STACK_CLOUD];

/**
 * Other spellings the reference accepts, because its cloud table (go-autorest's environments) lists them: the names
 * `az cloud list` prints. Manifests and `--cloud-name` flags written for the reference use them, so they must work
 * here.
 */
const CLOUD_ALIASES: Readonly<Record<string, string>> = {
  azurecloud: 'AzurePublicCloud',
  azureusgovernment: 'AzureUSGovernmentCloud',
};

/** The canonical spelling of a cloud name (any case, aliases included), or undefined when it is not one we know. */
export function canonicalCloudName(name: string): string | undefined {
  const lower = name.trim().toLowerCase();
  return CLOUD_NAMES.find((n) => n.toLowerCase() === lower) ?? CLOUD_ALIASES[lower];
}

/** A well-known cloud by canonical name; undefined for Azure Stack (which needs its environment file). */
export function knownCloud(canonicalName: string): Cloud | undefined {
  return KNOWN_CLOUDS.find((c) => c.name === canonicalName);
}

export function vaultUrl(vaultName: string, cloud: Cloud): string {
  return `https://${vaultName.toLowerCase()}.${cloud.keyVaultDnsSuffix}/`;
}

/**
 * The cloud an Azure Stack Hub environment file describes (the azure-sdk-for-go format the reference reads):
 * `{"name", "activeDirectoryEndpoint", "keyVaultEndpoint", "keyVaultDNSSuffix", …}`. Field names match in any case, as
 * Go's JSON decoder does, so files written for the reference work unchanged. `path` only names the file in messages;
 * messages name the fields that are wrong, never their values (the text may be any file a SecretProviderClass named).
 */
export function parseCloudEnvironment(text: string, path: string): Cloud {
  const where = `the cloud environment file "${path}" (cloudEnvFileName)`;
  const invalid = (why: string): ProviderError =>
    new ProviderError(
      'InvalidArgument',
      `${where} ${why}: it must be a JSON object with keyVaultDNSSuffix (e.g. vault.local.azurestack.external), ` +
        'activeDirectoryEndpoint and keyVaultEndpoint (https URLs)',
    );
  let parsed: unknown;
  try {
    parsed = JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch {
    // The parser's message quotes the text: never shown, the file may be anything a SecretProviderClass pointed at.
    throw invalid('is not valid JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw invalid('is not a JSON object');
  const field = (name: string): string => {
    const entry = Object.entries(parsed as Record<string, unknown>).find(([k]) => k.toLowerCase() === name.toLowerCase());
    const value = entry?.[1];
    return typeof value === 'string' ? value.trim() : '';
  };

  const suffix = field('keyVaultDNSSuffix').replace(/^\.+/, '').replace(/\/+$/, '').toLowerCase();
  if (!suffix) throw invalid('has no keyVaultDNSSuffix');
  if (!/^[a-z0-9-]+(\.[a-z0-9-]+)+$/.test(suffix)) throw invalid('has a keyVaultDNSSuffix which is not a DNS name');
  const authority = httpsUrl(field('activeDirectoryEndpoint'), 'activeDirectoryEndpoint', invalid);
  // The reference derives the token resource from keyVaultEndpoint; a file without one means https://<suffix>.
  const keyVaultEndpoint = field('keyVaultEndpoint');
  const resource = keyVaultEndpoint ? httpsUrl(keyVaultEndpoint, 'keyVaultEndpoint', invalid) : `https://${suffix}`;
  return {
    name: AZURE_STACK_CLOUD,
    keyVaultDnsSuffix: suffix,
    authorityHost: authority,
    keyVaultResource: resource,
    knownAuthority: false,
  };
}

/** An https URL without trailing slashes (the form authority hosts and resources are compared in). */
function httpsUrl(value: string, field: string, invalid: (why: string) => ProviderError): string {
  if (!value) throw invalid(`has no ${field}`);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw invalid(`has a ${field} which is not a URL`);
  }
  if (url.protocol !== 'https:') throw invalid(`has a ${field} which is not https`);
  return value.replace(/\/+$/, '');
}
