/**
 * Kubelet's side of a CSI inline volume, as kubelet 1.35 does it (pkg/volume/csi in k8s.io/kubernetes): it reads the
 * pod and the CSIDriver object from the API server, fetches the nodePublishSecretRef Secret, requests a service
 * account token bound to the pod for every audience the CSIDriver names, and calls the driver's NodePublishVolume on
 * its CSI socket — tokens in the volume context, or in `secrets` when the CSIDriver sets serviceAccountTokenInSecrets.
 * The wire types come from the CSI spec's own csi.proto, from the module the driver was built with.
 */
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { DRIVER_NAME } from './cluster';
import { components } from './components';
import type { KubeClient, KubeObject } from './kube';

export interface PodVolume {
  name: string;
  csi?: {
    driver: string;
    readOnly?: boolean;
    fsType?: string;
    volumeAttributes?: Record<string, string>;
    nodePublishSecretRef?: { name: string };
  };
}

export interface Pod extends KubeObject {
  spec: { serviceAccountName?: string; nodeName?: string; volumes?: PodVolume[]; [key: string]: unknown };
}

interface CsiDriverObject extends KubeObject {
  spec: {
    podInfoOnMount?: boolean;
    tokenRequests?: Array<{ audience: string; expirationSeconds?: number }>;
    serviceAccountTokenInSecrets?: boolean;
  };
}

/** What kubelet sent, for assertions about what reached the driver. */
export interface PublishRequest {
  volumeId: string;
  targetPath: string;
  volumeContext: Record<string, string>;
  secrets: Record<string, string>;
}

export interface Kubelet {
  /** Identity.GetPluginInfo, as kubelet's plugin registration asks it. */
  pluginInfo(): Promise<{ name: string; vendor_version: string }>;
  /** The target path kubelet uses for this pod's volume: <root>/pods/<uid>/volumes/kubernetes.io~csi/<volume>/mount. */
  targetPath(pod: Pod, volume: string): string;
  /** NodePublishVolume for the pod's volume; rejects with the driver's gRPC error. */
  publish(namespace: string, podName: string, volume?: string): Promise<PublishRequest>;
  unpublish(namespace: string, podName: string, volume?: string): Promise<void>;
  close(): void;
}

type Unary = (request: unknown, options: grpc.CallOptions, callback: (err: grpc.ServiceError | null, response?: unknown) => void) => void;

let services: { Identity: grpc.ServiceClientConstructor; Node: grpc.ServiceClientConstructor } | undefined;

function csiServices(): NonNullable<typeof services> {
  if (services) return services;
  const definition = protoLoader.loadSync(components().csiProto, { keepCase: true, longs: String, enums: String, defaults: false, oneofs: true });
  const pkg = grpc.loadPackageDefinition(definition) as unknown as { csi: { v1: { Identity: grpc.ServiceClientConstructor; Node: grpc.ServiceClientConstructor } } };
  services = pkg.csi.v1;
  return services;
}

/** Kubelet's volume handle for an inline ephemeral volume: "csi-" + sha256(pod uid + volume name). */
export function ephemeralVolumeHandle(podUid: string, volume: string): string {
  return `csi-${createHash('sha256').update(`${podUid}${volume}`).digest('hex')}`;
}

