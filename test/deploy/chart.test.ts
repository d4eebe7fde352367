/**
 * The Helm chart, rendered by Helm itself (see support/helm.ts), with the default values, with Windows enabled and with
 * every value changed. Each rendered object must match the Kubernetes schema, and the provider's own flag parser must
 * accept the arguments the chart passes.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { parseCommandLine } from '../../src/cli/flags';
import { heapCapArgv, MEMORY_LIMIT_ENV } from '../../src/cli/heap-cap';
import { repoRoot } from '../support/driver-client';
import { CHART_DIR, renderChart, type K8sObject } from './support/helm';
import { validateObject } from './support/k8s-schema';

// Extracting and running helm takes a moment on a small machine.
jest.setTimeout(60_000);

const PACKAGE_VERSION = (JSON.parse(readFileSync(join(repoRoot(), 'package.json'), 'utf8')) as { version: string }).version;
const CHART_NAME = 'csi-secrets-store-provider-azure';

interface Container {
  name: string;
  image: string;
  imagePullPolicy: string;
  args: string[];
  ports: Array<{ name: string; containerPort: number; protocol: string }>;
  livenessProbe: { httpGet: { path: string; port: number }; timeoutSeconds: number; periodSeconds: number; failureThreshold: number };
  resources: unknown;
  env?: Array<{ name: string; value?: string; valueFrom?: unknown }>;
  securityContext?: Record<string, unknown>;
  volumeMounts: Array<{ name: string; mountPath: string; readOnly?: boolean }>;
}

interface PodSpec {
  serviceAccountName: string;
  automountServiceAccountToken: boolean;
  hostNetwork?: boolean;
  dnsPolicy?: string;
  priorityClassName?: string;
  imagePullSecrets?: unknown;
  containers: Container[];
  volumes: Array<{ name: string; hostPath?: { path: string; type?: string }; [k: string]: unknown }>;
  nodeSelector: Record<string, string>;
  tolerations?: unknown;
  affinity?: unknown;
}

interface DaemonSetSpec {
  selector: { matchLabels: Record<string, string> };
  updateStrategy: unknown;
  template: { metadata: { labels: Record<string, string>; annotations?: Record<string, string> }; spec: PodSpec };
}

function find(objects: K8sObject[], kind: string, name: string): K8sObject {
  const found = objects.find((o) => o.kind === kind && o.metadata.name === name);
  if (!found) throw new Error(`no ${kind} ${name} in: ${objects.map((o) => `${o.kind}/${o.metadata.name}`).join(', ')}`);
  return found;
}

/** The cluster CA where a service account volume would put it, without the token (identity binding needs only it). */
const CLUSTER_CA_MOUNT = { name: 'cluster-ca', mountPath: '/var/run/secrets/kubernetes.io/serviceaccount', readOnly: true };
const CLUSTER_CA_VOLUME = {
  name: 'cluster-ca',
  projected: { sources: [{ configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } }] },
};

const daemonSet = (o: K8sObject): DaemonSetSpec => o['spec'] as DaemonSetSpec;
const container = (o: K8sObject): Container => daemonSet(o).template.spec.containers[0]!;
const driverValues = (objects: K8sObject[]): Record<string, unknown> =>
  JSON.parse((find(objects, 'ConfigMap', 'stand-in-secrets-store-csi-driver-values')['data'] as Record<string, string>)['values.json']!) as Record<string, unknown>;

