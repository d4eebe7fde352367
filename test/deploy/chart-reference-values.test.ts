/**
 * An operator of the reference Go provider (chart v1.8.2) brings their values: every key of that chart must either
 * take effect here or fail the install with a reason, never be dropped silently. REFERENCE_VALUES is that chart's
 * default values, key by key (restated here as data; the docs' installs below use its documented --set lines).
 * values.schema.json refuses anything else, so a typo fails `helm install` and `helm lint`.
 */
import { parseCommandLine } from '../../src/cli/flags';
import { lintChart, renderChart, renderChartError, type K8sObject } from './support/helm';
import { validateObject } from './support/k8s-schema';

jest.setTimeout(90_000);

const NAME = 'csi-secrets-store-provider-azure';
const MCR = 'mcr.microsoft.com/oss/v2';

const driverImages = (windows: boolean): Record<string, unknown> => ({
  enabled: windows ? false : true,
  kubeletRootDir: windows ? 'C:\\var\\lib\\kubelet' : '/var/lib/kubelet',
  metricsAddr: ':8080',
  priorityClassName: '',
  image: { repository: `${MCR}/kubernetes-csi/secrets-store/driver`, tag: 'v1.5.6', pullPolicy: 'IfNotPresent' },
  registrarImage: { repository: `${MCR}/kubernetes-csi/csi-node-driver-registrar`, tag: 'v2.14.0', pullPolicy: 'IfNotPresent' },
  livenessProbeImage: { repository: `${MCR}/kubernetes-csi/livenessprobe`, tag: 'v2.15.0', pullPolicy: 'IfNotPresent' },
  ...(windows
    ? {}
    : { crds: { image: { repository: `${MCR}/kubernetes-csi/secrets-store/driver-crds`, tag: 'v1.5.6', pullPolicy: 'IfNotPresent' } } }),
  providersDir: windows ? 'C:\\k\\secrets-store-csi-providers' : '/var/run/secrets-store-csi-providers',
});

const osValues = (windows: boolean): Record<string, unknown> => ({
  image: { repository: `${MCR}/azure/secrets-store/provider-azure`, tag: 'v1.8.2', pullPolicy: 'IfNotPresent' },
  nodeSelector: {},
  tolerations: [{ operator: 'Exists' }],
  enabled: !windows,
  resources: windows
    ? { requests: { cpu: '100m', memory: '200Mi' }, limits: { cpu: '100m', memory: '200Mi' } }
    : { requests: { cpu: '50m', memory: '100Mi' }, limits: { cpu: '50m', memory: '100Mi' } },
  podLabels: {},
  podAnnotations: {},
  priorityClassName: '',
  updateStrategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1 } },
  ...(windows ? {} : { privileged: false }),
  customUserAgent: '',
  healthzPort: 8989,
  healthzPath: '/healthz',
  healthzTimeout: '5s',
  volumes: [],
  volumeMounts: [],
  kubeletRootDir: windows ? 'C:\\var\\lib\\kubelet' : '/var/lib/kubelet',
  providersDir: windows ? 'C:\\k\\secrets-store-csi-providers' : '/var/run/secrets-store-csi-providers',
  affinity: {
    nodeAffinity: {
      requiredDuringSchedulingIgnoredDuringExecution: {
        nodeSelectorTerms: [{ matchExpressions: [{ key: 'type', operator: 'NotIn', values: ['virtual-kubelet'] }] }],
      },
    },
  },
  ...(windows ? {} : { dnsPolicy: 'ClusterFirstWithHostNet' }),
});