export function createKubelet(kube: KubeClient, csiSocket: string, root: string): Kubelet {
  const { Identity, Node } = csiServices();
  // kubelet dials the CSI socket as a plain unix target; grpc-go sends authority "localhost" for it.
  const channelOptions = { 'grpc.default_authority': 'localhost' };
  const node = new Node(`unix:${csiSocket}`, grpc.credentials.createInsecure(), channelOptions);
  const identity = new Identity(`unix:${csiSocket}`, grpc.credentials.createInsecure(), { ...channelOptions, channelOverride: node.getChannel() });
  const call = <T>(client: grpc.Client, method: string, request: unknown, timeoutMs = 120_000): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const fn = (client as unknown as Record<string, Unary>)[method]!.bind(client);
      fn(request, { deadline: Date.now() + timeoutMs }, (err, response) => (err ? reject(err) : resolve(response as T)));
    });

  const targetPath = (pod: Pod, volume: string): string =>
    join(root, 'pods', pod.metadata.uid!, 'volumes', 'kubernetes.io~csi', volume, 'mount');

  async function resolve(namespace: string, podName: string, volumeName: string | undefined): Promise<{ pod: Pod; volume: PodVolume & { csi: NonNullable<PodVolume['csi']> } }> {
    const pod = await kube.get<Pod>('v1', 'Pod', podName, namespace);
    const volume = (pod.spec.volumes ?? []).find((v) => v.csi?.driver === DRIVER_NAME && (volumeName === undefined || v.name === volumeName));
    if (!volume?.csi) throw new Error(`pod ${namespace}/${podName} has no ${DRIVER_NAME} volume ${volumeName ?? ''}`);
    return { pod, volume: volume as PodVolume & { csi: NonNullable<PodVolume['csi']> } };
  }

  async function serviceAccountTokens(pod: Pod, driver: CsiDriverObject): Promise<string | undefined> {
    const requests = driver.spec.tokenRequests ?? [];
    if (requests.length === 0) return undefined;
    const outputs: Record<string, { token: string; expirationTimestamp: string }> = {};
    for (const r of requests) {
      const answer = await kube.request<{ status: { token: string; expirationTimestamp: string } }>(
        'POST',
        `/api/v1/namespaces/${pod.metadata.namespace}/serviceaccounts/${pod.spec.serviceAccountName ?? 'default'}/token`,
        {
          apiVersion: 'authentication.k8s.io/v1',
          kind: 'TokenRequest',
          spec: {
            audiences: r.audience ? [r.audience] : [],
            ...(r.expirationSeconds ? { expirationSeconds: r.expirationSeconds } : {}),
            boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: pod.metadata.name, uid: pod.metadata.uid },
          },
        },
      );
      outputs[r.audience] = { token: answer.status.token, expirationTimestamp: answer.status.expirationTimestamp };
    }
    return JSON.stringify(outputs);
  }

  return {
    pluginInfo: () => call(identity, 'GetPluginInfo', {}),
    targetPath,
    async publish(namespace, podName, volumeName) {
      const { pod, volume } = await resolve(namespace, podName, volumeName);
      const driver = await kube.find<CsiDriverObject>('storage.k8s.io/v1', 'CSIDriver', DRIVER_NAME);
      const volumeContext: Record<string, string> = { ...(volume.csi.volumeAttributes ?? {}) };
      if (driver?.spec.podInfoOnMount) {
        Object.assign(volumeContext, {
          'csi.storage.k8s.io/pod.name': pod.metadata.name,
          'csi.storage.k8s.io/pod.namespace': namespace,
          'csi.storage.k8s.io/pod.uid': pod.metadata.uid!,
          'csi.storage.k8s.io/serviceAccount.name': pod.spec.serviceAccountName ?? '',
          'csi.storage.k8s.io/ephemeral': 'true',
        });
      }
      // kubelet starts from an empty map; protobuf sends an empty map as nothing, so the driver sees nil.
      const secrets: Record<string, string> = {};
      if (volume.csi.nodePublishSecretRef) {
        const secret = await kube.get<KubeObject & { data?: Record<string, string> }>('v1', 'Secret', volume.csi.nodePublishSecretRef.name, namespace);
        for (const [k, v] of Object.entries(secret.data ?? {})) secrets[k] = Buffer.from(v, 'base64').toString('utf8');
      }
      const tokens = driver ? await serviceAccountTokens(pod, driver) : undefined;
      if (tokens !== undefined) {
        if (driver?.spec.serviceAccountTokenInSecrets) secrets['csi.storage.k8s.io/serviceAccount.tokens'] = tokens;
        else volumeContext['csi.storage.k8s.io/serviceAccount.tokens'] = tokens;
      }
      await call(node, 'NodeGetCapabilities', {});
      const path = targetPath(pod, volume.name);
      mkdirSync(dirname(path), { recursive: true, mode: 0o750 });
      const request: PublishRequest = { volumeId: ephemeralVolumeHandle(pod.metadata.uid!, volume.name), targetPath: path, volumeContext, secrets };
      await call(node, 'NodePublishVolume', {
        volume_id: request.volumeId,
        target_path: path,
        readonly: volume.csi.readOnly ?? false,
        volume_capability: { access_mode: { mode: 'SINGLE_NODE_WRITER' }, mount: { fs_type: volume.csi.fsType ?? '', mount_flags: [] } },
        volume_context: volumeContext,
        secrets,
      });
      return request;
    },
    async unpublish(namespace, podName, volumeName) {
      const { pod, volume } = await resolve(namespace, podName, volumeName);
      await call(node, 'NodeUnpublishVolume', { volume_id: ephemeralVolumeHandle(pod.metadata.uid!, volume.name), target_path: targetPath(pod, volume.name) });
    },
    close() {
      identity.close();
      node.close();
    },
  };
}