describe('the chart with default values', () => {
  let objects: K8sObject[];
  beforeAll(async () => {
    ({ objects } = await renderChart());
  });

  it('renders the ServiceAccount, the Linux DaemonSet and the driver chart, and no Windows DaemonSet', () => {
    expect(objects.map((o) => `${o.apiVersion} ${o.kind} ${o.metadata.name}`).sort()).toEqual([
      'apps/v1 DaemonSet csi-secrets-store-provider-azure',
      'v1 ConfigMap stand-in-secrets-store-csi-driver-values',
      'v1 ServiceAccount csi-secrets-store-provider-azure',
    ]);
    for (const o of objects) expect(o.metadata.namespace).toBe('kube-system');
  });

  it('matches the Kubernetes schema, object by object', () => {
    for (const o of objects) validateObject(o);
  });

  it('runs the provider on every Linux node with the socket where the driver looks for it', () => {
    const ds = find(objects, 'DaemonSet', CHART_NAME);
    const spec = daemonSet(ds);
    const pod = spec.template.spec;
    expect(spec.selector.matchLabels).toEqual({ app: CHART_NAME });
    expect(spec.template.metadata.labels).toMatchObject(spec.selector.matchLabels);
    expect(ds.metadata.labels).toMatchObject({ app: CHART_NAME, 'app.kubernetes.io/version': PACKAGE_VERSION });
    expect(spec.updateStrategy).toEqual({ type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1 } });

    expect(pod.nodeSelector).toEqual({ 'kubernetes.io/os': 'linux' });
    expect(pod.tolerations).toEqual([{ operator: 'Exists' }]);
    expect(JSON.stringify(pod.affinity)).toContain('virtual-kubelet');
    expect(pod.hostNetwork).toBe(true);
    expect(pod.dnsPolicy).toBe('ClusterFirstWithHostNet');
    expect(pod.serviceAccountName).toBe(CHART_NAME);
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(pod.containers).toHaveLength(1);

    const c = container(ds);
    expect(c.name).toBe('provider-azure-installer');
    expect(c.image).toBe(`ghcr.io/csi-provider-azure/provider-azure:${PACKAGE_VERSION}`);
    expect(c.imagePullPolicy).toBe('IfNotPresent');
    expect(c.args).toEqual([
      '--endpoint=unix:///provider/azure.sock',
      '--construct-pem-chain=true',
      '--write-cert-and-key-in-separate-files=false',
      '--log-format-json=false',
      '-v=0',
      '--healthz-port=8989',
      '--healthz-path=/healthz',
      '--healthz-timeout=5s',
      '--metrics-backend=Prometheus',
      '--prometheus-port=8898',
    ]);
    expect(c.volumeMounts).toEqual([{ name: 'provider-vol', mountPath: '/provider' }, CLUSTER_CA_MOUNT]);
    expect(pod.volumes).toEqual([
      { name: 'provider-vol', hostPath: { path: '/var/run/secrets-store-csi-providers', type: 'DirectoryOrCreate' } },
      CLUSTER_CA_VOLUME,
    ]);
    expect(c.ports).toEqual([
      { name: 'healthz', containerPort: 8989, protocol: 'TCP' },
      { name: 'metrics', containerPort: 8898, protocol: 'TCP' },
    ]);
  });

  it('probes /healthz with more time than the provider takes to answer 503', () => {
    const c = container(find(objects, 'DaemonSet', CHART_NAME));
    expect(c.livenessProbe).toEqual({
      httpGet: { path: '/healthz', port: 8989 },
      initialDelaySeconds: 5,
      timeoutSeconds: 10,
      periodSeconds: 30,
      failureThreshold: 3,
    });
    expect(c.livenessProbe.timeoutSeconds).toBeGreaterThan(5); // --healthz-timeout=5s
  });

  it('runs with a read-only root, no capabilities and no privilege escalation', () => {
    expect(container(find(objects, 'DaemonSet', CHART_NAME)).securityContext).toEqual({
      runAsUser: 0,
      runAsGroup: 0,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(daemonSet(find(objects, 'DaemonSet', CHART_NAME)).template.spec).not.toHaveProperty('securityContext.privileged');
  });

  it('passes flags the provider itself accepts, with the meaning the values give them', () => {
    const parsed = parseCommandLine(container(find(objects, 'DaemonSet', CHART_NAME)).args);
    expect(parsed).toMatchObject({
      kind: 'run',
      ignoredFlags: [],
      config: {
        endpoint: { kind: 'unix', path: '/provider/azure.sock' },
        constructPemChain: true,
        writeCertAndKeyInSeparateFiles: false,
        healthz: { port: 8989, path: '/healthz', timeoutMs: 5000 },
        metricsBackend: 'Prometheus',
        prometheusPort: 8898,
        logFormatJson: false,
        verbosity: 0,
      },
    });
  });

  it('installs the driver looking in the same providers directory, with token requests for workload identity', () => {
    const driver = driverValues(objects);
    expect(driver).toMatchObject({
      install: true,
      fullnameOverride: 'secrets-store-csi-driver',
      linux: { enabled: true, providersDir: '/var/run/secrets-store-csi-providers' },
      windows: { enabled: false, providersDir: 'C:\\k\\secrets-store-csi-providers' },
      syncSecret: { enabled: false },
      enableSecretRotation: false,
      rotationPollInterval: '2m',
    });
    expect(driver['tokenRequests']).toEqual([{ audience: 'api://AzureADTokenExchange' }, { audience: 'api://AKSIdentityBinding' }]);
  });

  it('gives the ServiceAccount no token and grants it nothing', () => {
    expect(find(objects, 'ServiceAccount', CHART_NAME)['automountServiceAccountToken']).toBe(false);
    expect(objects.some((o) => /Role/.test(o.kind))).toBe(false);
  });
});

describe('the chart with Windows enabled', () => {
  let objects: K8sObject[];
  beforeAll(async () => {
    ({ objects } = await renderChart({ values: { windows: { enabled: true } } }));
  });

  it("adds a Windows DaemonSet next to the Linux one, with the reference chart's labels and selector", () => {
    // Selectors are immutable: "helm upgrade" over a reference install must find the same one, on both DaemonSets.
    const linux = daemonSet(find(objects, 'DaemonSet', CHART_NAME));
    const windows = daemonSet(find(objects, 'DaemonSet', `${CHART_NAME}-windows`));
    expect(windows.selector.matchLabels).toEqual({ app: CHART_NAME });
    expect(linux.selector.matchLabels).toEqual({ app: CHART_NAME });
    expect(windows.template.metadata.labels).toMatchObject({ app: CHART_NAME, 'app.kubernetes.io/name': CHART_NAME });
    expect(find(objects, 'DaemonSet', `${CHART_NAME}-windows`).metadata.labels).toMatchObject({ app: CHART_NAME });
    // The pods still never land on the other's nodes.
    expect(windows.template.spec.nodeSelector).toEqual({ 'kubernetes.io/os': 'windows' });
    expect(linux.template.spec.nodeSelector).toEqual({ 'kubernetes.io/os': 'linux' });
    for (const o of objects) validateObject(o);
  });

  it('uses the Windows providers directory and socket path, on Windows nodes only', () => {
    const ds = find(objects, 'DaemonSet', `${CHART_NAME}-windows`);
    const pod = daemonSet(ds).template.spec;
    const c = container(ds);
    expect(pod.nodeSelector).toEqual({ 'kubernetes.io/os': 'windows' });
    expect(pod.hostNetwork).toBeUndefined();
    expect(c.args[0]).toBe('--endpoint=unix://C:\\provider\\azure.sock');
    expect(c.volumeMounts).toEqual([{ name: 'provider-vol', mountPath: 'C:\\provider' }, CLUSTER_CA_MOUNT]);
    expect(pod.volumes).toEqual([
      { name: 'provider-vol', hostPath: { path: 'C:\\k\\secrets-store-csi-providers', type: 'DirectoryOrCreate' } },
      CLUSTER_CA_VOLUME,
    ]);
    expect(c.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 8989 });
    expect(c.image).toBe(`ghcr.io/csi-provider-azure/provider-azure:${PACKAGE_VERSION}`);
    // Linux security settings mean nothing to a Windows container and are rejected there.
    expect(c.securityContext).toBeUndefined();
    expect(parseCommandLine(c.args)).toMatchObject({ kind: 'run', config: { endpoint: { kind: 'unix', path: 'C:\\provider\\azure.sock' } } });
  });

  it("passes the container's own memory limit for the heap cap (Windows containers have no cgroup files)", async () => {
    const memoryLimitEnv = (o: K8sObject): Container['env'] => container(o).env?.filter((e) => e.name === MEMORY_LIMIT_ENV);
    const ref = { name: MEMORY_LIMIT_ENV, valueFrom: { resourceFieldRef: { containerName: 'provider-azure-installer', resource: 'limits.memory' } } };
    const ds = find(objects, 'DaemonSet', `${CHART_NAME}-windows`);
    expect(memoryLimitEnv(ds)).toEqual([ref]);
    expect(container(ds).name).toBe('provider-azure-installer');
    // The Linux pods read their cgroup instead.
    expect(memoryLimitEnv(find(objects, 'DaemonSet', CHART_NAME)) ?? []).toEqual([]);

    // What the kubelet puts there (the limit in bytes: divisor 1), through the entry point's derivation: 40%.
    const cap = async (values: Record<string, unknown>): Promise<string | undefined> => {
      const rendered = (await renderChart({ values })).objects;
      const windows = find(rendered, 'DaemonSet', `${CHART_NAME}-windows`);
      expect(memoryLimitEnv(windows)).toEqual([ref]);
      const limit = (container(windows).resources as { limits: { memory: string } }).limits.memory;
      const bytes = Number(/^(\d+)Mi$/.exec(limit)![1]) * 1024 * 1024;
      const argv = ['C:\\app\\node\\node.exe', 'C:\\app\\bin\\csi-provider-azure.js'];
      return heapCapArgv({ execArgv: [], nodeOptions: undefined, constrainedMemory: 0, memoryLimitEnv: String(bytes), totalMemory: 16 * 2 ** 30, execPath: argv[0]!, argv })?.[1];
    };
    expect(await cap({ windows: { enabled: true } })).toBe(
      `--max-old-space-size=${Math.floor(Number(/^(\d+)Mi$/.exec((container(ds).resources as { limits: { memory: string } }).limits.memory)![1]) * 0.4)}`,
    );
    // A changed limit changes the cap: nothing is baked into the image.
    expect(await cap({ windows: { enabled: true, resources: { limits: { cpu: '200m', memory: '512Mi' } } } })).toBe('--max-old-space-size=204');
  });
});

