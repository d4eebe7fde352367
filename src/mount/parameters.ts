import { invalidArgument } from '../errors';
import { goBool } from '../util/go-bool';
import { AZURE_STACK_CLOUD, canonicalCloudName, CLOUD_NAMES } from '../spec/clouds';
import { parseDuration } from '../util/duration';
import { parseObjectsCached } from './objects-cache';
import { VAULT_NAME, VAULT_NAME_RULE } from './vault-name';
import type { IdentitySpec, MountSpec, ServiceAccountToken, UserAssignedIdentity } from '../spec/types';

/** Attribute keys the driver adds to the SecretProviderClass parameters with each Mount request. */
export const POD_NAME = 'csi.storage.k8s.io/pod.name';
export const POD_NAMESPACE = 'csi.storage.k8s.io/pod.namespace';
export const POD_UID = 'csi.storage.k8s.io/pod.uid';
export const SERVICE_ACCOUNT_NAME = 'csi.storage.k8s.io/serviceAccount.name';
export const SERVICE_ACCOUNT_TOKENS = 'csi.storage.k8s.io/serviceAccount.tokens';
export const SECRET_PROVIDER_CLASS = 'secretProviderClass';

/** Audience of the service account token workload identity exchanges at Entra ID. */
export const WORKLOAD_IDENTITY_AUDIENCE = 'api://AzureADTokenExchange';
/** Audience of the service account token the AKS token proxy (identity binding) exchanges. */
export const IDENTITY_BINDING_AUDIENCE = 'api://AKSIdentityBinding';


