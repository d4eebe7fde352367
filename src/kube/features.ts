/**
 * The Kubernetes-aware features, put together from the flags into the hooks a mount calls. The API connection is
 * set up only when a feature needs it, once; when it cannot be (no token in the pod, a broken
 * kubeconfig) the provider still starts and says so in one line: every call then fails as "unreachable", which each
 * feature handles as it handles an API server that is down.
 */
import type { Registry } from 'prom-client';
import type { MountHooks } from '../spec/ports';
import type { Logger } from '../observability/logger';
import { createKubeApi, KubeApiError, type KubeApi } from './client';
import { inClusterConfig, kubeconfigFileConfig } from './config';
import { NodeIdentityPolicy, type NamespaceLabel, type NodeIdentityPolicySetting } from './node-identity-policy';
import { RotationFailureEvents } from './rotation-events';
import { ServiceAccountIdentity } from './service-account-identity';

/** How long a shutdown waits for queued events. */
const CLOSE_WAIT_MS = 2_000;

export interface KubeFeatureSettings {
  /** '' = in-cluster configuration. */
  kubeconfig: string;
  rotationFailureEvents: boolean;
  workloadIdentityFromServiceAccount: boolean;
  nodeIdentityPolicy: NodeIdentityPolicySetting;
  nodeIdentityAllowedNamespaceLabel: NamespaceLabel | undefined;
}

/** Whether any feature needs the Kubernetes API. */
export function needsKubeApi(settings: KubeFeatureSettings): boolean {
  return (
    settings.rotationFailureEvents ||
    settings.workloadIdentityFromServiceAccount ||
    (settings.nodeIdentityPolicy === 'deny' && settings.nodeIdentityAllowedNamespaceLabel !== undefined)
  );
}

export interface KubeFeatures {
  hooks: MountHooks;
  close(): Promise<void>;
}

export function createKubeFeatures(
  settings: KubeFeatureSettings,
  context: { logger: Logger; registry: Registry; userAgent: string; env: NodeJS.ProcessEnv },
): KubeFeatures {
  const { logger } = context;
  const api = needsKubeApi(settings) ? connect(settings.kubeconfig, context) : undefined;
  const events = settings.rotationFailureEvents
    ? new RotationFailureEvents({ api: api!, logger, registry: context.registry, ...(context.env['NODE_NAME'] ? { host: context.env['NODE_NAME'] } : {}) })
    : undefined;
  const policy = new NodeIdentityPolicy({
    policy: settings.nodeIdentityPolicy,
    allowedNamespaceLabel: settings.nodeIdentityAllowedNamespaceLabel,
    api,
    logger,
  });
  const serviceAccounts = settings.workloadIdentityFromServiceAccount ? new ServiceAccountIdentity({ api: api!, logger }) : undefined;
  const hooks: MountHooks = {
    admit: (spec) => policy.admit(spec),
    ...(serviceAccounts ? { prepare: (attributes, secrets) => serviceAccounts.prepare(attributes, secrets) } : {}),
    ...(events
      ? { succeeded: (attributes) => events.succeeded(attributes), failed: (attributes, spec, error) => events.failed(attributes, spec, error) }
      : {}),
  };
  return {
    hooks,
    async close() {
      // The last failures' events get a moment, never the shutdown's whole budget.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([events?.flush(), new Promise((resolve) => (timer = setTimeout(resolve, CLOSE_WAIT_MS)))]);
      clearTimeout(timer);
      api?.close();
    },
  };
}

function connect(kubeconfig: string, context: { logger: Logger; userAgent: string; env: NodeJS.ProcessEnv }): KubeApi {
  try {
    const config = kubeconfig ? kubeconfigFileConfig(kubeconfig) : inClusterConfig(context.env);
    context.logger.info({ server: config.server, source: config.source }, 'Kubernetes API client configured');
    return createKubeApi(config, context.userAgent);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    context.logger.error(
      `cannot configure the Kubernetes API client: ${reason}; mounts go on, rotation failure events and service account ` +
        'identities are unavailable, and a node identity policy by namespace label refuses node identities',
    );
    return {
      server: '',
      call: () => Promise.reject(new KubeApiError('unreachable', 0, `no Kubernetes API client: ${reason}`)),
      close: () => undefined,
    };
  }
}
