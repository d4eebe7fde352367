/**
 * Command-line flags, with the reference provider's names and defaults so that existing DaemonSet manifests and Helm
 * values carry over unchanged. Parsing follows Go's `flag` package, which the reference uses: one or two
 * leading dashes, `--flag=value` or `--flag value`, booleans set by their bare name. We also accept `--bool true|false`
 * (Go would silently stop parsing there), and we fail on unknown flags, as Go does, except klog's logging flags, which
 * reference manifests may still pass and which have no meaning here.
 */

import { isIP } from 'node:net';
import { parseNamespaceLabel, type NamespaceLabel } from '../kube/node-identity-policy';
import { parseDuration } from '../util/duration';
import { goBool } from '../util/go-bool';

export type Endpoint = { kind: 'unix'; path: string } | { kind: 'tcp'; host: string; port: number };

export interface ProviderConfig {
  endpoint: Endpoint;
  constructPemChain: boolean;
  writeCertAndKeyInSeparateFiles: boolean;
  /** Default cloud for SecretProviderClasses that do not set `cloudName`. */
  cloudName: string;
  healthz: { port: number; path: string; timeoutMs: number; address: string };
  metricsBackend: string;
  prometheusPort: number;
  /** Where /metrics listens; '' = every address, as the reference. */
  prometheusAddress: string;
  logFormatJson: boolean;
  verbosity: number;
  customUserAgent: string;
  tokenProxyUrl: string;
  sniName: string;
  /** How long SIGTERM waits for in-flight mounts before cancelling them. */
  drainTimeoutMs: number;
  /** Objects (and versions of one object) fetched at once within one mount. 1 fetches one at a time. */
  maxFetchesPerMount: number;
  /** Key Vault requests in flight at once to one vault, across every mount and identity on this node. */
  maxRequestsPerVault: number;
  /** Identities whose credentials (and tokens, vault clients) are kept between mounts; 0 builds them anew per mount. */
  credentialCacheSize: number;
  /** The only directory whose files a SecretProviderClass may name in cloudEnvFileName. */
  cloudEnvFileDir: string;
  /** The Key Vault value cache: off while maxTtlMs is 0 (see keyvault/cached-vault-access.ts). */
  keyVaultCache: {
    maxTtlMs: number;
    maxEntries: number;
    maxBytes: number;
    allowFirstMounts: boolean;
    staleGraceMs: number;
  };
  /** Key Vault requests sent per second to one vault from this node (a token bucket); 0 = no rate bound. */
  vaultRequestsPerSecond: number;
  /** Kubeconfig file for the Kubernetes API; '' = the pod's in-cluster configuration. */
  kubeconfig: string;
  /** Post a Warning event on the pod when a rotation (a mount after a successful one) fails. */
  rotationFailureEvents: boolean;
  /**
   * Classes that select no identity take clientID/tenantID from the service account's workload identity annotations.
   */
  workloadIdentityFromServiceAccount: boolean;
  /** 'deny' refuses useVMManagedIdentity and usePodIdentity (except in namespaces with the label below). */
  nodeIdentityPolicy: 'allow' | 'deny';
  nodeIdentityAllowedNamespaceLabel: NamespaceLabel | undefined;
}

export type ParsedCommandLine =
  | { kind: 'run'; config: ProviderConfig; ignoredFlags: string[] }
  | { kind: 'version' }
  | { kind: 'error'; message: string };

type FlagType = 'bool' | 'string' | 'int' | 'duration';

interface FlagSpec {
  type: FlagType;
  apply: (config: ProviderConfig, value: string) => void;
}

export const DEFAULT_CONFIG: Readonly<ProviderConfig> = Object.freeze({
  endpoint: { kind: 'unix', path: '/tmp/azure.sock' },
  constructPemChain: true,
  writeCertAndKeyInSeparateFiles: false,
  cloudName: 'AzurePublicCloud',
  // '' listens on every address, as the reference does (the DaemonSet runs on the host network: the node's addresses).
  healthz: { port: 8989, path: '/healthz', timeoutMs: 5000, address: '' },
  metricsBackend: 'Prometheus',
  prometheusPort: 8898,
  prometheusAddress: '',
  logFormatJson: false,
  verbosity: 0,
  customUserAgent: '',
  tokenProxyUrl: '',
  sniName: '',
  drainTimeoutMs: 25000,
  // 32 per mount: almost every SecretProviderClass is fetched in one round trip to the vault, and a 50-object one in
  // two. What protects the vault is the per-vault bound below, not this one.
  maxFetchesPerMount: 32,
  // 64 per vault: enough for four large mounts at once; beyond it requests queue here instead of piling onto a vault
  // whose limits (a few thousand requests per 10 s) are shared by every node of the cluster.
  maxRequestsPerVault: 64,
  credentialCacheSize: 1000,
  // Inside the provider's container this folder holds only what the chart mounts (the reference's documented place
  // for the Azure Stack Hub file), never the node's own files.
  cloudEnvFileDir: '/etc/kubernetes',
  // Off: a class's cacheTTL is then ignored, and every mount reads Key Vault as without the cache.
  keyVaultCache: { maxTtlMs: 0, maxEntries: 10_000, maxBytes: 64 * 1024 * 1024, allowFirstMounts: false, staleGraceMs: 0 },
  vaultRequestsPerSecond: 0,
  // Off: the provider calls no Kubernetes API unless one of these is turned on.
  kubeconfig: '',
  rotationFailureEvents: false,
  workloadIdentityFromServiceAccount: false,
  nodeIdentityPolicy: 'allow',
  nodeIdentityAllowedNamespaceLabel: undefined,
}) as ProviderConfig;

