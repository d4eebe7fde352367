/** Workload identity: the service account token this mount presented is the client assertion to Entra ID. */
import { createWorkloadIdentityCredential, serviceAccountOf, workloadIdentityKey } from '../entra-credentials';
import { TransportErrorRecorder } from '../transport-errors';
import { identityKey } from '../identity-key';
import { subjectDigest } from './subject-digest';
import type { IdentityModeDefinition } from './mode';
import { entraOptions, viaEntra } from './via-entra';

export const workloadIdentity: IdentityModeDefinition<'workloadIdentity'> = {
  mode: 'workloadIdentity',
  probeInput: 'serviceAccountToken',
  tokenEndpoint: "the cloud's token service (Entra ID)",
  entryBytes: 96 * 1024,
  key: (identity, { cloud, tenantId }) => ({
    key: workloadIdentityKey(cloud, tenantId, identity.clientId, identity.serviceAccountToken),
    // The assertion cannot be used after it expires; tokens already issued with it stay in the entry until then.
    notAfter: identity.serviceAccountToken.expiresAt ?? Infinity,
  }),
  // Every pod presents its own token, but the pods of one service account are one identity to Entra ID (the federated
  // credential matches issuer and subject), so the token's subject, not the token, is in the key.
  valueCacheKey: (identity, cloud, tenant) =>
    identityKey(
      'wi',
      ...cloud,
      tenant,
      identity.clientId.toLowerCase(),
      identity.serviceAccountToken.namespace,
      identity.serviceAccountToken.name,
      subjectDigest(identity.serviceAccountToken),
    ),
  describe: (identity, { tenantId }) =>
    `the workload identity with client ID ${identity.clientId} (tenant ${tenantId}, service account ${serviceAccountOf(identity.serviceAccountToken)})`,
  credential: (identity, description, ctx, cached) => {
    const { cloud, tenantId } = ctx;
    const recorder = new TransportErrorRecorder();
    const inner = createWorkloadIdentityCredential(cloud, tenantId, identity.clientId, identity.serviceAccountToken, entraOptions(ctx, recorder));
    return viaEntra(
      inner,
      recorder,
      {
        mode: 'workloadIdentity',
        identity: description,
        clientId: identity.clientId,
        tenantId,
        authorityHost: cloud.authorityHost,
        serviceAccount: serviceAccountOf(identity.serviceAccountToken),
        sent: [identity.serviceAccountToken.token],
      },
      cached,
    );
  },
};
