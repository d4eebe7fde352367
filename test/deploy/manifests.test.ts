/**
 * The plain manifests in deploy/ must equal the chart's defaults, and every example in examples/ must be a valid
 * Kubernetes object whose SecretProviderClass the provider accepts (its own parser, the same code a mount runs).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parseMountParameters } from '../../src/mount/parameters';
import type { IdentitySpec } from '../../src/spec/types';
import { repoRoot } from '../support/driver-client';
import { parse } from 'yaml';
import { CHART_DIR, parseManifests, renderChart, type K8sObject } from './support/helm';
import { checkSecretProviderClass, validateObject } from './support/k8s-schema';

jest.setTimeout(60_000);

const ROOT = repoRoot();

/** What only Helm adds: the release bookkeeping labels and the release namespace. */
function withoutHelmBookkeeping(object: K8sObject): K8sObject {
  const copy = structuredClone(object);
  const strip = (labels?: Record<string, string>): void => {
    if (!labels) return;
    for (const key of ['app.kubernetes.io/instance', 'app.kubernetes.io/managed-by', 'helm.sh/chart']) delete labels[key];
  };
  delete copy.metadata.namespace;
  strip(copy.metadata.labels);
  const template = (copy['spec'] as { template?: { metadata?: { labels?: Record<string, string> } } } | undefined)?.template;
  strip(template?.metadata?.labels);
  return copy;
}

function readManifests(path: string): K8sObject[] {
  return parseManifests(readFileSync(path, 'utf8'));
}

describe('deploy/', () => {
  it('provider-azure-installer.yaml equals the chart with its default values (without the driver)', async () => {
    const { objects } = await renderChart();
    const fromChart = objects.filter((o) => o.kind !== 'ConfigMap').map(withoutHelmBookkeeping);
    const plain = readManifests(join(ROOT, 'deploy', 'provider-azure-installer.yaml'));
    expect(plain).toEqual(fromChart);
  });

  it('provider-azure-installer-windows.yaml equals the chart with windows.enabled', async () => {
    const { objects } = await renderChart({ values: { windows: { enabled: true } } });
    const fromChart = objects.filter((o) => o.kind === 'DaemonSet' && o.metadata.name.endsWith('-windows')).map(withoutHelmBookkeeping);
    expect(readManifests(join(ROOT, 'deploy', 'provider-azure-installer-windows.yaml'))).toEqual(fromChart);
  });

  it('matches the Kubernetes schema', () => {
    for (const file of ['provider-azure-installer.yaml', 'provider-azure-installer-windows.yaml']) {
      for (const o of readManifests(join(ROOT, 'deploy', file))) validateObject(o);
    }
  });
});

function yamlFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return yamlFiles(path);
    return /\.ya?ml$/.test(entry.name) ? [path] : [];
  });
}

interface PodLike {
  serviceAccountName?: string;
  volumes?: Array<{ name: string; csi?: { driver: string; readOnly?: boolean; volumeAttributes?: Record<string, string>; nodePublishSecretRef?: { name: string } } }>;
}

function podSpecOf(object: K8sObject): PodLike | undefined {
  if (object.kind === 'Pod') return object['spec'] as PodLike;
  if (object.kind === 'Deployment') return (object['spec'] as { template: { spec: PodLike } }).template.spec;
  return undefined;
}

/** The identity mode each example file is about; the object and sync examples use a user-assigned identity. */
const EXPECTED_MODE: Record<string, IdentitySpec['mode']> = {
  'identity/system-assigned-managed-identity.yaml': 'vmManagedIdentity',
  'identity/user-assigned-managed-identity.yaml': 'vmManagedIdentity',
  'identity/workload-identity.yaml': 'workloadIdentity',
  'identity/service-principal.yaml': 'servicePrincipal',
  'identity/pod-identity.yaml': 'podIdentity',
  'identity/token-proxy.yaml': 'tokenProxy',
};