/** The reference chart v1.8.2's values.yaml, every key with its default. */
const REFERENCE_VALUES: Record<string, unknown> = {
  nameOverride: '',
  fullnameOverride: '',
  imagePullSecrets: [],
  logFormatJSON: false,
  logVerbosity: 0,
  enableArcExtension: false,
  linux: osValues(false),
  windows: osValues(true),
  'secrets-store-csi-driver': {
    install: true,
    fullnameOverride: 'secrets-store-csi-driver',
    linux: driverImages(false),
    windows: driverImages(true),
    enableSecretRotation: false,
    rotationPollInterval: '2m',
    filteredWatchSecret: true,
    syncSecret: { enabled: false },
    tokenRequests: [{ audience: 'api://AzureADTokenExchange' }, { audience: 'api://AKSIdentityBinding' }],
  },
  rbac: { install: true, pspEnabled: false },
  constructPEMChain: true,
  writeCertAndKeyInSeparateFiles: false,
  metricsAddr: '8898',
};

interface Container {
  image: string;
  args: string[];
  securityContext?: Record<string, unknown>;
  volumeMounts: Array<{ name: string; mountPath: string; subPath?: string; readOnly?: boolean }>;
  resources: unknown;
}
interface DaemonSetSpec {
  selector: { matchLabels: Record<string, string> };
  template: {
    metadata: { labels: Record<string, string> };
    spec: { containers: Container[]; volumes: Array<Record<string, unknown>>; automountServiceAccountToken?: boolean };
  };
}

function find(objects: K8sObject[], kind: string, name: string): K8sObject {
  const found = objects.find((o) => o.kind === kind && o.metadata.name === name);
  if (!found) throw new Error(`no ${kind} ${name} in: ${objects.map((o) => `${o.kind}/${o.metadata.name}`).join(', ')}`);
  return found;
}
const spec = (o: K8sObject): DaemonSetSpec => o['spec'] as DaemonSetSpec;
const container = (o: K8sObject): Container => spec(o).template.spec.containers[0]!;
const driverValues = (objects: K8sObject[]): Record<string, unknown> =>
  JSON.parse((find(objects, 'ConfigMap', 'stand-in-secrets-store-csi-driver-values')['data'] as Record<string, string>)['values.json']!) as Record<
    string,
    unknown
  >;

describe("the reference chart's values file", () => {
  let objects: K8sObject[];
  beforeAll(async () => {
    ({ objects } = await renderChart({ values: REFERENCE_VALUES }));
  });

  it('is accepted key by key, and renders valid objects', () => {
    for (const o of objects) validateObject(o);
    expect(objects.map((o) => `${o.kind}/${o.metadata.name}`).sort()).toEqual([
      `ConfigMap/stand-in-secrets-store-csi-driver-values`,
      `DaemonSet/${NAME}`,
      `ServiceAccount/${NAME}`,
    ]);
  });

  it('takes effect: image, resources, health and flags', () => {
    const c = container(find(objects, 'DaemonSet', NAME));
    expect(c.image).toBe(`${MCR}/azure/secrets-store/provider-azure:v1.8.2`);
    expect(c.resources).toEqual({ requests: { cpu: '50m', memory: '100Mi' }, limits: { cpu: '50m', memory: '100Mi' } });
    expect(parseCommandLine(c.args)).toMatchObject({
      kind: 'run',
      config: { constructPemChain: true, healthz: { port: 8989, path: '/healthz', timeoutMs: 5000 }, prometheusPort: 8898 },
    });
  });

  it("keeps the reference's selector, so helm upgrade over a reference install is possible", () => {
    expect(spec(find(objects, 'DaemonSet', NAME)).selector.matchLabels).toEqual({ app: NAME });
  });

  it("passes the driver chart the reference's images (MCR), versions and metrics address", () => {
    const driver = driverValues(objects);
    expect(driver).toMatchObject({ linux: driverImages(false), windows: driverImages(true), filteredWatchSecret: true });
  });
});

describe('our defaults pin the driver chart as the reference does', () => {
  it('MCR images, registrar v2.14.0, liveness probe v2.15.0, driver v1.5.6, metrics on :8080', async () => {
    const { objects } = await renderChart();
    expect(driverValues(objects)).toMatchObject({ linux: driverImages(false), windows: driverImages(true), filteredWatchSecret: true });
  });
});

