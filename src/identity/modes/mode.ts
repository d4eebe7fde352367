/**
 * What an identity mode is to the credential cache: how its cache key is made, how it is named in messages, and how
 * its credential is built. Each mode is one module in this folder and one line in registry.ts.
 */
import type { Agent } from 'node:http';
import type { TokenCredential } from '@azure/core-auth';
import type { Cloud } from '../../spec/clouds';
import type { IdentitySpec } from '../../spec/types';
import type { AmbientWorkloadIdentity } from '../managed-identity';
import type { TokenProxyTransport } from '../token-proxy';

export type ModeName = IdentitySpec['mode'];
/** The identity of one mode, as the SecretProviderClass's parameters gave it. */
export type IdentityOf<M extends ModeName> = Extract<IdentitySpec, { mode: M }>;

/** What a mode may use besides the identity: the mount's cloud and tenant, and the process's settings. */
export interface ModeContext {
  cloud: Cloud;
  tenantId: string;
  userAgentPrefix: string;
  ambientWorkloadIdentity: AmbientWorkloadIdentity | undefined;
  imdsEndpoint: string | undefined;
  agentFor: ((url: string) => Agent) | undefined;
  /** The process's one token proxy transport (its connections are pooled and its SNI name discovered once). */
  transport(): TokenProxyTransport;
}

export interface CacheKey {
  /** Everything that decides who the caller is; two mounts share a credential (and its tokens) only if keys match. */
  key: string;
  /** ms since the epoch after which the entry must not be used (Infinity: only the cache's own age bound). */
  notAfter: number;
}

/**
 * Puts the mode's credential behind the entry's token cache; `translate` turns its failures into messages. The cache
 * supplies it, bound to the entry, so a refused identity is forgotten.
 */
export type Cached = (inner: TokenCredential, translate?: (err: unknown) => unknown) => TokenCredential;

/**
 * What `check --probe` needs, besides the class, to get a token as a pod's mount would from a provider pod: nothing,
 * the pod's nodePublishSecretRef Secret, or its service account token (both passed in by the operator), or `never`
 * with why only a pod's own mount can prove the identity.
 */
export type ProbeInput = 'nothing' | 'nodePublishSecret' | 'serviceAccountToken' | { never: string };

export interface IdentityModeDefinition<M extends ModeName> {
  mode: M;
  probeInput: ProbeInput;
  /** Who issues tokens in this mode, for messages about a token that did not come. */
  tokenEndpoint: string;
  /**
   * Estimated memory one cached identity of this mode keeps alive (measured on Node 20 with the SDK versions in the
   * lockfile), the cache's weight: an identity that asks Entra ID holds an MSAL client and its HTTP pipeline, and its
   * vault reader the Key Vault SDK clients; a managed or pod identity holds little beyond its tokens and reader.
   */
  entryBytes: number;
  /** Ask the token endpoint again once a token is this old, although still valid; unbounded when absent. */
  maxTokenAgeMs?: number;
  key(identity: IdentityOf<M>, ctx: ModeContext): CacheKey;
  /**
   * The identity half of the Key Vault value cache's key (`cloud` and `tenant` as the class names them, lower-cased):
   * everything that decides whether Key Vault lets the mount read an object, never a secret in the clear.
   */
  valueCacheKey(identity: IdentityOf<M>, cloud: readonly string[], tenant: string): string;
  /** "the node's system-assigned managed identity", for messages. Never contains a secret. */
  describe(identity: IdentityOf<M>, ctx: ModeContext): string;
  credential(identity: IdentityOf<M>, description: string, ctx: ModeContext, cached: Cached): TokenCredential;
}
