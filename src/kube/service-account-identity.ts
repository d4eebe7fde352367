/**
 * Workload identity from the pod's service account, opt-in: a SecretProviderClass that selects no identity (no
 * clientID, no identity switch, no nodePublishSecretRef) takes clientID — and tenantID when it has none — from the
 * service account's `azure.workload.identity/client-id` and `azure.workload.identity/tenant-id` annotations, the ones
 * Azure Workload Identity's webhook and External Secrets read. One class can then serve many workloads, each with its
 * own identity. Every other mode is left alone and costs no API call. A mount it applies to would otherwise fail
 * (no identity at all), so an API server that cannot answer fails only such mounts, with the reason.
 */
import { invalidArgument, ProviderError } from '../errors';
import type { MountHooks } from '../spec/ports';
import { parseBoolParameter, POD_NAMESPACE, SERVICE_ACCOUNT_NAME, SERVICE_ACCOUNT_TOKENS } from '../mount/parameters';
import type { Logger } from '../observability/logger';
import { BoundedCache } from '../util/bounded-cache';
import { KubeApiError, type KubeApi } from './client';

export const CLIENT_ID_ANNOTATION = 'azure.workload.identity/client-id';
export const TENANT_ID_ANNOTATION = 'azure.workload.identity/tenant-id';

/**
 * Annotations change rarely; a minute bounds both the API calls (one per service account a minute) and the staleness.
 */
const CACHE_TTL_MS = 60_000;
const MAX_SERVICE_ACCOUNTS = 1_000;
const DNS_LABEL = /^[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*$/;

export interface ServiceAccountIdentityOptions {
  api: KubeApi;
  logger: Logger;
  now?: () => number;
}

export class ServiceAccountIdentity implements Pick<MountHooks, 'prepare'> {
  /** Annotations by namespace/name as last read (none for an account that does not exist), for CACHE_TTL_MS. */
  private readonly cache: BoundedCache<string, Record<string, string>>;

  constructor(private readonly options: ServiceAccountIdentityOptions) {
    this.cache = new BoundedCache(MAX_SERVICE_ACCOUNTS, CACHE_TTL_MS, options.now ?? Date.now);
  }

  async prepare(attributes: Record<string, string>, secrets: Record<string, string>): Promise<Record<string, string>> {
    const get = (key: string): string => (attributes[key] ?? '').trim();
    if (get('clientID')) return attributes;
    for (const parameter of ['usePodIdentity', 'useVMManagedIdentity', 'useAzureTokenProxy']) {
      try {
        if (parseBoolParameter(get(parameter), parameter)) return attributes;
      } catch {
        return attributes; // The parser reports the bad value.
      }
    }
    if (Object.keys(secrets).some((key) => key !== SERVICE_ACCOUNT_TOKENS)) return attributes; // A service principal.
    const namespace = get(POD_NAMESPACE);
    const name = get(SERVICE_ACCOUNT_NAME);
    // Only names Kubernetes allows reach the API; anything else is the parser's to report.
    if (!DNS_LABEL.test(namespace) || !DNS_SUBDOMAIN.test(name)) return attributes;

    const annotations = await this.annotationsOf(namespace, name);
    const source = `the annotation ${CLIENT_ID_ANNOTATION} of service account ${namespace}/${name}`;
    const clientId = (annotations[CLIENT_ID_ANNOTATION] ?? '').trim();
    if (!clientId) {
      throw invalidArgument(
        `the SecretProviderClass selects no identity (clientID is empty, no nodePublishSecretRef) and service account ` +
          `${namespace}/${name} has no ${CLIENT_ID_ANNOTATION} annotation: annotate the service account with the client ID ` +
          'of its federated identity, or set clientID in the SecretProviderClass',
      );
    }
    const classTenant = get('tenantID') || get('tenantId');
    const annotatedTenant = (annotations[TENANT_ID_ANNOTATION] ?? '').trim();
    if (classTenant && annotatedTenant && classTenant.toLowerCase() !== annotatedTenant.toLowerCase()) {
      throw invalidArgument(
        `tenantID conflict: the SecretProviderClass sets tenantID ${JSON.stringify(classTenant.slice(0, 100))} and the ` +
          `annotation ${TENANT_ID_ANNOTATION} of service account ${namespace}/${name} says ${JSON.stringify(annotatedTenant.slice(0, 100))}: ` +
          'remove one, or make them equal',
      );
    }
    this.options.logger.debug({ namespace, serviceAccount: name, clientId }, `workload identity client ID from ${source}`);
    return { ...attributes, clientID: clientId, ...(classTenant ? {} : annotatedTenant ? { tenantID: annotatedTenant } : {}) };
  }

  private async annotationsOf(namespace: string, name: string): Promise<Record<string, string>> {
    const key = `${namespace}/${name}`;
    const cached = this.cache.get(key);
    if (cached) return cached;
    try {
      const object = await this.options.api.call<{ metadata?: { annotations?: Record<string, string> } }>(
        'GET',
        `/api/v1/namespaces/${encodeURIComponent(namespace)}/serviceaccounts/${encodeURIComponent(name)}`,
      );
      const annotations = object.metadata?.annotations ?? {};
      this.cache.set(key, annotations);
      return annotations;
    } catch (err) {
      if (err instanceof KubeApiError && err.failure === 'not_found') {
        this.cache.set(key, {});
        return {};
      }
      const message = err instanceof Error ? err.message : String(err);
      const fix =
        err instanceof KubeApiError && err.failure === 'forbidden'
          ? " (grant the provider's service account get on serviceaccounts: the chart does when workloadIdentityFromServiceAccount is on)"
          : '';
      throw new ProviderError(
        'Unavailable',
        `the SecretProviderClass selects no identity, and the annotations of service account ${key} (which would give its ` +
          `workload identity) could not be read from the Kubernetes API: ${message}${fix}`,
      );
    }
  }
}
