/**
 * Credentials that ask Entra ID (or AD FS) directly: a service principal with a client secret, and workload identity,
 * where the pod's service account token is the client assertion. The authority is the mount's cloud; the tenant,
 * client ID and secret or token are the mount's own: nothing comes from the provider's environment.
 */
import type * as AzureIdentity from '@azure/identity';
import type { Agent } from 'node:http';
import type { TokenCredential } from '@azure/core-auth';
import type { HttpClient, PipelinePolicy } from '@azure/core-rest-pipeline';
import type { Cloud } from '../spec/clouds';
import type { ServiceAccountToken } from '../spec/types';
import { boundedHttpClient } from './bounded-http';
import { identityKey, secretDigest } from './identity-key';

/** Entra ID and AD FS answer in well under a second; a token request silent for this long is given up. */
export const TOKEN_SERVICE_TIMEOUT_MS = 15_000;
/** Token service answers (metadata, tokens, errors) are a few KB. */
export const TOKEN_SERVICE_MAX_BODY_BYTES = 64 * 1024;
/** The longest Retry-After of a token service the SDK may follow inside one acquisition. */
export const TOKEN_SERVICE_MAX_RETRY_AFTER_MS = 5_000;

/**
 * @azure/identity (with MSAL) costs about a tenth of a second of CPU to load, and the node's managed identity (the
 * common mode) never uses it: IMDS has its own client. So it is loaded the first time a mount needs Entra ID, not at
 * start-up, where a 50m CPU quota turns every such 100 ms into two seconds before the socket answers.
 */
let azureIdentity: typeof AzureIdentity | undefined;
export function loadAzureIdentity(): typeof AzureIdentity {
  azureIdentity ??= require('@azure/identity') as typeof AzureIdentity;
  return azureIdentity;
}

/** The bounded HTTP client of one token service (see bounded-http.ts). */
export function tokenServiceHttpClient(endpoint: string, inner?: HttpClient, agentFor?: (url: string) => Agent): HttpClient {
  return boundedHttpClient({
    endpoint,
    maxBodyBytes: TOKEN_SERVICE_MAX_BODY_BYTES,
    timeoutMs: TOKEN_SERVICE_TIMEOUT_MS,
    maxRetryAfterMs: TOKEN_SERVICE_MAX_RETRY_AFTER_MS,
    requireJson: true,
    ...(inner ? { inner } : {}),
    ...(agentFor ? { agentFor } : {}),
  });
}

export interface EntraCredentialOptions {
  userAgentPrefix: string;
  /** Extra pipeline policies for the credential's HTTP client (e.g. the transport error recorder). */
  additionalPolicies?: Array<{ policy: PipelinePolicy; position: 'perCall' | 'perRetry' }>;
  /** The process's shared connections (see bounded-http.ts). */
  agentFor?: (url: string) => Agent;
}

/** SDK options shared by both flows: the cloud's authority, and no instance discovery for custom clouds. */
function sdkOptions(cloud: Cloud, options: EntraCredentialOptions): {
  authorityHost: string;
  disableInstanceDiscovery: boolean;
  userAgentOptions: { userAgentPrefix: string };
  additionalPolicies?: Array<{ policy: PipelinePolicy; position: 'perCall' | 'perRetry' }>;
  httpClient: HttpClient;
} {
  return {
    httpClient: tokenServiceHttpClient(cloud.knownAuthority ? 'Entra ID' : "the cloud's token service (Entra ID or AD FS)", undefined, options.agentFor),
    ...(options.additionalPolicies ? { additionalPolicies: options.additionalPolicies } : {}),
    authorityHost: cloud.authorityHost,
    // MSAL knows the four named clouds' authorities without asking; a custom cloud (Azure Stack Hub, AD FS) would
    // send it to login.microsoftonline.com for "instance discovery", which cannot know that host.
    disableInstanceDiscovery: !cloud.knownAuthority,
    userAgentOptions: { userAgentPrefix: options.userAgentPrefix },
  };
}

export function servicePrincipalKey(cloud: Cloud, tenantId: string, clientId: string, clientSecret: string): string {
  return identityKey('sp', cloud.authorityHost.toLowerCase(), tenantId.toLowerCase(), clientId.toLowerCase(), secretDigest(clientSecret));
}

export function createServicePrincipalCredential(
  cloud: Cloud,
  tenantId: string,
  clientId: string,
  clientSecret: string,
  options: EntraCredentialOptions,
): TokenCredential {
  return new (loadAzureIdentity().ClientSecretCredential)(tenantId, clientId, clientSecret, sdkOptions(cloud, options));
}

/** Who presented the token, for keys and messages: namespace/name. */
export function serviceAccountOf(token: ServiceAccountToken): string {
  return `${token.namespace}/${token.name}`;
}

export function workloadIdentityKey(cloud: Cloud, tenantId: string, clientId: string, token: ServiceAccountToken): string {
  return identityKey(
    'wi',
    cloud.authorityHost.toLowerCase(),
    tenantId.toLowerCase(),
    clientId.toLowerCase(),
    serviceAccountOf(token),
    secretDigest(token.token),
  );
}

/**
 * Workload identity: exactly the token this mount presented is the assertion. A credential never reads a token from a
 * file or from another mount, so one pod's mount cannot authenticate with another pod's service account token.
 */
export function createWorkloadIdentityCredential(
  cloud: Cloud,
  tenantId: string,
  clientId: string,
  token: ServiceAccountToken,
  options: EntraCredentialOptions,
): TokenCredential {
  const assertion = token.token;
  return new (loadAzureIdentity().ClientAssertionCredential)(tenantId, clientId, () => Promise.resolve(assertion), sdkOptions(cloud, options));
}
