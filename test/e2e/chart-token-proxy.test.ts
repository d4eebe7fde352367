/**
 * Identity binding with the pod the chart renders: the provider runs with the Linux DaemonSet's arguments and with its
 * volume mounts in place, in a mount namespace of its own (unshare, as root; the host's files are not touched):
 *  - the cluster CA volume (projected from the kube-root-ca.crt ConfigMap) is filled as kubelet fills it and mounted at
 *    the rendered mountPath, /var/run/secrets/kubernetes.io/serviceaccount;
 *  - kubernetes.default.svc.cluster.local resolves (an /etc/hosts of the namespace) to the stand-in, which is the API
 *    server and, behind SNI routing, the token proxy, as AKS serves them; KUBERNETES_SERVICE_PORT is its port, as
 *    kubelet sets it;
 *  - identityBinding.tokenProxyURL is that address; sniName is left empty, so the provider derives the proxy's server
 *    name from the API server certificate, verified against the mounted CA.
 * Replaced: --endpoint (the socket goes to a temp dir, not the host's /provider) and the healthz/metrics ports (free
 * ones, on a shared machine). Without root or unshare the suite is skipped and says so.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status as grpcStatus } from '@grpc/grpc-js';
import { startAzureStandIns, type AzureStandIns } from '../support/azure-standins';
import {
  createServiceAccountIssuer,
  IDENTITY_BINDING_AUDIENCE,
  serviceAccountTokensAttribute,
  startIdentityBindingProxy,
  type IdentityBindingProxy,
  type ServiceAccountIssuer,
} from '../support/entra';
import { createTestPki } from '../support/pki';
import { registerProviderCleanup, startProvider, type ProviderProcess } from '../support/provider-process';
import { rejectionOf } from '../support/spc';
import { renderChart, type K8sObject } from '../deploy/support/helm';

registerProviderCleanup();
jest.setTimeout(90_000);

const API_SERVER = 'kubernetes.default.svc.cluster.local';
const BOUND = { clientId: 'c0c0c0c0-0000-4000-8000-0000000000c0', identityId: 'chart-tp-identity' };
const VALUE = 'canary-chart-token-proxy-51e7';

function canUnshare(): boolean {
  if (process.getuid?.() !== 0) return false;
  try {
    execFileSync('unshare', ['-m', '--propagation', 'private', 'true'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const describeHere = canUnshare() ? describe : describe.skip;
if (!canUnshare()) console.warn('chart-token-proxy: skipped, it needs root and unshare(1) for a mount namespace');

interface Mount {
  name: string;
  mountPath: string;
}
interface Volume {
  name: string;
  projected?: { sources: Array<{ configMap?: { name: string; items: Array<{ key: string; path: string }> } }> };
  hostPath?: { path: string };
}
interface RenderedPod {
  args: string[];
  mounts: Mount[];
  volumes: Volume[];
}

function linuxPod(objects: K8sObject[]): RenderedPod {
  const ds = objects.find((o) => o.kind === 'DaemonSet' && !o.metadata.name.endsWith('-windows'))!;
  const spec = (ds['spec'] as { template: { spec: { containers: Array<{ args: string[]; volumeMounts: Mount[] }>; volumes: Volume[] } } }).template.spec;
  return { args: spec.containers[0]!.args, mounts: spec.containers[0]!.volumeMounts, volumes: spec.volumes };
}

/**
 * Fills each projected ConfigMap volume as kubelet would from `configMaps`, and returns the shell lines that mount
 * it at its mountPath inside the namespace. A mount path under /var/run (= /run) goes on a private tmpfs there.
 */
function podMounts(pod: RenderedPod, configMaps: Record<string, Record<string, string>>, work: string): string[] {
  const lines = ['mount -t tmpfs tmpfs /run'];
  for (const mount of pod.mounts) {
    const volume = pod.volumes.find((v) => v.name === mount.name)!;
    if (volume.hostPath) continue; // the providers directory: the socket is served from a temp dir instead
    const dir = join(work, 'volumes', mount.name);
    mkdirSync(dir, { recursive: true });
    for (const source of volume.projected?.sources ?? []) {
      const data = configMaps[source.configMap!.name]!;
      for (const item of source.configMap!.items) writeFileSync(join(dir, item.path), data[item.key]!);
    }
    lines.push(`mkdir -p '${mount.mountPath}'`, `mount --bind -o ro '${dir}' '${mount.mountPath}'`);
  }
  return lines;
}

