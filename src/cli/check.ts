/**
 * `csi-provider-azure check`: validates SecretProviderClasses before a pod mounts them — from YAML files, or every
 * azure class in the cluster through the Kubernetes API — with exactly the parser a mount uses, and no call to Azure.
 * One line per problem; exit status 0 when every class passed, 1 when one did not, 2 for a usage or API error.
 *
 * The pod-specific inputs a mount gets from the driver (pod name and uid, service account tokens, the
 * nodePublishSecretRef Secret) do not exist here: placeholders stand in for them, so what is checked is the class.
 */
import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import { canonicalCloudName } from '../keyvault/clouds';
import { createKubeApi, type KubeApi } from '../kube/client';
import { inClusterConfig, kubeconfigFileConfig } from '../kube/config';
import {
  IDENTITY_BINDING_AUDIENCE,
  parseMountParameters,
  POD_NAME,
  POD_NAMESPACE,
  POD_UID,
  SECRET_PROVIDER_CLASS,
  SERVICE_ACCOUNT_NAME,
  SERVICE_ACCOUNT_TOKENS,
  WORKLOAD_IDENTITY_AUDIENCE,
} from '../mount/parameters';

const USAGE =
  'usage: csi-provider-azure check [--cloud-name NAME] (FILE... | --all-classes [--kubeconfig PATH])\n' +
  '  FILE...        SecretProviderClass manifests (YAML, several documents each)\n' +
  '  --all-classes  every SecretProviderClass with provider azure in the cluster (needs list on secretproviderclasses)\n' +
  '  --kubeconfig   out of a pod: the kubeconfig to reach the cluster (in a pod: the in-cluster configuration)\n' +
  '  --cloud-name   the provider\'s --cloud-name, for classes without cloudName (default AzurePublicCloud)';
const MAX_FILE_BYTES = 4 * 1024 * 1024;
const PAGE = 250;
const MAX_CLASSES = 100_000;

export interface CheckIo {
  out: (line: string) => void;
  err: (line: string) => void;
  env: NodeJS.ProcessEnv;
}

interface ClassManifest {
  kind?: unknown;
  metadata?: { name?: unknown; namespace?: unknown };
  spec?: { provider?: unknown; parameters?: unknown };
}

interface Found {
  /** Where the class came from: "file.yaml", "file.yaml#2", or "cluster". */
  source: string;
  manifest: ClassManifest;
  /** The document could not be read as YAML. */
  error?: string;
}

export async function runCheck(argv: readonly string[], io: CheckIo): Promise<number> {
  let kubeconfig = '';
  let allClasses = false;
  let cloudName = 'AzurePublicCloud';
  const files: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const [flag, inline] = arg.startsWith('--') ? (arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined]) : [arg, undefined];
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new UsageError(`${flag} needs a value`);
      return v;
    };
    try {
      if (flag === '--all-classes') allClasses = true;
      else if (flag === '--kubeconfig') kubeconfig = value();
      else if (flag === '--cloud-name') cloudName = value();
      else if (flag === '--help' || flag === '-h') {
        io.out(USAGE);
        return 0;
      } else if (flag.startsWith('-')) throw new UsageError(`unknown flag ${flag}`);
      else files.push(arg);
    } catch (err) {
      io.err(`${(err as Error).message}\n${USAGE}`);
      return 2;
    }
  }
  if (allClasses === files.length > 0) {
    io.err(`name SecretProviderClass files, or --all-classes\n${USAGE}`);
    return 2;
  }
  const cloud = canonicalCloudName(cloudName);
  if (!cloud) {
    io.err(`--cloud-name "${cloudName.slice(0, 100)}" is not a known cloud`);
    return 2;
  }

  let found: Found[];
  try {
    found = allClasses ? await classesInCluster(kubeconfig, io.env) : files.flatMap((file) => classesInFile(file));
  } catch (err) {
    io.err(`check: ${(err as Error).message}`);
    return 2;
  }

  let failed = 0;
  let checked = 0;
  for (const { source, manifest, error } of found) {
    const problems = error ? { errors: [error], warnings: [] } : checkClass(manifest, cloud);
    if (problems === undefined) continue; // Another provider's class.
    checked++;
    const name = `${String(manifest.metadata?.namespace ?? 'default')}/${String(manifest.metadata?.name ?? '')}`;
    for (const problem of problems.errors) io.out(`${source}: ${name}: ${problem}`);
    for (const warning of problems.warnings) io.out(`${source}: ${name}: warning: ${warning}`);
    if (problems.errors.length > 0) failed++;
  }
  io.err(`${checked} SecretProviderClass${checked === 1 ? '' : 'es'} checked, ${failed} with problems`);
  return failed > 0 ? 1 : 0;
}

