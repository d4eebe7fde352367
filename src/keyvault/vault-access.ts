import { ProviderError } from '../errors';
import type { CredentialCache } from '../identity/credentials';
import type { VaultAccess, VaultReader } from '../mount/ports';
import type { MountSpec } from '../mount/types';
import { BoundedCache } from '../util/bounded-cache';
import { AZURE_STACK_CLOUD, knownCloud, vaultUrl, type Cloud } from './clouds';
import { KeyVaultReader } from './reader';

export interface VaultAccessOptions {
  userAgentPrefix: string;
  /** Distinct (vault, identity) pairs kept warm; beyond this the least recently used is dropped. */
  maxReaders?: number;
}

/** Resolves a mount to a reader for its (vault, identity), reusing readers across mounts. */
export class AzureVaultAccess implements VaultAccess {
  private readonly readers: BoundedCache<string, VaultReader>;

  constructor(
    private readonly credentials: CredentialCache,
    private readonly options: VaultAccessOptions,
  ) {
    this.readers = new BoundedCache(options.maxReaders ?? 500);
  }

  async open(spec: MountSpec): Promise<VaultReader> {
    const cloud = this.cloudOf(spec);
    const url = vaultUrl(spec.vaultName, cloud);
    const resolved = this.credentials.resolve(spec.identity, cloud, spec.tenantId);
    return this.readers.getOrCreate(
      `${url}|${resolved.key}`,
      () => new KeyVaultReader(spec.vaultName, url, resolved.credential, resolved.description, this.options),
    );
  }

  private cloudOf(spec: MountSpec): Cloud {
    const cloud = knownCloud(spec.cloudName);
    if (cloud) return cloud;
    if (spec.cloudName === AZURE_STACK_CLOUD) {
      throw new ProviderError('Unimplemented', 'cloudName AzureStackCloud is not supported by this provider version yet');
    }
    throw new ProviderError('InvalidArgument', `cloudName "${spec.cloudName}" is not a known cloud`);
  }
}
