/**
 * The node's managed identity (VM / VMSS), through IMDS: system-assigned, or a user-assigned identity chosen by client
 * ID or by ARM resource ID (sent as IMDS's msi_res_id). The requests themselves are imds-credential.ts's.
 */
import type { TokenCredential } from '@azure/core-auth';
import { ProviderError } from '../errors';
import type { UserAssignedIdentity } from '../spec/types';
import { identityKey } from './identity-key';
import { ImdsCredential } from './imds-credential';

/**
 * Which of the provider's own environment variables would make @azure/identity's ManagedIdentityCredential silently
 * exchange the provider pod's service account token (workload identity) instead of asking IMDS. main.ts reads them.
 */
export interface AmbientWorkloadIdentity {
  clientId: boolean;
  tenantId: boolean;
  federatedTokenFile: boolean;
}

export function managedIdentityKey(selector: UserAssignedIdentity | undefined): string {
  return selector ? identityKey('mi', selector.kind, selector.value.toLowerCase()) : identityKey('mi', 'system');
}

export function describeManagedIdentity(selector: UserAssignedIdentity | undefined): string {
  return selector
    ? `the user-assigned managed identity with ${selector.kind === 'clientId' ? 'client ID' : 'resource ID'} ${selector.value}`
    : "the node's system-assigned managed identity";
}

export function createManagedIdentityCredential(
  selector: UserAssignedIdentity | undefined,
  userAgentPrefix: string,
  ambient: AmbientWorkloadIdentity | undefined,
  imdsEndpoint?: string,
): TokenCredential {
  // The SDK's ManagedIdentityCredential turns into workload identity for the provider's own pod when these are set; a
  // mount would then read the vault as the provider, not as the node identity its SecretProviderClass names.
  if (ambient?.tenantId && ambient.federatedTokenFile && (ambient.clientId || selector?.kind === 'clientId')) {
    throw new ProviderError(
      'FailedPrecondition',
      `useVMManagedIdentity cannot be served: the provider's own environment has AZURE_TENANT_ID and ` +
        'AZURE_FEDERATED_TOKEN_FILE (workload identity for the provider pod), which would make the Azure SDK use the ' +
        "provider's identity instead of the node's: remove the azure.workload.identity/use label and those variables " +
        'from the provider DaemonSet',
    );
  }
  // The check stays although IMDS is asked directly now: those variables on the DaemonSet are a mistake worth naming.
  return new ImdsCredential(selector, {
    identity: describeManagedIdentity(selector),
    userAgent: userAgentPrefix,
    ...(imdsEndpoint ? { endpoint: imdsEndpoint } : {}),
  });
}