const FLAGS: Record<string, FlagSpec> = {
  endpoint: { type: 'string', apply: (c, v) => (c.endpoint = parseEndpoint(v)) },
  'construct-pem-chain': { type: 'bool', apply: (c, v) => (c.constructPemChain = parseBool(v)) },
  'write-cert-and-key-in-separate-files': {
    type: 'bool',
    apply: (c, v) => (c.writeCertAndKeyInSeparateFiles = parseBool(v)),
  },
  'cloud-name': { type: 'string', apply: (c, v) => (c.cloudName = v) },
  'healthz-port': { type: 'int', apply: (c, v) => (c.healthz.port = parsePort(v)) },
  'healthz-path': { type: 'string', apply: (c, v) => (c.healthz.path = v.startsWith('/') ? v : `/${v}`) },
  'healthz-timeout': { type: 'duration', apply: (c, v) => (c.healthz.timeoutMs = parseDuration(v)) },
  'healthz-address': { type: 'string', apply: (c, v) => (c.healthz.address = parseListenAddress(v)) },
  'metrics-backend': { type: 'string', apply: (c, v) => (c.metricsBackend = v) },
  'prometheus-address': { type: 'string', apply: (c, v) => (c.prometheusAddress = parseListenAddress(v)) },
  'prometheus-port': { type: 'int', apply: (c, v) => (c.prometheusPort = parsePort(v)) },
  'log-format-json': { type: 'bool', apply: (c, v) => (c.logFormatJson = parseBool(v)) },
  v: { type: 'int', apply: (c, v) => (c.verbosity = parseNonNegativeInt(v)) },
  'custom-user-agent': { type: 'string', apply: (c, v) => (c.customUserAgent = v) },
  'token-proxy-url': { type: 'string', apply: (c, v) => (c.tokenProxyUrl = v) },
  'sni-name': { type: 'string', apply: (c, v) => (c.sniName = v) },
  'drain-timeout': { type: 'duration', apply: (c, v) => (c.drainTimeoutMs = parseDuration(v)) },
  'max-fetches-per-mount': { type: 'int', apply: (c, v) => (c.maxFetchesPerMount = parsePositiveInt(v)) },
  'max-requests-per-vault': { type: 'int', apply: (c, v) => (c.maxRequestsPerVault = parsePositiveInt(v)) },
  'credential-cache-size': { type: 'int', apply: (c, v) => (c.credentialCacheSize = parseNonNegativeInt(v)) },
  'keyvault-cache-max-ttl': { type: 'duration', apply: (c, v) => (c.keyVaultCache.maxTtlMs = parseDuration(v)) },
  'keyvault-cache-max-entries': { type: 'int', apply: (c, v) => (c.keyVaultCache.maxEntries = parsePositiveInt(v)) },
  'keyvault-cache-max-bytes': { type: 'int', apply: (c, v) => (c.keyVaultCache.maxBytes = parsePositiveInt(v)) },
  'keyvault-cache-first-mounts': { type: 'bool', apply: (c, v) => (c.keyVaultCache.allowFirstMounts = parseBool(v)) },
  'keyvault-cache-stale-grace': { type: 'duration', apply: (c, v) => (c.keyVaultCache.staleGraceMs = parseDuration(v)) },
  'max-requests-per-second-per-vault': { type: 'int', apply: (c, v) => (c.vaultRequestsPerSecond = parseNonNegativeInt(v)) },
  'cloud-env-file-dir': { type: 'string', apply: (c, v) => (c.cloudEnvFileDir = parseAbsoluteDir(v)) },
  kubeconfig: { type: 'string', apply: (c, v) => (c.kubeconfig = v) },
  'rotation-failure-events': { type: 'bool', apply: (c, v) => (c.rotationFailureEvents = parseBool(v)) },
  'workload-identity-from-service-account': {
    type: 'bool',
    apply: (c, v) => (c.workloadIdentityFromServiceAccount = parseBool(v)),
  },
  'node-identity-policy': { type: 'string', apply: (c, v) => (c.nodeIdentityPolicy = parseNodeIdentityPolicy(v)) },
  'node-identity-allowed-namespace-label': {
    type: 'string',
    apply: (c, v) => (c.nodeIdentityAllowedNamespaceLabel = v === '' ? undefined : parseNamespaceLabel(v)),
  },
};