describe('examples/', () => {
  const dir = join(ROOT, 'examples');
  const files = yamlFiles(dir).map((path) => ({ name: relative(dir, path).split('\\').join('/'), objects: readManifests(path) }));

  it('cover every identity mode, every object kind, both kinds of synced Secret and version history', () => {
    const modes = new Set<string>();
    const kinds = new Set<string>();
    const syncedTypes = new Set<string>();
    let versionHistory = false;
    for (const file of files) {
      for (const o of file.objects.filter((x) => x.kind === 'SecretProviderClass')) {
        const spec = checkSecretProviderClass(o);
        const mount = parseMountParameters(driverAttributes(file.objects, o), secretsFor(file.objects, o), { cloudName: 'AzurePublicCloud' });
        modes.add(mount.identity.mode);
        for (const object of mount.objects) {
          kinds.add(object.type);
          if (object.versionHistory > 1) versionHistory = true;
        }
        for (const s of spec.secretObjects ?? []) syncedTypes.add(s.type);
      }
    }
    expect([...modes].sort()).toEqual(['podIdentity', 'servicePrincipal', 'tokenProxy', 'vmManagedIdentity', 'workloadIdentity']);
    expect([...kinds].sort()).toEqual(['cert', 'key', 'secret']);
    expect([...syncedTypes].sort()).toEqual(['Opaque', 'kubernetes.io/tls']);
    expect(versionHistory).toBe(true);
  });

  it.each(yamlFiles(join(ROOT, 'examples')).map((p) => relative(join(ROOT, 'examples'), p).split('\\').join('/')))('%s', (name) => {
    const { objects } = files.find((f) => f.name === name)!;
    for (const o of objects) validateObject(o);

    const classes = objects.filter((o) => o.kind === 'SecretProviderClass');
    expect(classes.length).toBeGreaterThan(0);
    for (const spc of classes) {
      const spec = checkSecretProviderClass(spc);
      expect(spec.provider).toBe('azure');
      // The provider's own validation, as on a mount: any error here would fail the pod's mount.
      const mount = parseMountParameters(driverAttributes(objects, spc), secretsFor(objects, spc), { cloudName: 'AzurePublicCloud' });
      expect(mount.warnings).toEqual([]);
      expect(mount.identity.mode).toBe(EXPECTED_MODE[name] ?? 'vmManagedIdentity');
      // Synced Secrets take their data from files of this mount.
      const files = new Set(mount.objects.map((o) => o.fileName));
      for (const s of spec.secretObjects ?? []) for (const d of s.data) expect(files).toContain(d.objectName);

      // Something mounts the class (a synced Secret only exists while a pod mounts it), in the same namespace.
      const users = objects.filter((o) => podSpecOf(o)?.volumes?.some((v) => v.csi?.volumeAttributes?.['secretProviderClass'] === spc.metadata.name));
      expect(users.length).toBeGreaterThan(0);
      for (const user of users) {
        expect(user.metadata.namespace).toBe(spc.metadata.namespace);
        for (const v of podSpecOf(user)!.volumes!.filter((x) => x.csi)) expect(v.csi).toMatchObject({ driver: 'secrets-store.csi.k8s.io', readOnly: true });
      }
    }
    // Service accounts and nodePublishSecretRef Secrets the pods name are part of the example.
    for (const o of objects) {
      const pod = podSpecOf(o);
      if (pod?.serviceAccountName) expect(objects.some((x) => x.kind === 'ServiceAccount' && x.metadata.name === pod.serviceAccountName)).toBe(true);
      for (const v of pod?.volumes ?? []) {
        const ref = v.csi?.nodePublishSecretRef?.name;
        if (ref) expect(objects.some((x) => x.kind === 'Secret' && x.metadata.name === ref)).toBe(true);
      }
    }
  });
});

/** The audiences the chart's CSIDriver requests service account tokens for, by default. */
const TOKEN_AUDIENCES = (
  parse(readFileSync(join(CHART_DIR, 'values.yaml'), 'utf8')) as { 'secrets-store-csi-driver': { tokenRequests: Array<{ audience: string }> } }
)['secrets-store-csi-driver'].tokenRequests.map((r) => r.audience);

/**
 * The attributes the driver sends when the first pod of the example that uses the class mounts it: the class's
 * parameters, the pod's identity, and a token for each audience the chart's default tokenRequests name.
 */
function driverAttributes(objects: K8sObject[], spc: K8sObject): Record<string, string> {
  const { parameters } = checkSecretProviderClass(spc);
  const user = objects.find((o) => podSpecOf(o)?.volumes?.some((v) => v.csi?.volumeAttributes?.['secretProviderClass'] === spc.metadata.name));
  const expirationTimestamp = new Date(Date.now() + 3600_000).toISOString();
  const tokens = Object.fromEntries(TOKEN_AUDIENCES.map((audience) => [audience, { token: `header.payload-for-${audience}.signature`, expirationTimestamp }]));
  return {
    ...parameters,
    'csi.storage.k8s.io/pod.name': user?.metadata.name ?? 'example',
    'csi.storage.k8s.io/pod.namespace': user?.metadata.namespace ?? 'default',
    'csi.storage.k8s.io/serviceAccount.name': (user && podSpecOf(user)?.serviceAccountName) || 'default',
    'csi.storage.k8s.io/serviceAccount.tokens': JSON.stringify(tokens),
    secretProviderClass: spc.metadata.name,
  };
}

/** The nodePublishSecretRef data a pod using this class would send (service principal examples). */
function secretsFor(objects: K8sObject[], spc: K8sObject): Record<string, string> {
  for (const o of objects) {
    for (const v of podSpecOf(o)?.volumes ?? []) {
      if (v.csi?.volumeAttributes?.['secretProviderClass'] !== spc.metadata.name || !v.csi.nodePublishSecretRef) continue;
      const secret = objects.find((x) => x.kind === 'Secret' && x.metadata.name === v.csi!.nodePublishSecretRef!.name);
      return (secret?.['stringData'] as Record<string, string> | undefined) ?? {};
    }
  }
  return {};
}
