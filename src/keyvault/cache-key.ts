/**
 * The identity half of a value cache key: everything that decides whether Key Vault lets a mount read an object. Two
 * mounts share cached answers only if all of it matches, so an answer read by one identity can never be served to
 * another: a different cloud, tenant, mode, client id, resource id, client secret, service account, token subject or
 * pod (pod identity) is a different key, and Key Vault is asked afresh.
 */
import { Buffer } from 'node:buffer';
import { identityKey, secretDigest } from '../identity/identity-key';
import type { MountSpec, ServiceAccountToken } from '../spec/types';

export function cacheIdentityKey(spec: MountSpec): string {
  // The cloud as the class names it (a custom cloud also by its file): the same name always means the same endpoints.
  const cloud = [spec.cloudName.toLowerCase(), spec.cloudEnvFileName];
  const tenant = spec.tenantId.toLowerCase();
  const { identity } = spec;
  switch (identity.mode) {
    case 'vmManagedIdentity': {
      const selector = identity.userAssigned ? [identity.userAssigned.kind, identity.userAssigned.value.toLowerCase()] : ['system'];
      return identityKey('mi', ...cloud, tenant, ...selector);
    }
    case 'servicePrincipal':
      return identityKey('sp', ...cloud, tenant, identity.clientId.toLowerCase(), secretDigest(identity.clientSecret));
    case 'workloadIdentity':
    case 'tokenProxy':
      // Every pod presents its own token, but the pods of one service account are one identity to Entra ID (the
      // federated credential matches issuer and subject), so the token's subject, not the token, is in the key.
      return identityKey(
        identity.mode === 'workloadIdentity' ? 'wi' : 'tp',
        ...cloud,
        tenant,
        identity.clientId.toLowerCase(),
        identity.serviceAccountToken.namespace,
        identity.serviceAccountToken.name,
        subjectDigest(identity.serviceAccountToken),
      );
    case 'podIdentity':
      // NMI decides per pod which identity it gets: answers are never shared between pods.
      return identityKey('pod', ...cloud, tenant, identity.pod.namespace, identity.pod.name, identity.pod.uid);
  }
}

/** A service account token's payload is small; anything larger is not read (the whole token's digest stands in). */
const MAX_PAYLOAD_CHARS = 16 * 1024;

/**
 * The digest of the token's `sub` claim (system:serviceaccount:<namespace>:<name>). The token is not verified here:
 * Entra ID verified it when this identity first read the object. A token whose subject cannot be read gets the digest
 * of the whole token, so it shares nothing with any other mount.
 */
function subjectDigest(token: ServiceAccountToken): string {
  const payload = token.token.split('.')[1] ?? '';
  if (payload.length > 0 && payload.length <= MAX_PAYLOAD_CHARS) {
    try {
      const claims: unknown = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
      const sub = typeof claims === 'object' && claims !== null ? (claims as { sub?: unknown }).sub : undefined;
      if (typeof sub === 'string' && sub !== '') return `sub:${secretDigest(sub)}`;
    } catch {
      // Not a JWT: fall through.
    }
  }
  return `token:${secretDigest(token.token)}`;
}
