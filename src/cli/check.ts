/**
 * `csi-provider-azure check`: validates SecretProviderClasses before a pod mounts them — from YAML files, or every
 * azure class in the cluster through the Kubernetes API — with exactly the parser a mount uses, and no call to Azure.
 * One line per problem; exit status 0 when every class passed, 1 when one did not, 2 for a usage or API error.
 *
 * The pod-specific inputs a mount gets from the driver (pod name and uid, service account tokens, the
 * nodePublishSecretRef Secret) do not exist here: placeholders stand in for them, so what is checked is the class.
 * With --probe (probe.ts) each class that passed also gets its token and has each object's access proven against
 * Azure; a Secret or service account token the operator hands over replaces the placeholders for that.
 */
import { readFileSync } from 'node:fs';
import pino from 'pino';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { canonicalCloudName } from '../spec/clouds';
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
import type { MountSpec } from '../spec/types';
import type { ProviderConfig } from './flags';
import { parseDuration } from '../util/duration';
import { NodeIdentityPolicy } from '../kube/node-identity-policy';
import { modeOf } from '../identity/modes/registry';
import { Prober, providerConfigOf, providerFlagsOf, type ProbeLine } from './probe';

const USAGE =
  'usage: csi-provider-azure check [--cloud-name NAME] (FILE... | --all-classes [--kubeconfig PATH])\n' +
  '       [--class NAMESPACE/NAME]... [--probe [--probe-timeout DURATION] [--node-publish-secret-file FILE|-]\n' +
  '       [--service-account-token-file FILE|-] [-- PROVIDER-FLAGS...]]\n' +
  '  FILE...        SecretProviderClass manifests (YAML, several documents each)\n' +
  '  --all-classes  every SecretProviderClass with provider azure in the cluster (needs list on secretproviderclasses)\n' +
  '  --kubeconfig   out of a pod: the kubeconfig to reach the cluster (in a pod: the in-cluster configuration)\n' +
  '  --cloud-name   the provider\'s --cloud-name, for classes without cloudName (default AzurePublicCloud)\n' +
  '  --class        only this class (repeatable), e.g. with --all-classes\n' +
  '  --probe        also get each class\'s token and prove each object\'s access (run in a provider pod)\n' +
  '  --probe-timeout  longest wait for one token or one object, retries included (default 30s)\n' +
  '  --node-publish-secret-file  a Secret manifest (- = stdin) with clientid/clientsecret, for service principal classes\n' +
  '  --service-account-token-file  a service account token (- = stdin; kubectl create token), for workload identity\n' +
  '  -- PROVIDER-FLAGS  the provider\'s flags (default: those of the provider process of this container, PID 1)';
const DEFAULT_PROBE_TIMEOUT_MS = 30_000;
const MAX_PROBE_TIMEOUT_MS = 10 * 60_000;
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
  let cloudName: string | undefined;
  let probe = false;
  let probeTimeoutMs = DEFAULT_PROBE_TIMEOUT_MS;
  let secretFile: string | undefined;
  let tokenFile: string | undefined;
  let providerFlags: string[] | undefined;
  const only = new Set<string>();
  const files: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      providerFlags = argv.slice(i + 1);
      break;
    }
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
      else if (flag === '--class') only.add(className(value()));
      else if (flag === '--probe') probe = true;
      else if (flag === '--probe-timeout') probeTimeoutMs = probeTimeout(value());
      else if (flag === '--node-publish-secret-file') secretFile = value();
      else if (flag === '--service-account-token-file') tokenFile = value();
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
  if (!probe && (providerFlags !== undefined || secretFile !== undefined || tokenFile !== undefined)) {
    io.err(`provider flags, --node-publish-secret-file and --service-account-token-file are for --probe\n${USAGE}`);
    return 2;
  }
  if (secretFile === '-' && tokenFile === '-') {
    io.err('--node-publish-secret-file and --service-account-token-file cannot both read stdin');
    return 2;
  }
  // The probe acts as the provider's mounts do: with its flags (and so its default cloud).
  const provider = probe ? providerConfigOf(providerFlags ?? providerFlagsOf('/proc/1/cmdline') ?? []) : undefined;
  if (typeof provider === 'string') {
    io.err(`check: ${provider}`);
    return 2;
  }
  cloudName ??= provider?.cloudName ?? 'AzurePublicCloud';
  const cloud = canonicalCloudName(cloudName);
  if (!cloud) {
    io.err(`--cloud-name "${cloudName.slice(0, 100)}" is not a known cloud`);
    return 2;
  }
  let secrets: Record<string, string> | undefined;
  let serviceAccount: PresentedServiceAccount | undefined;
  try {
    secrets = secretFile !== undefined ? secretData(secretFile) : undefined;
    serviceAccount = tokenFile !== undefined ? serviceAccountToken(tokenFile) : undefined;
  } catch (err) {
    io.err(`check: ${(err as Error).message}`);
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
  const policy = provider ? nodeIdentityPolicyOf(provider, io.env) : undefined;
  const prober = provider
    ? new Prober({ timeoutMs: probeTimeoutMs, provider, env: io.env, ...(policy ? { admit: policy.admit } : {}) })
    : undefined;
  const probed = { ok: 0, failed: 0, skipped: 0 };
  try {
    for (const { source, manifest, error } of found) {
      const problems = error ? { errors: [error], warnings: [] } : checkClass(manifest, cloud, secrets, serviceAccount);
      if (problems === undefined) continue; // Another provider's class.
      const name = `${String(manifest.metadata?.namespace ?? 'default')}/${String(manifest.metadata?.name ?? '')}`;
      if (only.size > 0 && !only.has(name)) continue;
      checked++;
      for (const problem of problems.errors) io.out(`${source}: ${name}: ${problem}`);
      for (const warning of problems.warnings) io.out(`${source}: ${name}: warning: ${warning}`);
      let classFailed = problems.errors.length > 0;
      if (prober && problems.spec) {
        const lines: ProbeLine[] = await prober.probe(
          problems.spec,
          podOnlyIdentity(problems.spec, secrets !== undefined, serviceAccount !== undefined),
        );
        for (const line of lines) {
          io.out(`${source}: ${name}: ${line.subject}: ${line.outcome}: ${line.message}`);
          if (line.outcome === 'ok') probed.ok++;
          else if (line.outcome === 'skipped') probed.skipped++;
          else probed.failed++;
        }
        if (lines.some((l) => l.outcome !== 'ok' && l.outcome !== 'skipped')) classFailed = true;
      }
      if (classFailed) failed++;
    }
  } finally {
    prober?.close();
    policy?.close();
  }
  const probeSummary = prober
    ? `; probed: ${probed.ok} ok, ${probed.failed} failed, ${probed.skipped} skipped (not proven)`
    : '';
  io.err(`${checked} SecretProviderClass${checked === 1 ? '' : 'es'} checked, ${failed} with problems${probeSummary}`);
  return failed > 0 ? 1 : 0;
}