let azure: AzureStandIns;
let proxy: IdentityBindingProxy;
let cluster: ServiceAccountIssuer;
let work: string;

beforeAll(async () => {
  cluster = createServiceAccountIssuer();
  azure = await startAzureStandIns();
  proxy = await startIdentityBindingProxy({
    pki: azure.pki,
    tokens: azure.tokens,
    clusterId: '5f3c0ffee0ddba11cafe0042',
    issuer: cluster,
    bindings: [{ namespace: 'shop', serviceAccount: 'bound-sa', ...BOUND, tenantId: azure.tenantId }],
  });
  azure.keyVault.addVault('chart-tp-kv', { allow: [BOUND.identityId] });
  azure.keyVault.setSecret('chart-tp-kv', 'db', VALUE);
  work = mkdtempSync(join(tmpdir(), 'chart-token-proxy-'));
});

afterAll(async () => {
  await proxy?.close();
  await azure?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

async function startRenderedProvider(caPem: string): Promise<ProviderProcess> {
  const { objects } = await renderChart({ values: { identityBinding: { tokenProxyURL: `https://${API_SERVER}:${proxy.port}` } } });
  const pod = linuxPod(objects);
  const dir = mkdtempSync(join(work, 'pod-'));
  const hosts = join(dir, 'hosts');
  writeFileSync(hosts, `127.0.0.1 localhost\n127.0.0.1 ${API_SERVER}\n`);
  const setup = [...podMounts(pod, { 'kube-root-ca.crt': { 'ca.crt': caPem } }, dir), `mount --bind -o ro '${hosts}' /etc/hosts`];
  const replaced = /^--(endpoint|healthz-port|prometheus-port)=/;
  return startProvider({
    env: { ...azure.providerEnv(), KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: String(proxy.port) },
    args: pod.args.filter((a) => !replaced.test(a)),
    wrapCommand: (argv) => ['unshare', '-m', '--propagation', 'private', 'sh', '-euc', `${setup.join('\n')}\nexec "$@"`, 'sh', ...argv],
  });
}

function request(): Parameters<ProviderProcess['client']['mount']>[0] {
  const { token, expirationTimestamp } = cluster.issue({ namespace: 'shop', serviceAccount: 'bound-sa', audience: IDENTITY_BINDING_AUDIENCE });
  return {
    attributes: {
      'csi.storage.k8s.io/pod.name': 'shop-pod',
      'csi.storage.k8s.io/pod.namespace': 'shop',
      'csi.storage.k8s.io/serviceAccount.name': 'bound-sa',
      'csi.storage.k8s.io/serviceAccount.tokens': serviceAccountTokensAttribute({ [IDENTITY_BINDING_AUDIENCE]: { token, expirationTimestamp } }),
      useAzureTokenProxy: 'true',
      clientID: BOUND.clientId,
      keyvaultName: 'chart-tp-kv',
      tenantID: azure.tenantId,
      objects: 'array:\n  - |\n    objectName: db\n    objectType: secret\n',
    },
  };
}

describeHere('identity binding in the pod the chart renders', () => {
  it('mounts through the token proxy, its server name derived with the mounted cluster CA', async () => {
    const provider = await startRenderedProvider(azure.pki.caCertPem);
    try {
      const result = await provider.client.mount(request());
      expect(result.files[0]!.contents.toString()).toBe(VALUE);
      const token = proxy.requests.filter((r) => r.kind === 'token').at(-1)!;
      expect(token).toMatchObject({ servername: proxy.sniName, clientId: BOUND.clientId, status: 200 });
      expect(provider.logs()).not.toContain(VALUE);
    } finally {
      await provider.stop();
    }
  });

  it('uses that CA and no other: with another cluster CA in the volume the API server is not trusted', async () => {
    const provider = await startRenderedProvider(createTestPki('another cluster CA').caCertPem);
    try {
      const err = await rejectionOf(provider.client.mount(request()));
      expect([grpcStatus.UNAVAILABLE, grpcStatus.FAILED_PRECONDITION]).toContain(err.code);
      expect(err.details).toContain('--sni-name');
    } finally {
      await provider.stop();
    }
  });
});
