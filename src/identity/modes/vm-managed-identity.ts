/** useVMManagedIdentity: the node's managed identity through IMDS (system-assigned, or user-assigned by ID). */
import { IMDS_NAME } from '../imds-credential';
import { createManagedIdentityCredential, describeManagedIdentity, managedIdentityKey } from '../managed-identity';
import { identityKey } from '../identity-key';
import type { IdentityModeDefinition } from './mode';

/**
 * A managed identity token is re-checked with IMDS after this long although it is valid for 24 h: IMDS answers from
 * its own cache in milliseconds, and an identity removed from the node pool then stops mounting within this bound.
 */
export const MANAGED_IDENTITY_RECHECK_MS = 5 * 60_000;

export const vmManagedIdentity: IdentityModeDefinition<'vmManagedIdentity'> = {
  mode: 'vmManagedIdentity',
  probeInput: 'nothing',
  tokenEndpoint: IMDS_NAME,
  entryBytes: 16 * 1024,
  maxTokenAgeMs: MANAGED_IDENTITY_RECHECK_MS,
  key: (identity) => ({ key: managedIdentityKey(identity.userAssigned), notAfter: Infinity }),
  valueCacheKey: (identity, cloud, tenant) => {
    const selector = identity.userAssigned ? [identity.userAssigned.kind, identity.userAssigned.value.toLowerCase()] : ['system'];
    return identityKey('mi', ...cloud, tenant, ...selector);
  },
  describe: (identity) => describeManagedIdentity(identity.userAssigned),
  // ImdsCredential fails with TokenRequestErrors that name IMDS and the fix.
  credential: (identity, _description, ctx, cached) =>
    cached(createManagedIdentityCredential(identity.userAssigned, ctx.userAgentPrefix, ctx.ambientWorkloadIdentity, ctx.imdsEndpoint)),
};