describe("the reference's documented installs", () => {
  it('ARO / OpenShift: --set linux.privileged=true runs the container privileged', async () => {
    const { objects } = await renderChart({ set: ['linux.privileged=true'] });
    const ds = find(objects, 'DaemonSet', NAME);
    validateObject(ds);
    const sc = container(ds).securityContext!;
    expect(sc['privileged']).toBe(true);
    // Kubernetes refuses allowPrivilegeEscalation: false beside privileged: true.
    expect(sc).not.toHaveProperty('allowPrivilegeEscalation');
    expect(sc).toMatchObject({ readOnlyRootFilesystem: true, runAsUser: 0 });
  });

  it('custom cloud: the environment file and CA directory mounted through linux.volumes / linux.volumeMounts', async () => {
    const volumes = [
      { name: 'cloudenvfile-vol', hostPath: { path: '/etc/kubernetes' } },
      { name: 'sslcerts', hostPath: { path: '/etc/ssl/certs' } },
    ];
    const volumeMounts = [
      { name: 'cloudenvfile-vol', mountPath: '/cloudEnv/myCustomEnvironmentFile.json', subPath: 'myCustomEnvironmentFile.json' },
      { name: 'sslcerts', mountPath: '/etc/ssl/certs', readOnly: true },
    ];
    const { objects } = await renderChart({ values: { linux: { volumes, volumeMounts } } });
    const ds = find(objects, 'DaemonSet', NAME);
    validateObject(ds);
    expect(container(ds).volumeMounts).toEqual(expect.arrayContaining(volumeMounts));
    expect(spec(ds).template.spec.volumes).toEqual(expect.arrayContaining(volumes));
  });

  it('rotation and sync: the driver switches reach the driver chart', async () => {
    const { objects } = await renderChart({
      set: [
        'secrets-store-csi-driver.syncSecret.enabled=true',
        'secrets-store-csi-driver.enableSecretRotation=true',
        'secrets-store-csi-driver.rotationPollInterval=2m',
      ],
    });
    expect(driverValues(objects)).toMatchObject({ syncSecret: { enabled: true }, enableSecretRotation: true, rotationPollInterval: '2m' });
  });

  it("Windows: both DaemonSets with the reference's selector; the driver's Windows pods too", async () => {
    const { objects } = await renderChart({ set: ['windows.enabled=true', 'secrets-store-csi-driver.windows.enabled=true'] });
    const win = find(objects, 'DaemonSet', `${NAME}-windows`);
    validateObject(win);
    expect(spec(win).selector.matchLabels).toEqual({ app: NAME });
    expect(spec(win).template.metadata.labels).toMatchObject({ app: NAME });
    expect(driverValues(objects)).toMatchObject({ windows: { enabled: true } });
  });

  it('identity binding: the cluster CA is mounted (no token) and the proxy flags are values', async () => {
    const { objects } = await renderChart({
      values: { identityBinding: { tokenProxyURL: 'https://proxy.example:8443', sniName: 'abc.ests.aks' }, windows: { enabled: true } },
    });
    for (const name of [NAME, `${NAME}-windows`]) {
      const ds = find(objects, 'DaemonSet', name);
      const c = container(ds);
      expect(c.args).toEqual(expect.arrayContaining(['--token-proxy-url=https://proxy.example:8443', '--sni-name=abc.ests.aks']));
      expect(parseCommandLine(c.args)).toMatchObject({ kind: 'run', config: { tokenProxyUrl: 'https://proxy.example:8443', sniName: 'abc.ests.aks' } });
      expect(c.volumeMounts).toContainEqual({ name: 'cluster-ca', mountPath: '/var/run/secrets/kubernetes.io/serviceaccount', readOnly: true });
      expect(spec(ds).template.spec.automountServiceAccountToken).toBe(false);
    }
  });

  it('extraArgs: flags the chart has no value for, after its own', async () => {
    const { objects } = await renderChart({ values: { linux: { extraArgs: ['--drain-timeout=40s', '--cloud-name=AzureChinaCloud'] } } });
    const args = container(find(objects, 'DaemonSet', NAME)).args;
    expect(args.slice(-2)).toEqual(['--drain-timeout=40s', '--cloud-name=AzureChinaCloud']);
    expect(parseCommandLine(args)).toMatchObject({ kind: 'run', config: { drainTimeoutMs: 40_000, cloudName: 'AzureChinaCloud' } });
  });

  it('kubeletRootDir is accepted and, as in the reference chart, changes nothing of the provider', async () => {
    const [withIt, without] = await Promise.all([
      renderChart({ set: ['linux.kubeletRootDir=/var/lib/k0s/kubelet'] }),
      renderChart(),
    ]);
    expect(withIt.objects.filter((o) => o.kind === 'DaemonSet')).toEqual(without.objects.filter((o) => o.kind === 'DaemonSet'));
  });
});