class UsageError extends Error {}

/** The class through the mount's own parser; undefined when it is not an azure class. */
function checkClass(manifest: ClassManifest, cloudName: string): { errors: string[]; warnings: string[] } | undefined {
  const spec = manifest.spec ?? {};
  if (spec.provider !== 'azure') return undefined;
  const name = typeof manifest.metadata?.name === 'string' ? manifest.metadata.name : '';
  const namespace = typeof manifest.metadata?.namespace === 'string' && manifest.metadata.namespace ? manifest.metadata.namespace : 'default';
  const parameters = spec.parameters ?? {};
  if (typeof parameters !== 'object' || parameters === null || Array.isArray(parameters)) {
    return { errors: ['spec.parameters must be a map of strings'], warnings: [] };
  }
  const nonStrings = Object.entries(parameters).filter(([, v]) => typeof v !== 'string').map(([k]) => k);
  if (nonStrings.length > 0) {
    // Kubernetes refuses such a class (parameters is map[string]string): quote the values.
    return { errors: [`parameters ${nonStrings.slice(0, 10).join(', ')} must be strings (quote them in YAML)`], warnings: [] };
  }
  const placeholderToken = { token: 'placeholder', expirationTimestamp: new Date(Date.now() + 3600_000).toISOString() };
  const attributes: Record<string, string> = {
    ...(parameters as Record<string, string>),
    [POD_NAME]: 'check',
    [POD_NAMESPACE]: namespace,
    [POD_UID]: '00000000-0000-0000-0000-000000000000',
    [SERVICE_ACCOUNT_NAME]: 'check',
    [SERVICE_ACCOUNT_TOKENS]: JSON.stringify({ [WORKLOAD_IDENTITY_AUDIENCE]: placeholderToken, [IDENTITY_BINDING_AUDIENCE]: placeholderToken }),
    [SECRET_PROVIDER_CLASS]: name,
  };
  try {
    // No node here: cacheTTL is checked as a duration, not against a node's --keyvault-cache-max-ttl (nor ignored).
    const defaults = { cloudName, maxCacheTtlMs: Number.POSITIVE_INFINITY };
    const parsed = parseMountParameters(attributes, { clientid: 'placeholder', clientsecret: 'placeholder' }, defaults);
    return { errors: [], warnings: parsed.warnings };
  } catch (err) {
    return { errors: [(err as Error).message], warnings: [] };
  }
}

function classesInFile(file: string): Found[] {
  let text: string;
  try {
    const data = readFileSync(file);
    if (data.length > MAX_FILE_BYTES) throw new Error(`larger than ${MAX_FILE_BYTES} bytes`);
    text = data.toString('utf8');
  } catch (err) {
    throw new Error(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const documents = parseAllDocuments(text);
  const list = Array.isArray(documents) ? documents : [documents];
  const found: Found[] = [];
  list.forEach((doc, i) => {
    const source = list.length > 1 ? `${file}#${i + 1}` : file;
    if (doc.errors.length > 0) {
      found.push({ source, manifest: {}, error: `not valid YAML: ${doc.errors[0]!.message.split('\n')[0]!.slice(0, 200)}` });
      return;
    }
    let manifest: ClassManifest | null;
    try {
      // Aliases bounded: a hostile file must not expand into gigabytes.
      manifest = doc.toJS({ maxAliasCount: 100 }) as ClassManifest | null;
    } catch (err) {
      found.push({ source, manifest: {}, error: `not valid YAML: ${(err as Error).message.slice(0, 200)}` });
      return;
    }
    if (manifest && manifest.kind === 'SecretProviderClass') found.push({ source, manifest });
  });
  return found;
}

async function classesInCluster(kubeconfig: string, env: NodeJS.ProcessEnv): Promise<Found[]> {
  const api: KubeApi = createKubeApi(kubeconfig ? kubeconfigFileConfig(kubeconfig) : inClusterConfig(env), 'csi-provider-azure-check');
  try {
    const found: Found[] = [];
    let next = '';
    do {
      const page = await api.call<{ items?: ClassManifest[]; metadata?: { continue?: string } }>(
        'GET',
        `/apis/secrets-store.csi.x-k8s.io/v1/secretproviderclasses?limit=${PAGE}${next ? `&continue=${encodeURIComponent(next)}` : ''}`,
      );
      for (const item of page.items ?? []) found.push({ source: 'cluster', manifest: item });
      next = page.metadata?.continue ?? '';
    } while (next && found.length < MAX_CLASSES);
    return found;
  } finally {
    api.close();
  }
}
