/**
 * Renders the chart with a real Helm: the helm binary that @aws-cdk/asset-kubectl-v20 ships inside its Lambda layer
 * archive (Helm 3.8.1, linux/amd64), taken out once into node_modules/.cache. HELM_BIN overrides it (another Helm, or
 * another platform). The chart's driver dependency cannot be downloaded here, so a stand-in with the same name and
 * version is put in charts/: it renders one ConfigMap holding the values the driver chart would receive. (How an
 * operator gets the real one, `helm dependency build`, is exercised by readme-install.test.ts.)
 */
import { execFile } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { repoRoot } from '../../support/driver-client';
import { readZipEntry } from './zip';

const run = promisify(execFile);

export const CHART_DIR = join(repoRoot(), 'charts', 'csi-secrets-store-provider-azure');
const STAND_IN_DRIVER_CHART = join(__dirname, '..', 'fixtures', 'secrets-store-csi-driver');
/** A current AKS version, so version-dependent templates render as they would there. */
export const KUBE_VERSION = '1.33.0';

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

let cachedBinary: string | undefined;

/** The path of a runnable helm, extracting the packaged one on first use. */
export function helmBinary(): string {
  if (process.env['HELM_BIN']) return process.env['HELM_BIN'];
  if (cachedBinary) return cachedBinary;
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new Error(`the packaged helm is linux/amd64; on ${process.platform}/${process.arch} set HELM_BIN to a helm 3 binary`);
  }
  const pkg = dirname(require.resolve('@aws-cdk/asset-kubectl-v20/package.json'));
  const version = (require('@aws-cdk/asset-kubectl-v20/package.json') as { version: string }).version;
  const target = join(repoRoot(), 'node_modules', '.cache', 'csi-provider-azure', `helm-asset-kubectl-v20-${version}`, 'helm');
  if (!existsSync(target)) {
    mkdirSync(dirname(target), { recursive: true });
    // Write then rename: Jest workers may extract at the same time, and a half-written binary must never be run.
    const partial = `${target}.${process.pid}.partial`;
    writeFileSync(partial, readZipEntry(join(pkg, 'lib', 'layer.zip'), 'helm/helm'));
    chmodSync(partial, 0o755);
    renameSync(partial, target);
  }
  return (cachedBinary = target);
}

export interface RenderOptions {
  releaseName?: string;
  namespace?: string;
  /** Values as a `-f` file would give them. */
  values?: Record<string, unknown>;
  /** `--set` arguments, as an operator types them after `--set`. */
  set?: string[];
  /** `--api-versions` the cluster is said to serve (e.g. policy/v1beta1/PodSecurityPolicy). */
  apiVersions?: string[];
  /** Default KUBE_VERSION. */
  kubeVersion?: string;
}

export interface Rendered {
  objects: K8sObject[];
  /** The raw `helm template` output. */
  manifest: string;
}

/** `helm template` of a copy of the chart (with the stand-in driver chart), parsed into objects. */
export async function renderChart(options: RenderOptions = {}): Promise<Rendered> {
  return withChartCopy(async (chart, work) => {
    const { stdout } = await runHelm(work, templateArgs(chart, work, options));
    return { objects: parseManifests(stdout), manifest: stdout };
  });
}

/** The error Helm reports when it refuses to render (e.g. a value the schema rejects); fails if Helm renders. */
export async function renderChartError(options: RenderOptions = {}): Promise<string> {
  return withChartCopy(async (chart, work) => {
    try {
      await runHelm(work, templateArgs(chart, work, options));
    } catch (err) {
      return (err as { stderr?: string }).stderr ?? String(err);
    }
    throw new Error('helm rendered the chart, expected it to refuse');
  });
}

/** `helm lint --strict` of a copy of the chart with these values: its output, and whether it passed. */
export async function lintChart(options: RenderOptions = {}): Promise<{ ok: boolean; output: string }> {
  return withChartCopy(async (chart, work) => {
    const args = ['lint', '--strict', chart, ...valueArgs(work, options)];
    try {
      const { stdout } = await runHelm(work, args);
      return { ok: true, output: stdout };
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string };
      return { ok: false, output: `${e.stdout ?? ''}${e.stderr ?? ''}` };
    }
  });
}

async function withChartCopy<T>(body: (chart: string, work: string) => Promise<T>): Promise<T> {
  const work = mkdtempSync(join(tmpdir(), 'csi-chart-'));
  try {
    const chart = join(work, 'chart');
    cpSync(CHART_DIR, chart, { recursive: true });
    rmSync(join(chart, 'charts'), { recursive: true, force: true });
    cpSync(STAND_IN_DRIVER_CHART, join(chart, 'charts', 'secrets-store-csi-driver'), { recursive: true });
    return await body(chart, work);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

function valueArgs(work: string, options: RenderOptions): string[] {
  const valuesFile = join(work, 'values.json');
  writeFileSync(valuesFile, JSON.stringify(options.values ?? {}));
  return ['--values', valuesFile, ...(options.set ?? []).flatMap((s) => ['--set', s])];
}

function templateArgs(chart: string, work: string, options: RenderOptions): string[] {
  return [
    'template',
    options.releaseName ?? 'csi-secrets-store-provider-azure',
    chart,
    '--namespace',
    options.namespace ?? 'kube-system',
    '--kube-version',
    options.kubeVersion ?? KUBE_VERSION,
    ...(options.apiVersions ?? []).flatMap((v) => ['--api-versions', v]),
    ...valueArgs(work, options),
  ];
}

/** Runs helm with its own state (repositories, cache) in the work dir, never the user's home. */
export async function runHelm(work: string, args: string[], env: Record<string, string> = {}): Promise<{ stdout: string; stderr: string }> {
  return run(helmBinary(), args, {
    env: {
      PATH: process.env['PATH'] ?? '/usr/bin:/bin',
      HELM_CACHE_HOME: join(work, 'cache'),
      HELM_CONFIG_HOME: join(work, 'config'),
      HELM_DATA_HOME: join(work, 'data'),
      ...env,
    },
    maxBuffer: 16 * 1024 * 1024,
  });
}

/** Every YAML document of a multi-document text that is not empty, failing on any YAML error or warning. */
export function parseManifests(text: string): K8sObject[] {
  const objects: K8sObject[] = [];
  for (const doc of parseAllDocuments(text, { uniqueKeys: true, strict: true })) {
    if (doc.errors.length > 0 || doc.warnings.length > 0) throw new Error([...doc.errors, ...doc.warnings].map(String).join('\n'));
    const value = doc.toJS() as K8sObject | null;
    if (value !== null) objects.push(value);
  }
  return objects;
}
