/** usePodIdentity: aad-pod-identity's NMI on the node answers for the pod. */
import { describePodIdentity, podIdentityKey, PodIdentityCredential } from '../pod-identity';
import { identityKey } from '../identity-key';
import type { IdentityModeDefinition } from './mode';

export const podIdentity: IdentityModeDefinition<'podIdentity'> = {
  mode: 'podIdentity',
  probeInput: { never: 'aad-pod-identity (NMI) gives tokens to a pod by its name and namespace: a pod using the class proves it' },
  tokenEndpoint: 'NMI (aad-pod-identity)',
  entryBytes: 16 * 1024,
  key: (identity) => ({ key: podIdentityKey(identity.pod), notAfter: Infinity }),
  // NMI decides per pod which identity it gets: answers are never shared between pods.
  valueCacheKey: (identity, cloud, tenant) => identityKey('pod', ...cloud, tenant, identity.pod.namespace, identity.pod.name, identity.pod.uid),
  describe: (identity) => describePodIdentity(identity.pod),
  credential: (identity, _description, _ctx, cached) => cached(new PodIdentityCredential(identity.pod)),
};
