import { CertificateClient } from '@azure/keyvault-certificates';
import { KeyClient } from '@azure/keyvault-keys';
import { SecretClient } from '@azure/keyvault-secrets';
import type { TokenCredential } from '@azure/core-auth';
import type { PipelinePolicy } from '@azure/core-rest-pipeline';
import { ProviderError } from '../errors';
import type { ProviderMetrics } from '../observability/metrics';
import type { FetchedCertificate, FetchedKey, FetchedSecret, ListedVersion, VaultReader } from '../mount/ports';
import type { ObjectType } from '../mount/types';
import { toProviderError, type ReadContext } from './errors';
import { keyVaultMetricsPolicy } from './metrics-policy';
import { abortError, untilAborted } from '../util/abort';

export interface ReaderOptions {
  userAgentPrefix: string;
  /** Receives the duration and outcome of every HTTP request to Key Vault; none recorded when absent. */
  metrics?: ProviderMetrics;
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
    readonly vaultName: string,
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

  async listVersions(type: ObjectType, name: string, signal: AbortSignal): Promise<ListedVersion[]> {
    const kind = READ_KIND[type];
    const options = { abortSignal: signal };
    try {
      return await this.call(kind, name, '', () => {
        switch (type) {
          case 'secret':
            this.secrets ??= new SecretClient(this.vaultUrl, this.credential, this.clientOptions());
            return collectPages(this.secrets.listPropertiesOfSecretVersions(name, options).byPage(), signal, listed);
          case 'key':
            this.keys ??= new KeyClient(this.vaultUrl, this.credential, this.clientOptions());
            return collectPages(this.keys.listPropertiesOfKeyVersions(name, options).byPage(), signal, listed);
          case 'cert':
            this.certificates ??= new CertificateClient(this.vaultUrl, this.credential, this.clientOptions());
            return collectPages(this.certificates.listPropertiesOfCertificateVersions(name, options).byPage(), signal, listed);
        }
      });
    } catch (err) {
      // Reading one version needs "get"; listing needs "list" too, which access policies grant separately.
      if (err instanceof ProviderError && err.status === 'PermissionDenied') {
        throw new ProviderError(
          'PermissionDenied',
          `${err.message}. objectVersionHistory lists the versions of ${kind} "${name}", so with access policies the ` +
            `identity also needs the list permission for ${kind}s`,
          { cause: err },
        );
      }
      throw err;
    }
  }

  private clientOptions(): {
    userAgentOptions: { userAgentPrefix: string };
    additionalPolicies: Array<{ policy: PipelinePolicy; position: 'perRetry' }>;
  } {
    const metrics = this.options.metrics;
    return {
      userAgentOptions: { userAgentPrefix: this.options.userAgentPrefix },
      additionalPolicies: metrics ? [{ policy: keyVaultMetricsPolicy(metrics), position: 'perRetry' }] : [],
    };
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

/** Object types as the error messages (and the RBAC role table) name them. */
const READ_KIND: Record<ObjectType, ReadContext['objectType']> = { secret: 'secret', key: 'key', cert: 'certificate' };

/** The fields of a listed version's properties that choosing a version needs (the SDKs' property types share them). */
function listed(properties: { version?: string; enabled?: boolean; createdOn?: Date }): ListedVersion {
  return { version: properties.version ?? '', enabled: properties.enabled !== false, createdOn: properties.createdOn };
}

/**
 * Reads every page of a version listing. The SDK passes the abort signal to the first page only (it follows nextLinks
 * without it), so the signal is checked before each page and raced against it: an aborted mount returns at once, and
 * the page still in flight is left to finish and be ignored.
 */
async function collectPages<P, T>(
  pages: AsyncIterableIterator<P[]>,
  signal: AbortSignal,
  map: (item: P) => T,
): Promise<T[]> {
  const items: T[] = [];
  for (;;) {
    if (signal.aborted) throw abortError(signal); // before asking for the next page, not after it arrived
    const page = await untilAborted(pages.next(), signal);
    if (page.done) return items;
    for (const item of page.value) items.push(map(item));
  }
}

