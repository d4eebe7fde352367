/**
 * The node identity policy. useVMManagedIdentity and usePodIdentity authenticate as the node (its VMSS identity, or
 * aad-pod-identity's NMI on the node): any pod scheduled there that names a SecretProviderClass with that identity can
 * read what the identity can, so it cannot scope access to one workload. An operator may refuse them cluster-wide, or
 * allow them only in namespaces carrying a label (a few trusted system namespaces). Deciding by label needs the
 * namespace from the API: when the API cannot answer, the mount is refused (fail closed) — letting it through would
 * make the policy as weak as the API server's availability. When allowed, the first mount of each class says once in
 * the log that every pod on the node can use its identity.
 */
import { ProviderError } from '../errors';
import type { MountHooks } from '../spec/ports';
import type { MountSpec } from '../spec/types';
import type { Logger } from '../observability/logger';
import { BoundedCache } from '../util/bounded-cache';
import { KubeApiError, type KubeApi } from './client';

export type NodeIdentityPolicySetting = 'allow' | 'deny';

export interface NamespaceLabel {
  key: string;
  /** undefined = any value. */
  value: string | undefined;
}

export interface NodeIdentityPolicyOptions {
  policy: NodeIdentityPolicySetting;
  /** With 'deny': namespaces carrying this label may still use node identities. */
  allowedNamespaceLabel: NamespaceLabel | undefined;
  /** Needed only with allowedNamespaceLabel. */
  api: KubeApi | undefined;
  logger: Logger;
  now?: () => number;
}

/** A namespace's labels change rarely; 30 s keeps the policy fresh at one GET per namespace and half minute. */
const NAMESPACE_TTL_MS = 30_000;
const MAX_NAMESPACES = 1_000;
const MAX_LOGGED_CLASSES = 10_000;

const WHAT_INSTEAD =
  'use workload identity instead: set clientID to a user-assigned managed identity federated with the pod\'s service account';

/** Parses KEY or KEY=VALUE as a label selector's single term. */
export function parseNamespaceLabel(text: string): NamespaceLabel {
  const [key, value, ...rest] = text.split('=');
  const label = /^([a-z0-9A-Z]([-a-z0-9A-Z_.]*[a-z0-9A-Z])?\/)?[a-z0-9A-Z]([-a-z0-9A-Z_.]{0,61}[a-z0-9A-Z])?$/;
  if (!key || !label.test(key) || rest.length > 0 || (value !== undefined && !/^([a-z0-9A-Z]([-a-z0-9A-Z_.]{0,61}[a-z0-9A-Z])?)?$/.test(value))) {
    throw new Error('expected a label as KEY or KEY=VALUE, e.g. csi-provider-azure/node-identity=allowed');
  }
  return { key, value };
}

export class NodeIdentityPolicy implements Pick<MountHooks, 'admit'> {
  /** Namespace labels as last read, for NAMESPACE_TTL_MS. */
  private readonly namespaces: BoundedCache<string, Record<string, string>>;
  private readonly loggedClasses = new BoundedCache<string, true>(MAX_LOGGED_CLASSES);

  constructor(private readonly options: NodeIdentityPolicyOptions) {
    this.namespaces = new BoundedCache(MAX_NAMESPACES, NAMESPACE_TTL_MS, options.now ?? Date.now);
  }

  async admit(spec: MountSpec): Promise<void> {
    const parameter = spec.identity.mode === 'vmManagedIdentity' ? 'useVMManagedIdentity' : spec.identity.mode === 'podIdentity' ? 'usePodIdentity' : undefined;
    if (!parameter) return;
    const { policy, allowedNamespaceLabel: label } = this.options;
    if (policy === 'deny') {
      if (!label) {
        throw new ProviderError(
          'PermissionDenied',
          `${parameter} is refused by this cluster's node identity policy (--node-identity-policy=deny): every pod on the ` +
            `node could use that identity, so it cannot grant access to one workload; ${WHAT_INSTEAD}`,
        );
      }
      const labels = await this.namespaceLabels(spec.pod.namespace, parameter);
      const matches = Object.hasOwn(labels, label.key) && (label.value === undefined || labels[label.key] === label.value);
      if (!matches) {
        throw new ProviderError(
          'PermissionDenied',
          `${parameter} is refused in namespace ${spec.pod.namespace} by this cluster's node identity policy: node identities ` +
            `are allowed only in namespaces labelled ${describe(label)}, because every pod on the node could use them; ${WHAT_INSTEAD}`,
        );
      }
    }
    this.logOnce(spec, parameter);
  }

  private logOnce(spec: MountSpec, parameter: string): void {
    const key = `${spec.pod.namespace}/${spec.secretProviderClass}`;
    if (this.loggedClasses.get(key)) return;
    this.loggedClasses.set(key, true);
    const identity =
      spec.identity.mode === 'vmManagedIdentity'
        ? spec.identity.userAssigned
          ? `the node's user-assigned identity ${spec.identity.userAssigned.value}`
          : "the node's system-assigned identity"
        : "the identity aad-pod-identity's NMI assigns on the node";
    this.options.logger.info(
      { namespace: spec.pod.namespace, secretProviderClass: spec.secretProviderClass, vault: spec.vaultName },
      `${parameter}: every pod on this node can use ${identity} and read what it can read; to scope access to one workload, ${WHAT_INSTEAD} ` +
        '(--node-identity-policy=deny refuses node identities)',
    );
  }

  private async namespaceLabels(namespace: string, parameter: string): Promise<Record<string, string>> {
    const cached = this.namespaces.get(namespace);
    if (cached) return cached;
    try {
      const api = this.options.api;
      if (!api) throw new KubeApiError('other', 0, 'no Kubernetes API client is configured');
      const object = await api.call<{ metadata?: { labels?: Record<string, string> } }>('GET', `/api/v1/namespaces/${encodeURIComponent(namespace)}`);
      const labels = object.metadata?.labels ?? {};
      this.namespaces.set(namespace, labels);
      return labels;
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      const fix =
        err instanceof KubeApiError && err.failure === 'forbidden'
          ? ' (grant the provider\'s service account get on namespaces: the chart does when nodeIdentityPolicy.allowedNamespaceLabel is set)'
          : '';
      // Fail closed: the policy cannot be decided without the namespace's labels.
      throw new ProviderError(
        'Unavailable',
        `${parameter} is allowed only in namespaces labelled ${describe(this.options.allowedNamespaceLabel!)}, and the labels of ` +
          `namespace ${namespace} could not be read from the Kubernetes API: ${message}${fix}; the mount is refused until they can be`,
      );
    }
  }
}

function describe(label: NamespaceLabel): string {
  return label.value === undefined ? label.key : `${label.key}=${label.value}`;
}
