/** Service principal: a client ID and the client secret from the mount's nodePublishSecretRef, asking Entra ID. */
import { createServicePrincipalCredential, servicePrincipalKey } from '../entra-credentials';
import { TransportErrorRecorder } from '../transport-errors';
import { identityKey, secretDigest } from '../identity-key';
import type { IdentityModeDefinition } from './mode';
import { entraOptions, viaEntra } from './via-entra';

export const servicePrincipal: IdentityModeDefinition<'servicePrincipal'> = {
  mode: 'servicePrincipal',
  probeInput: 'nodePublishSecret',
  tokenEndpoint: "the cloud's token service (Entra ID)",
  entryBytes: 96 * 1024,
  key: (identity, { cloud, tenantId }) => ({
    key: servicePrincipalKey(cloud, tenantId, identity.clientId, identity.clientSecret),
    notAfter: Infinity,
  }),
  valueCacheKey: (identity, cloud, tenant) =>
    identityKey('sp', ...cloud, tenant, identity.clientId.toLowerCase(), secretDigest(identity.clientSecret)),
  describe: (identity, { tenantId }) => `the service principal with client ID ${identity.clientId} (tenant ${tenantId})`,
  credential: (identity, description, ctx, cached) => {
    const { cloud, tenantId } = ctx;
    const recorder = new TransportErrorRecorder();
    const inner = createServicePrincipalCredential(cloud, tenantId, identity.clientId, identity.clientSecret, entraOptions(ctx, recorder));
    return viaEntra(
      inner,
      recorder,
      {
        mode: 'servicePrincipal',
        identity: description,
        clientId: identity.clientId,
        tenantId,
        authorityHost: cloud.authorityHost,
        sent: [identity.clientSecret],
      },
      cached,
    );
  },
};
