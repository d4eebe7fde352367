import { ProviderError } from '../../../src/errors';
import { canonicalCloudName, CLOUD_NAMES, knownCloud, parseCloudEnvironment, vaultUrl } from '../../../src/spec/clouds';

describe('clouds', () => {
  it('knows the four named clouds with their vault suffixes, authority hosts and Key Vault resources', () => {
    expect(CLOUD_NAMES).toEqual(['AzurePublicCloud', 'AzureUSGovernmentCloud', 'AzureChinaCloud', 'AzureGermanCloud', 'AzureStackCloud']);
    expect(knownCloud('AzureUSGovernmentCloud')).toEqual({
      name: 'AzureUSGovernmentCloud',
      keyVaultDnsSuffix: 'vault.usgovcloudapi.net',
      authorityHost: 'https://login.microsoftonline.us',
      keyVaultResource: 'https://vault.usgovcloudapi.net',
      knownAuthority: true,
    });
    expect(knownCloud('AzureChinaCloud')!.authorityHost).toBe('https://login.chinacloudapi.cn');
    expect(knownCloud('AzureGermanCloud')!.keyVaultDnsSuffix).toBe('vault.microsoftazure.de');
    expect(canonicalCloudName(' azurestackcloud ')).toBe('AzureStackCloud');
    expect(knownCloud('AzureStackCloud')).toBeUndefined();
    expect(vaultUrl('Shop-KV', knownCloud('AzureChinaCloud')!)).toBe('https://shop-kv.vault.azure.cn/');
  });
});

describe('parseCloudEnvironment (Azure Stack Hub)', () => {
  it('reads the reference\'s environment file, field names in any case, trailing slashes dropped', () => {
    const text = JSON.stringify({
      name: 'AzureStackCloud',
      ActiveDirectoryEndpoint: 'https://adfs.local.azurestack.external/',
      keyvaultendpoint: 'https://vault.local.azurestack.external/',
      keyVaultDNSSuffix: 'vault.local.azurestack.external',
      resourceManagerEndpoint: 'https://management.local.azurestack.external/',
    });
    expect(parseCloudEnvironment(`\uFEFF${text}`, '/etc/stack.json')).toEqual({
      name: 'AzureStackCloud',
      keyVaultDnsSuffix: 'vault.local.azurestack.external',
      authorityHost: 'https://adfs.local.azurestack.external',
      keyVaultResource: 'https://vault.local.azurestack.external',
      knownAuthority: false,
    });
  });

  it('derives the Key Vault resource from the suffix when keyVaultEndpoint is absent', () => {
    const cloud = parseCloudEnvironment(JSON.stringify({ activeDirectoryEndpoint: 'https://login.microsoftonline.com/', keyVaultDNSSuffix: '.vault.x.example' }), 'f');
    expect(cloud.keyVaultResource).toBe('https://vault.x.example');
  });

  it.each([
    ['{', 'is not valid JSON'],
    ['[]', 'is not a JSON object'],
    ['{"activeDirectoryEndpoint": "https://login.microsoftonline.com"}', 'has no keyVaultDNSSuffix'],
    ['{"keyVaultDNSSuffix": "vault.x.example"}', 'has no activeDirectoryEndpoint'],
    ['{"keyVaultDNSSuffix": "vault x", "activeDirectoryEndpoint": "https://a"}', 'which is not a DNS name'],
    ['{"keyVaultDNSSuffix": "vault.x.example", "activeDirectoryEndpoint": "http://adfs.x.example/"}', 'which is not https'],
    ['{"keyVaultDNSSuffix": "vault.x.example", "activeDirectoryEndpoint": "https://a", "keyVaultEndpoint": "vault"}', 'which is not a URL'],
  ])('%s fails: %s, naming the file and the fields it needs', (text, fragment) => {
    let error: unknown;
    try {
      parseCloudEnvironment(text, '/etc/kubernetes/stack.json');
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ProviderError);
    expect((error as ProviderError).status).toBe('InvalidArgument');
    expect((error as Error).message).toContain('"/etc/kubernetes/stack.json" (cloudEnvFileName)');
    expect((error as Error).message).toContain(fragment);
    expect((error as Error).message).toContain('keyVaultDNSSuffix');
  });
});
