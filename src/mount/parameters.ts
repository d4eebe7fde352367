import { invalidArgument } from '../errors';
import { canonicalCloudName, CLOUD_NAMES } from '../keyvault/clouds';
import { parseObjectsDetailed } from './objects';
import type { IdentitySpec, MountSpec, UserAssignedIdentity } from './types';

/** Attribute keys the driver adds to the SecretProviderClass parameters (CONTRACT §1). */
export const POD_NAME = 'csi.storage.k8s.io/pod.name';
export const POD_NAMESPACE = 'csi.storage.k8s.io/pod.namespace';
export const POD_UID = 'csi.storage.k8s.io/pod.uid';
export const SERVICE_ACCOUNT_NAME = 'csi.storage.k8s.io/serviceAccount.name';
export const SERVICE_ACCOUNT_TOKENS = 'csi.storage.k8s.io/serviceAccount.tokens';
export const SECRET_PROVIDER_CLASS = 'secretProviderClass';

const TRUE_WORDS = new Set(['1', 't', 'T', 'TRUE', 'true', 'True']);
const FALSE_WORDS = new Set(['0', 'f', 'F', 'FALSE', 'false', 'False']);

const VAULT_NAME = /^[-A-Za-z0-9]{3,24}$/;
const GUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const USER_ASSIGNED_RESOURCE_ID =
  /^\/subscriptions\/[^/]+\/resourcegroups\/[^/]+\/providers\/microsoft\.managedidentity\/userassignedidentities\/[^/]+$/i;

export interface ParameterDefaults {
  /** `--cloud-name`: used when the SecretProviderClass sets no cloudName. */
  cloudName: string;
}

/**
 * Turns the attributes (SecretProviderClass parameters plus the driver's pod keys) and the nodePublishSecretRef data
 * into a MountSpec, in the order CONTRACT §2 gives, failing on the first problem with a message that names the
 * parameter and the fix. No network: a bad SecretProviderClass costs Azure nothing.
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
    throw invalidArgument(
      `keyvaultName "${vaultName.slice(0, 64)}" is not a valid Key Vault name: use 3-24 letters, digits and dashes ` +
        '(the name, not the URL)',
    );
  }

  const tenantId = get('tenantID') || get('tenantId');
  if (!tenantId) throw invalidArgument('tenantID is required: set it to the Entra ID tenant of the Key Vault');

  const cloudParameter = get('cloudName');
  const cloudName = canonicalCloudName(cloudParameter || defaults.cloudName);
  if (!cloudName) {
    const source = cloudParameter ? `cloudName "${cloudParameter}"` : `--cloud-name "${defaults.cloudName}"`;
    throw invalidArgument(`${source} is not a known cloud: use one of ${CLOUD_NAMES.join(', ')}`);
  }

  const identity = resolveIdentity({
    usePodIdentity,
    useVMManagedIdentity,
    useAzureTokenProxy,
    userAssignedIdentityID: get('userAssignedIdentityID'),
    clientID: get('clientID'),
    secrets,
  });

  const { objects, unknownFields } = parseObjectsDetailed(attributes['objects'] ?? '');
  const warnings = unknownFields.map((f) => `${f} is not a known object field and is ignored`);
  if (objects.length === 0) warnings.push('objects is empty: the mount succeeds with no files');

  return {
    pod: {
      name: podName,
      namespace: podNamespace,
      uid: get(POD_UID),
      serviceAccountName: get(SERVICE_ACCOUNT_NAME),
    },
    secretProviderClass: get(SECRET_PROVIDER_CLASS),
    vaultName,
    tenantId,
    cloudName,
    cloudEnvFileName: get('cloudEnvFileName'),
    identity,
    objects,
    warnings,
  };
}

export function parseBoolParameter(value: string, parameter: string): boolean {
  if (value === '' || FALSE_WORDS.has(value)) return false;
  if (TRUE_WORDS.has(value)) return true;
  throw invalidArgument(`${parameter} "${value.slice(0, 32)}" is not a boolean: use "true" or "false"`);
}

interface IdentityInputs {
  usePodIdentity: boolean;
  useVMManagedIdentity: boolean;
  useAzureTokenProxy: boolean;
  userAssignedIdentityID: string;
  clientID: string;
  secrets: Record<string, string>;
}

/** The identity mode, as the reference decides it: a switch, else workload identity by clientID, else a service principal. */
function resolveIdentity(inputs: IdentityInputs): IdentitySpec {
  if (inputs.useVMManagedIdentity) {
    return { mode: 'vmManagedIdentity', userAssigned: parseUserAssignedIdentity(inputs.userAssignedIdentityID) };
  }
  if (inputs.usePodIdentity) return { mode: 'podIdentity' };
  if (inputs.useAzureTokenProxy) {
    if (!inputs.clientID) {
      throw invalidArgument('useAzureTokenProxy is "true" but clientID is empty: set clientID to the identity\'s client ID');
    }
    return { mode: 'tokenProxy', clientId: inputs.clientID };
  }
  if (inputs.clientID) return { mode: 'workloadIdentity', clientId: inputs.clientID };

  const clientId = caseInsensitiveGet(inputs.secrets, 'clientid');
  const clientSecret = caseInsensitiveGet(inputs.secrets, 'clientsecret');
  if (!clientId || !clientSecret) {
    const missing = !clientId ? 'clientid' : 'clientsecret';
    throw invalidArgument(
      `no identity selected and the nodePublishSecretRef secret has no "${missing}": set useVMManagedIdentity: "true" ` +
        '(node managed identity), clientID (workload identity), or reference a Secret with clientid and clientsecret ' +
        '(service principal) in nodePublishSecretRef',
    );
  }
  return { mode: 'servicePrincipal', clientId, clientSecret };
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

function caseInsensitiveGet(map: Record<string, string>, key: string): string {
  for (const [k, v] of Object.entries(map)) if (k.toLowerCase() === key) return v.trim();
  return '';
}
