/** Identity binding: the presented service account token, exchanged through the cluster's token proxy. */
import { serviceAccountOf } from '../entra-credentials';
import { createTokenProxyCredential, tokenProxyKey } from '../token-proxy';
import { TransportErrorRecorder } from '../transport-errors';
import { identityKey } from '../identity-key';
import { subjectDigest } from './subject-digest';
import type { IdentityModeDefinition } from './mode';
import { viaEntra } from './via-entra';

export const tokenProxy: IdentityModeDefinition<'tokenProxy'> = {
  mode: 'tokenProxy',
  probeInput: 'serviceAccountToken',
  tokenEndpoint: 'the token proxy (identity binding)',
  entryBytes: 96 * 1024,
  key: (identity, ctx) => ({
    key: tokenProxyKey(ctx.transport(), ctx.cloud, ctx.tenantId, identity.clientId, identity.serviceAccountToken),
    notAfter: identity.serviceAccountToken.expiresAt ?? Infinity,
  }),
  // As for workload identity: the pods of one service account are one identity, so the token's subject is in the key.
  valueCacheKey: (identity, cloud, tenant) =>
    identityKey(
      'tp',
      ...cloud,
      tenant,
      identity.clientId.toLowerCase(),
      identity.serviceAccountToken.namespace,
      identity.serviceAccountToken.name,
      subjectDigest(identity.serviceAccountToken),
    ),
  describe: (identity, ctx) =>
    `the identity with client ID ${identity.clientId} bound to service account ${serviceAccountOf(identity.serviceAccountToken)} ` +
    `(identity binding through the token proxy ${ctx.transport().url})`,
  credential: (identity, description, ctx, cached) => {
    const { cloud, tenantId } = ctx;
    const transport = ctx.transport();
    const recorder = new TransportErrorRecorder();
    const inner = createTokenProxyCredential(transport, cloud, tenantId, identity.clientId, identity.serviceAccountToken, {
      userAgentPrefix: ctx.userAgentPrefix,
      identity: description,
      additionalPolicies: [{ policy: recorder.policy, position: 'perRetry' }],
    });
    return viaEntra(
      inner,
      recorder,
      {
        mode: 'tokenProxy',
        identity: description,
        clientId: identity.clientId,
        tenantId,
        authorityHost: transport.url.replace(/\/+$/, ''),
        serviceAccount: serviceAccountOf(identity.serviceAccountToken),
        sent: [identity.serviceAccountToken.token],
      },
      cached,
    );
  },
};