/** A tenant is a GUID or a verified domain (contoso.onmicrosoft.com); "adfs" names an AD FS authority (Azure Stack). */
const TENANT_DOMAIN = /^(?=.{1,253}$)(?:[A-Za-z0-9](?:[-A-Za-z0-9]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$/;
/** Kubernetes names: a namespace is a DNS-1123 label, a pod name a DNS-1123 subdomain. */
const DNS_LABEL = /^[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*$/;
const GUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const USER_ASSIGNED_RESOURCE_ID =
  /^\/subscriptions\/[^/]+\/resourcegroups\/[^/]+\/providers\/microsoft\.managedidentity\/userassignedidentities\/[^/]+$/i;

export interface ParameterDefaults {
  /** `--cloud-name`: used when the SecretProviderClass sets no cloudName. */
  cloudName: string;
  /** `--keyvault-cache-max-ttl` (ms): the longest cacheTTL a class may set; 0 or absent = the cache is off. */
  maxCacheTtlMs?: number;
}

/**
 * Turns the attributes (SecretProviderClass parameters plus the driver's pod keys) and the nodePublishSecretRef data
 * into a MountSpec, checking the parameters in the reference's order so the first problem reported is the one it
 * reports, with a message that names the parameter and the fix. No network: a bad SecretProviderClass costs Azure
 * nothing.
 */
export function parseMountParameters(
  attributes: Record<string, string>,
  secrets: Record<string, string>,
  defaults: ParameterDefaults,
): MountSpec {
  const get = (key: string): string => (attributes[key] ?? '').trim();

  const podName = get(POD_NAME);
  const podNamespace = get(POD_NAMESPACE);
  if (!podName || !podNamespace) {
    const missing = !podName ? POD_NAME : POD_NAMESPACE;
    throw invalidArgument(
      `${missing} is missing from the mount attributes: the CSIDriver object secrets-store.csi.k8s.io must set ` +
        'podInfoOnMount: true',
    );
  }
  // They become NMI request headers and parts of messages and cache keys: only what Kubernetes allows gets through.
  if (!DNS_SUBDOMAIN.test(podName)) {
    throw invalidArgument(`${POD_NAME} ${quoted(podName)} is not a Kubernetes pod name (lower-case letters, digits, "-" and "."): the driver sends the pod's name`);
  }
  if (!DNS_LABEL.test(podNamespace)) {
    throw invalidArgument(`${POD_NAMESPACE} ${quoted(podNamespace)} is not a Kubernetes namespace name (at most 63 lower-case letters, digits and "-")`);
  }

  const usePodIdentity = parseBoolParameter(get('usePodIdentity'), 'usePodIdentity');
  const useVMManagedIdentity = parseBoolParameter(get('useVMManagedIdentity'), 'useVMManagedIdentity');
  const useAzureTokenProxy = parseBoolParameter(get('useAzureTokenProxy'), 'useAzureTokenProxy');
  const switches = [
    usePodIdentity && 'usePodIdentity',
    useVMManagedIdentity && 'useVMManagedIdentity',
    useAzureTokenProxy && 'useAzureTokenProxy',
  ].filter((s): s is string => typeof s === 'string');
  if (switches.length > 1) {
    throw invalidArgument(`${switches.join(' and ')} are both "true": set at most one identity mode`);
  }

  const vaultName = get('keyvaultName');
  if (!vaultName) throw invalidArgument('keyvaultName is required: set it to the name of the Key Vault to read from');
  if (!VAULT_NAME.test(vaultName)) {
    throw invalidArgument(`keyvaultName ${quoted(vaultName)} is not a valid Key Vault name: ${VAULT_NAME_RULE}`);
  }

  const tenantId = get('tenantID') || get('tenantId');
  if (!tenantId) throw invalidArgument('tenantID is required: set it to the Entra ID tenant of the Key Vault');
  // It becomes a path segment of the token URL: "evil.com/x", "../common" or "t#frag" must never get that far.
  if (!GUID.test(tenantId) && !TENANT_DOMAIN.test(tenantId) && tenantId.toLowerCase() !== 'adfs') {
    throw invalidArgument(
      `tenantID ${quoted(tenantId)} is not a tenant: use the tenant's ID (a GUID such as ` +
        '72f988bf-86f1-41af-91ab-2d7cd011db47), one of its domain names (contoso.onmicrosoft.com), or "adfs" for AD FS',
    );
  }

  const cloudParameter = get('cloudName');
  const cloudName = canonicalCloudName(cloudParameter || defaults.cloudName);
  if (!cloudName) {
    const source = cloudParameter ? `cloudName "${cloudParameter}"` : `--cloud-name "${defaults.cloudName}"`;
    throw invalidArgument(`${source} is not a known cloud: use one of ${CLOUD_NAMES.join(', ')}`);
  }

  const cloudEnvFileName = get('cloudEnvFileName');
  if (cloudName === AZURE_STACK_CLOUD && !cloudEnvFileName) {
    throw invalidArgument(
      'cloudName is AzureStackCloud but cloudEnvFileName is empty: set cloudEnvFileName to the path of the cloud ' +
        'environment JSON file (keyVaultDNSSuffix, activeDirectoryEndpoint, keyVaultEndpoint) mounted into the provider pods',
    );
  }

  const pod = { name: podName, namespace: podNamespace, uid: get(POD_UID), serviceAccountName: get(SERVICE_ACCOUNT_NAME) };
  // With the CSIDriver's serviceAccountTokenInSecrets (Kubernetes >= 1.35) kubelet puts the tokens in `secrets`
  // instead: driver v1.6 copies them into the attributes, v1.5 does not. They are kubelet's, not the user's Secret.
  const { [SERVICE_ACCOUNT_TOKENS]: tokensInSecrets, ...credentialSecrets } = secrets;
  const identity = resolveIdentity({
    usePodIdentity,
    useVMManagedIdentity,
    useAzureTokenProxy,
    userAssignedIdentityID: get('userAssignedIdentityID'),
    clientID: get('clientID'),
    serviceAccountTokens: attributes[SERVICE_ACCOUNT_TOKENS] ?? tokensInSecrets ?? '',
    pod,
    secrets: credentialSecrets,
  });

  const parsed = parseObjectsCached(attributes['objects'] ?? '');
  const { objects, unknownFields } = parsed;
  const warnings = [...unknownFields.map((f) => `${f} is not a known object field and is ignored`), ...parsed.warnings];
  if (objects.length === 0) warnings.push('objects is empty: the mount succeeds with no files');
  if (cloudEnvFileName && cloudName !== AZURE_STACK_CLOUD) {
    warnings.push(`cloudEnvFileName is ignored: it is read only when cloudName is ${AZURE_STACK_CLOUD} (cloud is ${cloudName})`);
  }

  const cacheTtlMs = parseCacheTtl(get('cacheTTL'), defaults.maxCacheTtlMs ?? 0, warnings);

  return {
    pod,
    secretProviderClass: get(SECRET_PROVIDER_CLASS),
    vaultName,
    tenantId,
    cloudName,
    cloudEnvFileName: cloudName === AZURE_STACK_CLOUD ? cloudEnvFileName : '',
    identity,
    objects,
    ...(cacheTtlMs > 0 ? { cacheTtlMs } : {}),
    warnings,
  };
}

/**
 * cacheTTL: a Go duration ("5m", "90s"), at most the operator's --keyvault-cache-max-ttl. With the cache off on this
 * node a valid value is ignored with a warning (the class may be shared with nodes where it is on).
 */
function parseCacheTtl(value: string, maxMs: number, warnings: string[]): number {
  if (value === '') return 0;
  let ms: number;
  try {
    ms = parseDuration(value);
  } catch {
    throw invalidArgument(`cacheTTL ${quoted(value)} is not a duration: use a Go duration such as "5m" or "90s", or "0" for no caching`);
  }
  if (maxMs <= 0) {
    if (ms > 0) warnings.push('cacheTTL is ignored: the Key Vault value cache is off on this node (--keyvault-cache-max-ttl)');
    return 0;
  }
  if (ms > maxMs) {
    throw invalidArgument(
      `cacheTTL ${quoted(value)} is above the node's maximum of ${maxMs / 1000}s (--keyvault-cache-max-ttl): set cacheTTL ` +
        'to at most that, or ask the operator to raise the maximum',
    );
  }
  return ms;
}

export function parseBoolParameter(value: string, parameter: string): boolean {
  const bool = value === '' ? false : goBool(value);
  if (bool !== undefined) return bool;
  throw invalidArgument(`${parameter} "${value.slice(0, 32)}" is not a boolean: use "true" or "false"`);
}

interface IdentityInputs {
  usePodIdentity: boolean;
  useVMManagedIdentity: boolean;
  useAzureTokenProxy: boolean;
  userAssignedIdentityID: string;
  clientID: string;
  /** The raw csi.storage.k8s.io/serviceAccount.tokens, from the attributes or else the secrets ('' when absent). */
  serviceAccountTokens: string;
  pod: MountSpec['pod'];
  /** The nodePublishSecretRef Secret's data (without kubelet's service account tokens). */
  secrets: Record<string, string>;
}

/**
 * The identity mode, as the reference decides it: a switch, else workload identity by clientID, else a service
 * principal.
 */
function resolveIdentity(inputs: IdentityInputs): IdentitySpec {
  if (inputs.useVMManagedIdentity) {
    return { mode: 'vmManagedIdentity', userAssigned: parseUserAssignedIdentity(inputs.userAssignedIdentityID) };
  }
  if (inputs.usePodIdentity) {
    return { mode: 'podIdentity', pod: { name: inputs.pod.name, namespace: inputs.pod.namespace, uid: inputs.pod.uid } };
  }
  if (inputs.clientID && !GUID.test(inputs.clientID) && !inputs.useVMManagedIdentity && !inputs.usePodIdentity) {
    throw invalidArgument(
      `clientID ${quoted(inputs.clientID)} is not a client ID: use the managed identity's or application's client ID, a GUID ` +
        'such as 00000000-0000-0000-0000-000000000000',
    );
  }
  if (inputs.useAzureTokenProxy) {
    if (!inputs.clientID) {
      throw invalidArgument(
        'useAzureTokenProxy is "true" but clientID is empty: set clientID to the client ID of the managed identity the ' +
          "pod's service account is bound to",
      );
    }
    const serviceAccountToken = serviceAccountTokenFor(IDENTITY_BINDING_AUDIENCE, 'useAzureTokenProxy is "true"', inputs);
    return { mode: 'tokenProxy', clientId: inputs.clientID, serviceAccountToken };
  }
  if (inputs.clientID) {
    const serviceAccountToken = serviceAccountTokenFor(WORKLOAD_IDENTITY_AUDIENCE, 'clientID is set (workload identity)', inputs);
    return { mode: 'workloadIdentity', clientId: inputs.clientID, serviceAccountToken };
  }
  return servicePrincipal(inputs.secrets);
}

/** A service principal from the nodePublishSecretRef Secret: clientid and clientsecret, keys in any case. */
function servicePrincipal(secrets: Record<string, string>): IdentitySpec {
  const noMode =
    'no identity mode is selected (useVMManagedIdentity, usePodIdentity and useAzureTokenProxy are not "true" and ' +
    'clientID is empty), so the mount authenticates as a service principal';
  if (Object.keys(secrets).length === 0) {
    throw invalidArgument(
      `${noMode}, but the volume has no nodePublishSecretRef: reference a Secret with the keys clientid and clientsecret ` +
        'in the volume\'s nodePublishSecretRef, or select another identity (useVMManagedIdentity: "true" for the node\'s ' +
        'managed identity, clientID for workload identity)',
    );
  }
  // The values are never echoed: only which key is missing.
  for (const key of ['clientid', 'clientsecret'] as const) {
    if (!caseInsensitiveGet(secrets, key)) {
      throw invalidArgument(
        `${noMode}, but the nodePublishSecretRef Secret has no "${key}" (or it is empty; keys match in any case): add ` +
          `${key === 'clientid' ? "the service principal's application (client) ID" : "the service principal's client secret value"} ` +
          `under the key ${key}, or select another identity (useVMManagedIdentity: "true", or clientID for workload identity)`,
      );
    }
  }
  return { mode: 'servicePrincipal', clientId: caseInsensitiveGet(secrets, 'clientid'), clientSecret: caseInsensitiveGet(secrets, 'clientsecret') };
}

/**
 * The token for `audience` from csi.storage.k8s.io/serviceAccount.tokens (JSON: {"<audience>": {"token",
 * "expirationTimestamp"}}). Only the driver's CSIDriver object can make tokens appear, so every failure says how to
 * request them. Token texts never appear in a message.
 */
function serviceAccountTokenFor(audience: string, why: string, inputs: IdentityInputs): ServiceAccountToken {
  const howToRequest =
    `the CSIDriver object secrets-store.csi.k8s.io must request a token for audience ${audience} ` +
    `(spec.tokenRequests: [{audience: ${audience}}]; with the Helm chart: tokenRequests)`;
  const raw = inputs.serviceAccountTokens.trim();
  if (!raw) {
    throw invalidArgument(`${why} but the driver sent no service account token (${SERVICE_ACCOUNT_TOKENS}): ${howToRequest}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw invalidArgument(`${SERVICE_ACCOUNT_TOKENS} is not valid JSON: ${howToRequest}, and the driver passes it on unchanged`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw invalidArgument(`${SERVICE_ACCOUNT_TOKENS} is not a JSON object of tokens by audience: ${howToRequest}`);
  }
  const entries = parsed as Record<string, unknown>;
  const entry = entries[audience];
  const token = typeof entry === 'object' && entry !== null ? (entry as { token?: unknown }).token : undefined;
  if (typeof token !== 'string' || token.trim() === '') {
    const present = Object.keys(entries).map((a) => a.slice(0, 100));
    throw invalidArgument(
      `${why} but ${SERVICE_ACCOUNT_TOKENS} has no token for audience ${audience}` +
        `${present.length > 0 ? ` (it has tokens for: ${present.join(', ')})` : ''}: ${howToRequest}`,
    );
  }
  const expiration = (entry as { expirationTimestamp?: unknown }).expirationTimestamp;
  const expiresAt = typeof expiration === 'string' ? Date.parse(expiration) : Number.NaN;
  return {
    namespace: inputs.pod.namespace,
    name: inputs.pod.serviceAccountName,
    audience,
    token: token.trim(),
    expiresAt: Number.isFinite(expiresAt) ? expiresAt : undefined,
  };
}

function parseUserAssignedIdentity(value: string): UserAssignedIdentity | undefined {
  if (!value) return undefined;
  if (GUID.test(value)) return { kind: 'clientId', value };
  if (USER_ASSIGNED_RESOURCE_ID.test(value)) return { kind: 'resourceId', value };
  throw invalidArgument(
    `userAssignedIdentityID "${value.slice(0, 200)}" is neither a client ID (a GUID) nor the resource ID of a ` +
      'user-assigned identity (/subscriptions/…/providers/Microsoft.ManagedIdentity/userAssignedIdentities/…); ' +
      'leave it empty for the system-assigned identity',
  );
}

/** A value from the request, for a message: JSON-quoted (control characters escaped) and cut short. */
function quoted(value: string): string {
  return JSON.stringify(value.slice(0, 100));
}

function caseInsensitiveGet(map: Record<string, string>, key: string): string {
  for (const [k, v] of Object.entries(map)) if (k.toLowerCase() === key) return v.trim();
  return '';
}
