import { ManagedIdentityCredential } from '@azure/identity';
import type { AccessToken, GetTokenOptions, TokenCredential } from '@azure/core-auth';
import { ProviderError } from '../errors';
import type { Cloud } from '../keyvault/clouds';
import type { IdentitySpec } from '../mount/types';
import { BoundedCache } from '../util/bounded-cache';

/** A credential for one caller identity, with the key that identifies it and words for messages. */
export interface ResolvedCredential {
  /** Everything that decides who the caller is; two mounts share a credential (and its tokens) only if keys match. */
  key: string;
  /** "the node's system-assigned managed identity", for messages. Never contains a secret. */
  description: string;
  credential: TokenCredential;
}

export interface CredentialOptions {
  userAgentPrefix: string;
  maxEntries?: number;
}

/**
 * The process-wide cache of credentials keyed by identity. Reusing a credential reuses its token: a node that mounts
 * the same identity's secrets a thousand times asks IMDS once per token lifetime, not a thousand times.
 */
export class CredentialCache {
  private readonly cache: BoundedCache<string, ResolvedCredential>;

  constructor(private readonly options: CredentialOptions) {
    this.cache = new BoundedCache(options.maxEntries ?? 1000);
  }

  resolve(identity: IdentitySpec, _cloud: Cloud, _tenantId: string): ResolvedCredential {
    switch (identity.mode) {
      case 'vmManagedIdentity': {
        const selector = identity.userAssigned;
        const key = selector ? `mi|${selector.kind}|${selector.value.toLowerCase()}` : 'mi|system';
        return this.cache.getOrCreate(key, () => {
          const description = selector
            ? `the user-assigned managed identity with ${selector.kind === 'clientId' ? 'client ID' : 'resource ID'} ${selector.value}`
            : "the node's system-assigned managed identity";
          const sdkOptions = { userAgentOptions: { userAgentPrefix: this.options.userAgentPrefix } };
          const credential =
            selector?.kind === 'clientId'
              ? new ManagedIdentityCredential({ clientId: selector.value, ...sdkOptions })
              : selector?.kind === 'resourceId'
                ? new ManagedIdentityCredential({ resourceId: selector.value, ...sdkOptions })
                : new ManagedIdentityCredential(sdkOptions);
          return { key, description, credential: new AbortBoundCredential(credential) };
        });
      }
      case 'workloadIdentity':
      case 'servicePrincipal':
      case 'podIdentity':
      case 'tokenProxy':
        throw new ProviderError(
          'Unimplemented',
          `identity mode ${identity.mode} is not supported by this provider version yet: use useVMManagedIdentity: "true"`,
        );
    }
  }
}

/**
 * Makes a credential give up when the mount's signal aborts. The SDK's managed identity client retries IMDS 404/410
 * for up to a minute and does not always stop on abort; a mount must fail at its deadline, not a minute later.
 */
class AbortBoundCredential implements TokenCredential {
  constructor(private readonly inner: TokenCredential) {}

  getToken(scopes: string | string[], options?: GetTokenOptions): Promise<AccessToken | null> {
    const signal = options?.abortSignal;
    const pending = this.inner.getToken(scopes, options);
    if (!signal) return pending;
    if (signal.aborted) return Promise.reject(abortError(signal));
    return new Promise((resolve, reject) => {
      const onAbort = (): void => reject(abortError(signal));
      signal.addEventListener('abort', onAbort, { once: true });
      pending.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
    });
  }
}

function abortError(signal: object): Error {
  // AbortSignalLike has no `reason` in its type; real signals do.
  const error = new Error('token request aborted', { cause: (signal as { reason?: unknown }).reason });
  error.name = 'AbortError';
  return error;
}