describe('the chart with every value changed', () => {
  const azureStackVolume = { name: 'cloud-env', hostPath: { path: '/etc/kubernetes/azurestackcloud.json', type: 'File' } };
  const azureStackMount = { name: 'cloud-env', mountPath: '/etc/kubernetes/azurestackcloud.json', readOnly: true };
  let objects: K8sObject[];
  beforeAll(async () => {
    ({ objects } = await renderChart({
      releaseName: 'kv',
      namespace: 'secrets',
      values: {
        imagePullSecrets: [{ name: 'registry-key' }],
        logFormatJSON: true,
        logVerbosity: 3,
        constructPEMChain: false,
        writeCertAndKeyInSeparateFiles: true,
        metricsAddr: ':9102',
        linux: {
          image: { repository: 'myregistry.azurecr.io/provider-azure', tag: 'v9.9.9', pullPolicy: 'Always' },
          nodeSelector: { agentpool: 'system' },
          tolerations: [{ key: 'CriticalAddonsOnly', operator: 'Exists' }],
          affinity: null,
          // Values merge into the defaults; null removes a default (here the CPU limit), as with any Helm chart.
          resources: { requests: { cpu: '10m', memory: '64Mi' }, limits: { cpu: null, memory: '128Mi' } },
          priorityClassName: 'system-node-critical',
          podLabels: { team: 'platform' },
          podAnnotations: { 'prometheus.io/scrape': 'true', 'prometheus.io/port': '9102' },
          updateStrategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: '20%' } },
          customUserAgent: 'contoso-aks/1.0',
          healthzPort: 9990,
          healthzPath: '/livez',
          healthzTimeout: '3s',
          volumes: [azureStackVolume],
          volumeMounts: [azureStackMount],
        },
        load: { maxFetchesPerMount: 8, maxRequestsPerVault: 32, credentialCacheSize: 0 },
        rbac: { install: false },
        'secrets-store-csi-driver': { syncSecret: { enabled: true }, enableSecretRotation: true, rotationPollInterval: '1m' },
      },
    }));
  });

  it('still matches the Kubernetes schema', () => {
    for (const o of objects) validateObject(o);
    expect(objects.some((o) => o.kind === 'ServiceAccount')).toBe(false);
  });

  it('passes every provider setting as a flag', () => {
    const c = container(find(objects, 'DaemonSet', 'kv-csi-secrets-store-provider-azure'));
    expect(c.args).toEqual([
      '--endpoint=unix:///provider/azure.sock',
      '--construct-pem-chain=false',
      '--write-cert-and-key-in-separate-files=true',
      '--log-format-json=true',
      '-v=3',
      '--healthz-port=9990',
      '--healthz-path=/livez',
      '--healthz-timeout=3s',
      '--metrics-backend=Prometheus',
      '--prometheus-port=9102',
      '--custom-user-agent=contoso-aks/1.0',
      '--max-fetches-per-mount=8',
      '--max-requests-per-vault=32',
      '--credential-cache-size=0',
    ]);
    expect(parseCommandLine(c.args)).toMatchObject({
      kind: 'run',
      config: {
        constructPemChain: false,
        writeCertAndKeyInSeparateFiles: true,
        logFormatJson: true,
        verbosity: 3,
        healthz: { port: 9990, path: '/livez', timeoutMs: 3000 },
        prometheusPort: 9102,
        customUserAgent: 'contoso-aks/1.0',
        maxFetchesPerMount: 8,
        maxRequestsPerVault: 32,
        credentialCacheSize: 0,
      },
    });
    expect(c.livenessProbe.httpGet).toEqual({ path: '/livez', port: 9990 });
    expect(c.ports.map((p) => p.containerPort)).toEqual([9990, 9102]);
  });

  it('applies image, scheduling, pod metadata, resources and extra volumes', () => {
    const ds = find(objects, 'DaemonSet', 'kv-csi-secrets-store-provider-azure');
    expect(ds.metadata.namespace).toBe('secrets');
    const spec = daemonSet(ds);
    const pod = spec.template.spec;
    const c = container(ds);
    expect(c.image).toBe('myregistry.azurecr.io/provider-azure:v9.9.9');
    expect(c.imagePullPolicy).toBe('Always');
    expect(pod.imagePullSecrets).toEqual([{ name: 'registry-key' }]);
    expect(pod.nodeSelector).toEqual({ 'kubernetes.io/os': 'linux', agentpool: 'system' });
    expect(pod.tolerations).toEqual([{ key: 'CriticalAddonsOnly', operator: 'Exists' }]);
    expect(pod.affinity).toBeUndefined();
    expect(pod.priorityClassName).toBe('system-node-critical');
    expect(c.resources).toEqual({ requests: { cpu: '10m', memory: '64Mi' }, limits: { memory: '128Mi' } });
    expect(spec.template.metadata.labels).toMatchObject({ app: CHART_NAME, team: 'platform' });
    expect(spec.template.metadata.annotations).toEqual({ 'prometheus.io/scrape': 'true', 'prometheus.io/port': '9102' });
    expect(spec.updateStrategy).toEqual({ type: 'RollingUpdate', rollingUpdate: { maxUnavailable: '20%' } });
    expect(c.volumeMounts).toEqual([{ name: 'provider-vol', mountPath: '/provider' }, CLUSTER_CA_MOUNT, azureStackMount]);
    expect(pod.volumes).toEqual([
      { name: 'provider-vol', hostPath: { path: '/var/run/secrets-store-csi-providers', type: 'DirectoryOrCreate' } },
      CLUSTER_CA_VOLUME,
      azureStackVolume,
    ]);
    // Still the established ServiceAccount name, which the cluster must then provide.
    expect(pod.serviceAccountName).toBe(CHART_NAME);
  });

  it('passes the sync and rotation switches to the driver chart', () => {
    expect(driverValues(objects)).toMatchObject({ syncSecret: { enabled: true }, enableSecretRotation: true, rotationPollInterval: '1m' });
  });

  it('leaves the driver out when secrets-store-csi-driver.install is false', async () => {
    const { objects: withoutDriver, manifest } = await renderChart({ values: { 'secrets-store-csi-driver': { install: false } } });
    expect(withoutDriver.some((o) => o.kind === 'ConfigMap')).toBe(false);
    expect(withoutDriver.map((o) => o.kind).sort()).toEqual(['DaemonSet', 'ServiceAccount']);
    expect(manifest).not.toContain('stand-in');
  });
});