/**
 * Why a class's identity cannot be probed from a provider pod, or undefined when it can. These inputs exist only for a
 * pod's mount; a probe that made them up would prove nothing.
 */
function podOnlyIdentity(spec: MountSpec, haveSecret: boolean, haveToken: boolean): string | undefined {
  const input = modeOf(spec.identity).probeInput;
  switch (input) {
    case 'nothing':
      return undefined;
    case 'nodePublishSecret':
      return haveSecret
        ? undefined
        : "needs the pod's nodePublishSecretRef Secret (the service principal's client secret), which the provider may " +
            'not read: pass it with --node-publish-secret-file - (kubectl get secret NAME -n NAMESPACE -o yaml | ' +
            'kubectl exec -i PROVIDER-POD -- ... check --probe --node-publish-secret-file - ...)';
    case 'serviceAccountToken':
      return haveToken
        ? undefined
        : "needs the pod's service-account token (kubelet gives it to a mount; the provider has no right to request " +
            'one for another service account): pass one with --service-account-token-file - (kubectl create token SA -n ' +
            'NAMESPACE --audience api://AzureADTokenExchange | kubectl exec -i PROVIDER-POD -- ... check --probe ...)';
    default:
      return input.never;
  }
}

function className(value: string): string {
  if (!/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?\/[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(value)) {
    throw new UsageError(`--class "${value.slice(0, 100)}" is not NAMESPACE/NAME`);
  }
  return value;
}

/**
 * The provider's node identity policy, when it refuses node identities: a class it refuses would never reach Azure in
 * a mount, so its probe says so instead. With a namespace label, the labels are read as the provider reads them (its
 * --kubeconfig, or the pod's service account); an API that cannot answer refuses, as the provider does.
 */
function nodeIdentityPolicyOf(
  provider: ProviderConfig,
  env: NodeJS.ProcessEnv,
): { admit: (spec: MountSpec) => Promise<void>; close: () => void } | undefined {
  if (provider.nodeIdentityPolicy !== 'deny') return undefined;
  let api: KubeApi | undefined;
  if (provider.nodeIdentityAllowedNamespaceLabel) {
    try {
      api = createKubeApi(provider.kubeconfig ? kubeconfigFileConfig(provider.kubeconfig) : inClusterConfig(env), 'csi-provider-azure-check');
    } catch {
      api = undefined; // The policy then refuses, saying no API client is configured.
    }
  }
  // Its "every pod on the node can use this identity" log line belongs to the provider's log, not to this output.
  const policy = new NodeIdentityPolicy({
    policy: 'deny',
    allowedNamespaceLabel: provider.nodeIdentityAllowedNamespaceLabel,
    api,
    logger: pino({ enabled: false }),
  });
  return { admit: (spec) => policy.admit(spec), close: () => api?.close() };
}

/** A service account token the operator handed over, as kubelet would put it in a mount's attributes. */
interface PresentedServiceAccount {
  /** The service account's name, from the token's subject (system:serviceaccount:NAMESPACE:NAME). */
  name: string;
  entry: { token: string; expirationTimestamp: string };
}

/**
 * A service account token (what `kubectl create token` prints). Its claims are read unverified, only for its subject
 * and expiry: Entra ID verifies it. Neither the token nor its claims are ever printed.
 */
function serviceAccountToken(file: string): PresentedServiceAccount {
  let token: string;
  try {
    const data = readFileSync(file === '-' ? 0 : file);
    if (data.length > 64 * 1024) throw new Error('larger than 64 KiB');
    token = data.toString('utf8').trim();
  } catch (err) {
    throw new Error(`cannot read ${file === '-' ? 'the token on stdin' : file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const notToken = new Error('--service-account-token-file: not a service account token (a JWT, as kubectl create token prints)');
  const payload = token.split('.')[1];
  if (!/^[\w-]+\.[\w-]+\.[\w-]*$/.test(token) || !payload) throw notToken;
  let claims: { sub?: unknown; exp?: unknown };
  try {
    claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { sub?: unknown; exp?: unknown };
  } catch {
    throw notToken;
  }
  const subject = typeof claims.sub === 'string' ? /^system:serviceaccount:[^:]+:([^:]+)$/.exec(claims.sub) : null;
  if (!subject) throw notToken;
  const exp = typeof claims.exp === 'number' ? new Date(claims.exp * 1000).toISOString() : '';
  return { name: subject[1]!, entry: { token, expirationTimestamp: exp } };
}

function probeTimeout(value: string): number {
  let ms: number;
  try {
    ms = parseDuration(value);
  } catch {
    throw new UsageError(`--probe-timeout "${value.slice(0, 50)}" is not a duration such as 30s or 2m`);
  }
  if (ms < 1 || ms > MAX_PROBE_TIMEOUT_MS) throw new UsageError('--probe-timeout must be between 1ms and 10m');
  return ms;
}

/**
 * The data of a Kubernetes Secret manifest (what `kubectl get secret -o yaml` prints): data decoded from base64,
 * stringData as it is. The values are used only to get a token, never printed.
 */
function secretData(file: string): Record<string, string> {
  let text: string;
  try {
    const data = readFileSync(file === '-' ? 0 : file);
    if (data.length > MAX_FILE_BYTES) throw new Error(`larger than ${MAX_FILE_BYTES} bytes`);
    text = data.toString('utf8');
  } catch (err) {
    throw new Error(`cannot read ${file === '-' ? 'the Secret on stdin' : file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  let manifest: unknown;
  try {
    manifest = parseYaml(text, { maxAliasCount: 100 });
  } catch {
    // The parser's message would quote the text, which holds the secret.
    throw new Error(`--node-publish-secret-file: not a YAML or JSON Secret manifest`);
  }
  const m = manifest as { kind?: unknown; data?: unknown; stringData?: unknown } | null;
  if (!m || m.kind !== 'Secret') throw new Error('--node-publish-secret-file: not a Secret manifest (kind: Secret)');
  const out: Record<string, string> = {};
  const entries = (x: unknown): Array<[string, unknown]> => (x && typeof x === 'object' ? Object.entries(x) : []);
  for (const [k, v] of entries(m.data)) if (typeof v === 'string') out[k] = Buffer.from(v, 'base64').toString('utf8');
  for (const [k, v] of entries(m.stringData)) if (typeof v === 'string') out[k] = v;
  return out;
}

class UsageError extends Error {}

/** The class through the mount's own parser; undefined when it is not an azure class. */
function checkClass(
  manifest: ClassManifest,
  cloudName: string,
  secrets: Record<string, string> = { clientid: 'placeholder', clientsecret: 'placeholder' },
  serviceAccount?: PresentedServiceAccount,
): { errors: string[]; warnings: string[]; spec?: MountSpec } | undefined {
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
    [SERVICE_ACCOUNT_NAME]: serviceAccount?.name ?? 'check',
    // A presented token stands for both audiences: the class's mode picks one, and Entra ID judges its audience.
    [SERVICE_ACCOUNT_TOKENS]: JSON.stringify(
      serviceAccount
        ? { [WORKLOAD_IDENTITY_AUDIENCE]: serviceAccount.entry, [IDENTITY_BINDING_AUDIENCE]: serviceAccount.entry }
        : { [WORKLOAD_IDENTITY_AUDIENCE]: placeholderToken, [IDENTITY_BINDING_AUDIENCE]: placeholderToken },
    ),
    [SECRET_PROVIDER_CLASS]: name,
  };
  try {
    // No node here: cacheTTL is checked as a duration, not against a node's --keyvault-cache-max-ttl (nor ignored).
    const parsed = parseMountParameters(attributes, secrets, { cloudName, maxCacheTtlMs: Number.POSITIVE_INFINITY });
    return { errors: [], warnings: parsed.warnings, spec: parsed };
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