describe('rbac.pspEnabled', () => {
  it('renders a PodSecurityPolicy, Role and RoleBinding where the cluster serves policy/v1beta1', async () => {
    const { objects } = await renderChart({ set: ['rbac.pspEnabled=true'], kubeVersion: '1.24.0', apiVersions: ['policy/v1beta1/PodSecurityPolicy'] });
    const psp = find(objects, 'PodSecurityPolicy', `${NAME}-psp`);
    for (const o of objects) validateObject(o);
    expect(psp['spec']).toMatchObject({ privileged: false, hostNetwork: true, volumes: expect.arrayContaining(['hostPath', 'projected']) });
    expect(find(objects, 'RoleBinding', `${NAME}-psp`)['subjects']).toEqual([{ kind: 'ServiceAccount', name: NAME, namespace: 'kube-system' }]);
    expect(find(objects, 'Role', `${NAME}-psp`)['rules']).toEqual([
      { apiGroups: ['policy'], resources: ['podsecuritypolicies'], verbs: ['use'], resourceNames: [`${NAME}-psp`] },
    ]);
  });

  it('allows privileged pods in the policy when linux.privileged is set', async () => {
    const { objects } = await renderChart({
      set: ['rbac.pspEnabled=true', 'linux.privileged=true'],
      kubeVersion: '1.24.0',
      apiVersions: ['policy/v1beta1/PodSecurityPolicy'],
    });
    expect(find(objects, 'PodSecurityPolicy', `${NAME}-psp`)['spec']).toMatchObject({ privileged: true, allowPrivilegeEscalation: true });
  });

  it('renders nothing more where PodSecurityPolicy no longer exists (Kubernetes 1.25+)', async () => {
    const { objects } = await renderChart({ set: ['rbac.pspEnabled=true'] });
    expect(objects.some((o) => /PodSecurityPolicy|Role/.test(o.kind))).toBe(false);
  });
});

describe('values the chart refuses', () => {
  it('an unknown or mistyped key fails helm template, naming it', async () => {
    expect(await renderChartError({ set: ['linux.privilegd=true'] })).toMatch(/privilegd/);
    expect(await renderChartError({ set: ['logVerbosty=2'] })).toMatch(/logVerbosty/);
    expect(await renderChartError({ values: { linux: { healthzPort: 'eighty' } } })).toMatch(/healthzPort/);
    expect(await renderChartError({ values: { logVerbosity: 'high' } })).toMatch(/logVerbosity/);
  });

  it('an unknown key fails helm lint', async () => {
    const lint = await lintChart({ set: ['windows.enabeld=true'] });
    expect(lint.ok).toBe(false);
    expect(lint.output).toMatch(/enabeld/);
    expect((await lintChart()).ok).toBe(true);
  });

  it('enableArcExtension fails with what to do instead', async () => {
    const error = await renderChartError({ set: ['enableArcExtension=true'] });
    expect(error).toMatch(/enableArcExtension/);
    expect(error).toMatch(/k8s-extension/);
  });

  it('keys of the driver chart are left to the driver chart', async () => {
    const { objects } = await renderChart({ set: ['secrets-store-csi-driver.linux.driver.resources.limits.memory=300Mi'] });
    expect(driverValues(objects)).toMatchObject({ linux: { driver: { resources: { limits: { memory: '300Mi' } } } } });
  });
});
