/**
 * A cluster with one node per driver version, for real: kube-apiserver and etcd; on each node the real driver of
 * that version, our provider process on the driver's providers directory, and a kubelet-like client. Azure is the
 * hermetic suite's stand-ins (IMDS, Key Vault, Entra ID, NMI, the AKS identity binding proxy), reached only through the
 * standard mechanisms users have. Service account tokens are the API server's own (TokenRequest), and Entra ID trusts
 * the cluster's issuer.
 */
import { mkdirSync, readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { startAzureStandIns, type AzureStandIns } from '../../support/azure-standins';
import { startEntra, startIdentityBindingProxy, type EntraApplication, type EntraStandIn, type IdentityBinding, type IdentityBindingProxy, type ServiceAccountIssuer } from '../../support/entra';
import type { ImdsIdentities } from '../../support/imds';
import { startNmi, type NmiStandIn, type PodIdentityAssignment } from '../../support/nmi';
import { startProvider, type ProviderProcess } from '../../support/provider-process';
import { DRIVER_NAME, startCluster, type Cluster, type CsiDriverOptions } from './cluster';
import { DRIVER_VERSIONS, type DriverVersion } from './components';
import { startDriver, type Driver } from './driver';
import { createKubelet, type Kubelet, type Pod } from './kubelet';
import type { KubeObject } from './kube';

/** The node of each driver version. */
export const NODES: Record<DriverVersion, string> = {
  'v1.6.0': 'aks-nodepool1-00000000-vmss000000',
  'v1.5.6': 'aks-nodepool1-00000000-vmss000001',
};
export const TOKEN_PROXY_CLUSTER_ID = '696995ccb303450001b31a18';

export interface StackOptions {
  /** The driver versions to run, one node each; default both. */
  versions?: readonly DriverVersion[];
  identities?: ImdsIdentities;
  applications?: (tenantId: string, issuer: string) => EntraApplication[];
  podIdentities?: PodIdentityAssignment[];
  bindings?: (tenantId: string) => IdentityBinding[];
  /** Driver rotation (--enable-secret-rotation) with this poll interval. */
  rotationPollInterval?: string;
  csiDriver?: CsiDriverOptions;
  providerArgs?: string[];
  /** More provider flags, decided once the control plane runs (e.g. a --kubeconfig for it). */
  providerArgsFor?: (cluster: Cluster) => Promise<string[]>;
}

export interface Node {
  name: string;
  version: DriverVersion;
  provider: ProviderProcess;
  driver: Driver;
  kubelet: Kubelet;
  providerDir: string;
}

export interface Stack {
  cluster: Cluster;
  azure: AzureStandIns;
  entra: EntraStandIn;
  nmi: NmiStandIn | undefined;
  tokenProxy: IdentityBindingProxy | undefined;
  nodes: Record<DriverVersion, Node>;
  /** Creates the namespace and service account unless they exist. */
  serviceAccount(namespace: string, name: string): Promise<void>;
  secretProviderClass(namespace: string, name: string, parameters: Record<string, string>, secretObjects?: unknown[]): Promise<void>;
  /** A pod on the node of `version` with one inline volume `secrets-store-inline` for the class; not published yet. */
  pod(version: DriverVersion, namespace: string, name: string, options: { spc: string; serviceAccount?: string; secretRef?: string }): Promise<Pod>;
  secret(namespace: string, name: string, stringData: Record<string, string>): Promise<void>;
  /**
   * The files of a published volume as the pod sees them: relative path → mode and bytes (the driver's ..data links
   * followed).
   */
  readVolume(version: DriverVersion, namespace: string, pod: string): Promise<Map<string, { mode: number; contents: Buffer }>>;
  targetPathOf(version: DriverVersion, namespace: string, pod: string): Promise<string>;
  stop(): Promise<void>;
}

export async function startStack(options: StackOptions): Promise<Stack> {
  const versions = options.versions ?? DRIVER_VERSIONS;
  const cluster = await startCluster();
  const toStop: Array<() => Promise<void>> = [() => cluster.stop()];
  const stop = async (): Promise<void> => {
    for (const s of toStop.reverse()) await s().catch(() => undefined);
  };
  try {
    if (options.csiDriver) await cluster.installCsiDriver(options.csiDriver);
    let entra: EntraStandIn | undefined;
    let tokenProxy: IdentityBindingProxy | undefined;
    const azure = await startAzureStandIns({
      identities: options.identities ?? { systemAssigned: { id: 'node-system-identity' } },
      route: (host, port) => entra?.route(host, port),
    });
    toStop.push(() => azure.close());
    entra = await startEntra({
      pki: azure.pki,
      tokens: azure.tokens,
      trustedIssuers: [cluster.issuer],
      applications: options.applications?.(azure.tenantId, cluster.issuer.issuer) ?? [],
    });
    toStop.push(() => entra!.close());
    let nmi: NmiStandIn | undefined;
    if (options.podIdentities) {
      nmi = await startNmi({ tokens: azure.tokens, tenantId: azure.tenantId, assignments: options.podIdentities });
      toStop.push(() => nmi!.close());
    }
    const providerArgs = ['-v=5', ...(options.providerArgs ?? []), ...((await options.providerArgsFor?.(cluster)) ?? [])];
    if (options.bindings) {
      // Only the issuer and its key are used: the proxy checks the API server's own tokens.
      const issuer = { ...cluster.issuer, issue: () => { throw new Error('tokens come from the API server'); } } as ServiceAccountIssuer;
      tokenProxy = await startIdentityBindingProxy({ pki: azure.pki, tokens: azure.tokens, clusterId: TOKEN_PROXY_CLUSTER_ID, issuer, bindings: options.bindings(azure.tenantId) });
      toStop.push(() => tokenProxy!.close());
      providerArgs.push('--token-proxy-url', tokenProxy.url, '--sni-name', tokenProxy.sniName);
    }

    const nodes = {} as Record<DriverVersion, Node>;
    for (const version of versions) {
      const name = NODES[version];
      const providerDir = join(cluster.dir, name, 'secrets-store-csi-providers');
      mkdirSync(providerDir, { recursive: true });
      const provider = await startProvider({ env: azure.providerEnv(), args: providerArgs, socketDir: providerDir });
      toStop.push(() => provider.stop().then(() => undefined));
      const driver = await startDriver(cluster, version, {
        providerDir,
        nodeId: name,
        ...(options.rotationPollInterval ? { rotationPollInterval: options.rotationPollInterval } : {}),
      });
      const kubelet = createKubelet(cluster.kube, driver.csiSocket, join(cluster.dir, name, 'kubelet'));
      toStop.push(async () => kubelet.close());
      nodes[version] = { name, version, provider, driver, kubelet, providerDir };
    }
    const { kube } = cluster;

    const ensure = async (object: KubeObject): Promise<void> => {
      const found = await kube.find(object.apiVersion, object.kind, object.metadata.name, object.metadata.namespace);
      if (!found) await kube.create(object);
    };
    const targetPathOf = async (version: DriverVersion, namespace: string, pod: string): Promise<string> =>
      nodes[version].kubelet.targetPath(await kube.get<Pod>('v1', 'Pod', pod, namespace), 'secrets-store-inline');

    const serviceAccount = async (namespace: string, name: string): Promise<void> => {
      await ensure({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } });
      await ensure({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name, namespace } });
    };

    return {
      cluster,
      azure,
      entra,
      nmi,
      tokenProxy,
      nodes,
      serviceAccount,
      async secretProviderClass(namespace, name, parameters, secretObjects) {
        await ensure({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } });
        await kube.create({
          apiVersion: 'secrets-store.csi.x-k8s.io/v1',
          kind: 'SecretProviderClass',
          metadata: { name, namespace },
          spec: { provider: 'azure', parameters, ...(secretObjects ? { secretObjects } : {}) },
        });
      },
      async pod(version, namespace, name, podOptions) {
        const podServiceAccount = podOptions.serviceAccount ?? 'workload';
        await serviceAccount(namespace, podServiceAccount);
        return kube.create<Pod>({
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: { name, namespace },
          spec: {
            nodeName: NODES[version],
            serviceAccountName: podServiceAccount,
            containers: [{ name: 'app', image: 'registry.k8s.io/pause:3.10', volumeMounts: [{ name: 'secrets-store-inline', mountPath: '/mnt/secrets-store', readOnly: true }] }],
            volumes: [
              {
                name: 'secrets-store-inline',
                csi: {
                  driver: DRIVER_NAME,
                  readOnly: true,
                  volumeAttributes: { secretProviderClass: podOptions.spc },
                  ...(podOptions.secretRef ? { nodePublishSecretRef: { name: podOptions.secretRef } } : {}),
                },
              },
            ],
          },
        });
      },
      async secret(namespace, name, stringData) {
        await ensure({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } });
        await kube.create({ apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace }, type: 'Opaque', stringData });
      },
      async readVolume(version, namespace, pod) {
        return readTree(await targetPathOf(version, namespace, pod));
      },
      targetPathOf,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * Files under `root` as a pod reads them; the driver's own `..`-prefixed entries (its atomic-write staging) skipped.
 */
export function readTree(root: string): Map<string, { mode: number; contents: Buffer }> {
  const files = new Map<string, { mode: number; contents: Buffer }>();
  const walk = (dir: string, prefix: string): void => {
    for (const name of readdirSync(dir).sort()) {
      if (name.startsWith('..')) continue;
      const path = join(dir, name);
      const stat = statSync(path);
      const rel = prefix ? `${prefix}/${name}` : name;
      if (stat.isDirectory()) walk(realpathSync(path), rel);
      else files.set(rel, { mode: stat.mode & 0o7777, contents: readFileSync(path) });
    }
  };
  walk(root, '');
  return files;
}
