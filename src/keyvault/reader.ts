import { CertificateClient } from '@azure/keyvault-certificates';
import { KeyClient } from '@azure/keyvault-keys';
import { SecretClient } from '@azure/keyvault-secrets';
import type { TokenCredential } from '@azure/core-auth';
import { ProviderError } from '../errors';
import type { FetchedCertificate, FetchedKey, FetchedSecret, VaultReader } from '../mount/ports';
import { toProviderError, type ReadContext } from './errors';

export interface ReaderOptions {
  userAgentPrefix: string;
}

/**
 * Reads one vault as one identity through the SDK clients. Instances live in a process-wide cache: each SDK client
 * remembers the vault's authentication challenge and its HTTPS connections, so only the first mount pays for them.
 */
export class KeyVaultReader implements VaultReader {
  private secrets?: SecretClient;
  private keys?: KeyClient;
  private certificates?: CertificateClient;

  constructor(
    private readonly vaultName: string,
    private readonly vaultUrl: string,
    private readonly credential: TokenCredential,
    private readonly identityDescription: string,
    private readonly options: ReaderOptions,
  ) {}

  async getSecret(name: string, version: string, signal: AbortSignal): Promise<FetchedSecret> {
    this.secrets ??= new SecretClient(this.vaultUrl, this.credential, this.clientOptions());
    const secret = await this.call('secret', name, version, () =>
      this.secrets!.getSecret(name, { version: version || undefined, abortSignal: signal }),
    );
    return {
      // A secret without a value cannot be written; Key Vault always returns one for an enabled secret.
      value: secret.value ?? '',
      version: secret.properties.version ?? version,
      contentType: secret.properties.contentType,
      certificateKeyId: secret.properties.certificateKeyId,
    };
  }

  async getKey(name: string, version: string, signal: AbortSignal): Promise<FetchedKey> {
    this.keys ??= new KeyClient(this.vaultUrl, this.credential, this.clientOptions());
    const key = await this.call('key', name, version, () =>
      this.keys!.getKey(name, { version: version || undefined, abortSignal: signal }),
    );
    if (!key.key) throw this.missing('key', name, 'has no key material');
    const { kty, crv, n, e, x, y } = key.key;
    return { jwk: { kty, crv, n, e, x, y }, version: key.properties.version ?? version };
  }

  async getCertificate(name: string, version: string, signal: AbortSignal): Promise<FetchedCertificate> {
    this.certificates ??= new CertificateClient(this.vaultUrl, this.credential, this.clientOptions());
    const certificate = await this.call('certificate', name, version, () =>
      version
        ? this.certificates!.getCertificateVersion(name, version, { abortSignal: signal })
        : this.certificates!.getCertificate(name, { abortSignal: signal }),
    );
    if (!certificate.cer) throw this.missing('certificate', name, 'has no certificate (cer) content yet');
    return { cer: certificate.cer, version: certificate.properties.version ?? version };
  }

  private clientOptions(): { userAgentOptions: { userAgentPrefix: string } } {
    return { userAgentOptions: { userAgentPrefix: this.options.userAgentPrefix } };
  }

  private async call<T>(type: ReadContext['objectType'], name: string, version: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (err) {
      throw toProviderError(err, {
        vaultName: this.vaultName,
        vaultUrl: this.vaultUrl,
        objectType: type,
        objectName: name,
        version,
        identity: this.identityDescription,
      });
    }
  }

  private missing(type: string, name: string, what: string): ProviderError {
    return new ProviderError('FailedPrecondition', `${type} "${name}" in Key Vault "${this.vaultName}" ${what}`);
  }
}