/** Flags the reference accepts that we take and ignore (klog's, and its pprof switch), so old manifests still start. */
const IGNORED_FLAGS: Record<string, FlagType> = {
  'enable-pprof': 'bool',
  'pprof-port': 'int',
  logtostderr: 'bool',
  alsologtostderr: 'bool',
  'one-output': 'bool',
  one_output: 'bool',
  'skip-headers': 'bool',
  skip_headers: 'bool',
  'skip-log-headers': 'bool',
  skip_log_headers: 'bool',
  add_dir_header: 'bool',
  stderrthreshold: 'string',
  log_dir: 'string',
  log_file: 'string',
  log_file_max_size: 'int',
  log_backtrace_at: 'string',
  vmodule: 'string',
};

export function parseCommandLine(argv: readonly string[]): ParsedCommandLine {
  const config: ProviderConfig = structuredClone(DEFAULT_CONFIG);
  const ignoredFlags: string[] = [];
  let wantVersion = false;
  try {
    for (let i = 0; i < argv.length; i++) {
      const arg = argv[i]!;
      const match = /^--?([^=-][^=]*)(?:=(.*))?$/s.exec(arg);
      if (!match) throw new Error(`unexpected argument "${arg}": flags start with - or --`);
      const name = match[1]!;
      let value = match[2];
      if (name === 'version' || name === 'h' || name === 'help') {
        if (name !== 'version') throw new Error(usage());
        wantVersion = value === undefined || parseBool(value);
        continue;
      }
      const spec = FLAGS[name];
      const type = spec?.type ?? IGNORED_FLAGS[name];
      if (!type) throw new Error(`unknown flag --${name}\n${usage()}`);
      if (value === undefined) {
        const next = argv[i + 1];
        if (type === 'bool') {
          // A following true/false belongs to this flag; anything else is the next flag.
          if (next !== undefined && goBool(next) !== undefined) {
            value = next;
            i++;
          } else value = 'true';
        } else {
          if (next === undefined) throw new Error(`flag --${name} needs a value`);
          value = next;
          i++;
        }
      }
      if (spec) {
        try {
          spec.apply(config, value);
        } catch (err) {
          throw new Error(`invalid value "${value}" for flag --${name}: ${(err as Error).message}`);
        }
      } else ignoredFlags.push(name);
    }
  } catch (err) {
    return { kind: 'error', message: (err as Error).message };
  }
  if (wantVersion) return { kind: 'version' };
  if (config.nodeIdentityAllowedNamespaceLabel && config.nodeIdentityPolicy !== 'deny') {
    return {
      kind: 'error',
      message: '--node-identity-allowed-namespace-label has an effect only with --node-identity-policy=deny: set both, or neither',
    };
  }
  return { kind: 'run', config, ignoredFlags };
}

export function parseEndpoint(value: string): Endpoint {
  if (value.startsWith('unix://')) {
    const path = value.slice('unix://'.length);
    if (!path) throw new Error('unix endpoint needs a path, e.g. unix:///provider/azure.sock');
    return { kind: 'unix', path };
  }
  if (value.startsWith('tcp://')) {
    const url = new URL(value);
    const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
    return { kind: 'tcp', host: host || '127.0.0.1', port: parsePort(url.port || '0') };
  }
  throw new Error('endpoint must start with unix:// or tcp://');
}

export function parseBool(value: string): boolean {
  const bool = goBool(value);
  if (bool === undefined) throw new Error('expected true or false');
  return bool;
}

function parseNodeIdentityPolicy(value: string): 'allow' | 'deny' {
  if (value !== 'allow' && value !== 'deny') throw new Error('expected allow or deny');
  return value;
}

function parseNonNegativeInt(value: string): number {
  if (!/^\d+$/.test(value)) throw new Error('expected a whole number');
  return Number(value);
}

function parsePositiveInt(value: string): number {
  const n = parseNonNegativeInt(value);
  if (n < 1) throw new Error('expected a whole number of at least 1');
  return n;
}

function parseAbsoluteDir(value: string): string {
  if (!value.startsWith('/') || value.includes('\0')) throw new Error('expected an absolute directory path');
  // "/" would allow every file of the container: refuse it rather than silently open everything up.
  if (value.replace(/\/+$/, '') === '') throw new Error('the root directory would allow every file: name a folder');
  return value.replace(/\/+$/, '');
}

/**
 * An IP address to listen on ('' = all); IPv6 with or without brackets. Host names are refused: they may resolve to
 * several.
 */
function parseListenAddress(value: string): string {
  const address = value.replace(/^\[(.*)\]$/, '$1');
  if (address !== '' && isIP(address) === 0) throw new Error('expected an IP address such as 127.0.0.1 or ::1, or empty for every address');
  return address;
}

function parsePort(value: string): number {
  const port = parseNonNegativeInt(value);
  if (port > 65535) throw new Error('expected a port number (0-65535)');
  return port;
}

function usage(): string {
  const names = Object.keys(FLAGS)
    .map((n) => `--${n}`)
    .join(' ');
  return `usage: csi-provider-azure [--version] ${names}`;
}