describe('Chart.yaml', () => {
  const chart = parse(readFileSync(join(CHART_DIR, 'Chart.yaml'), 'utf8')) as {
    apiVersion: string;
    name: string;
    version: string;
    appVersion: string;
    dependencies: Array<{ name: string; condition: string; repository: string }>;
  };

  it('is released with the provider version and depends on the driver chart behind the install switch', () => {
    expect(chart).toMatchObject({ apiVersion: 'v2', name: CHART_NAME, version: PACKAGE_VERSION, appVersion: PACKAGE_VERSION });
    expect(chart.dependencies).toEqual([
      expect.objectContaining({
        name: 'secrets-store-csi-driver',
        condition: 'secrets-store-csi-driver.install',
        repository: 'https://kubernetes-sigs.github.io/secrets-store-csi-driver/charts',
      }),
    ]);
  });
});

describe('the chart with the Azure Stack Hub cloud file and listen addresses (issue 14)', () => {
  let objects: K8sObject[];
  beforeAll(async () => {
    ({ objects } = await renderChart({
      values: {
        prometheusAddress: '10.0.0.4',
        linux: { cloudEnvFile: '/etc/kubernetes/azurestackcloud.json', cloudEnvFileDir: '/etc/cloud-env', healthzAddress: '127.0.0.1' },
      },
    }));
  });

  it('passes --healthz-address, --prometheus-address and --cloud-env-file-dir, and mounts the host file into that directory', () => {
    for (const o of objects) validateObject(o);
    const ds = find(objects, 'DaemonSet', CHART_NAME);
    const c = container(ds);
    expect(c.args).toEqual(expect.arrayContaining(['--healthz-address=127.0.0.1', '--prometheus-address=10.0.0.4', '--cloud-env-file-dir=/etc/cloud-env']));
    expect(parseCommandLine(c.args)).toMatchObject({
      kind: 'run',
      config: { healthz: { address: '127.0.0.1' }, prometheusAddress: '10.0.0.4', cloudEnvFileDir: '/etc/cloud-env' },
    });
    expect(c.volumeMounts).toContainEqual({ name: 'cloud-env-file', mountPath: '/etc/cloud-env/azurestackcloud.json', readOnly: true });
    expect(daemonSet(ds).template.spec.volumes).toContainEqual({
      name: 'cloud-env-file',
      hostPath: { path: '/etc/kubernetes/azurestackcloud.json', type: 'File' },
    });
  });
});
