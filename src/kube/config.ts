/**
 * Where the Kubernetes API is and how to authenticate to it: in a pod, the standard in-cluster configuration (the
 * service account token and CA that kubelet projects into /var/run/secrets/kubernetes.io/serviceaccount, and
 * KUBERNETES_SERVICE_HOST/PORT); outside one, a kubeconfig file named by --kubeconfig (its current context: server,
 * CA, and a bearer token, token file or client certificate). These are the two mechanisms every Kubernetes client
 * offers; exec plugins and auth providers are not supported (a provider pod never needs them).
 */
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import { parse as parseYaml } from 'yaml';

export const IN_CLUSTER_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface KubeConnectionConfig {
  /** https://host:port, no trailing slash. */
  server: string;
  ca: Buffer | undefined;
  /** Bearer token, read anew when it may have rotated (a projected token is replaced by kubelet before it expires). */
  token: (() => string) | undefined;
  clientCert: Buffer | undefined;
  clientKey: Buffer | undefined;
  /** TLS server name when it differs from the server's host (kubeconfig `tls-server-name`). */
  serverName: string | undefined;
  /** Where this came from, for log lines. */
  source: string;
}

/** Re-read a token file at most this often: kubelet refreshes projected tokens at 80% of their life (≥ 10 min). */
const TOKEN_REREAD_MS = 60_000;
const MAX_FILE_BYTES = 256 * 1024;

export function inClusterConfig(env: NodeJS.ProcessEnv, dir = IN_CLUSTER_DIR): KubeConnectionConfig {
  const host = env['KUBERNETES_SERVICE_HOST'];
  const port = env['KUBERNETES_SERVICE_PORT'];
  if (!host || !port) {
    throw new Error(
      'KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT are not set: outside a pod, pass --kubeconfig with the path of a kubeconfig file',
    );
  }
  const tokenFile = join(dir, 'token');
  // Fail at start-up, not at the first event: a pod without its token has automountServiceAccountToken off.
  readBounded(tokenFile, 'the service account token (set automountServiceAccountToken: true on the provider pods)');
  return {
    server: `https://${host.includes(':') ? `[${host}]` : host}:${port}`,
    ca: readBounded(join(dir, 'ca.crt'), 'the cluster CA'),
    token: tokenFileReader(tokenFile),
    clientCert: undefined,
    clientKey: undefined,
    serverName: undefined,
    source: 'in-cluster service account',
  };
}

interface KubeconfigFile {
  'current-context'?: string;
  contexts?: Array<{ name: string; context?: { cluster?: string; user?: string } }>;
  clusters?: Array<{
    name: string;
    cluster?: { server?: string; 'certificate-authority'?: string; 'certificate-authority-data'?: string; 'tls-server-name'?: string };
  }>;
  users?: Array<{
    name: string;
    user?: {
      token?: string;
      tokenFile?: string;
      'client-certificate'?: string;
      'client-certificate-data'?: string;
      'client-key'?: string;
      'client-key-data'?: string;
      exec?: unknown;
      'auth-provider'?: unknown;
    };
  }>;
}

export function kubeconfigFileConfig(path: string): KubeConnectionConfig {
  const text = readBounded(path, 'the kubeconfig').toString('utf8');
  let file: KubeconfigFile;
  try {
    file = parseYaml(text, { maxAliasCount: 10 }) as KubeconfigFile;
  } catch {
    throw new Error(`the kubeconfig ${path} is not valid YAML`);
  }
  const contextName = file['current-context'];
  const context = file.contexts?.find((c) => c.name === contextName)?.context;
  if (!context) throw new Error(`the kubeconfig ${path} has no current-context (or the context it names is missing)`);
  const cluster = file.clusters?.find((c) => c.name === context.cluster)?.cluster;
  if (!cluster?.server) throw new Error(`the kubeconfig ${path}: the cluster of context "${contextName}" has no server`);
  if (!cluster.server.startsWith('https://')) throw new Error(`the kubeconfig ${path}: the server must be an https:// address`);
  const user = file.users?.find((u) => u.name === context.user)?.user ?? {};
  if (user.exec || user['auth-provider']) {
    throw new Error(`the kubeconfig ${path}: exec plugins and auth providers are not supported; use a token, tokenFile or client certificate`);
  }
  const relative = (p: string): string => (isAbsolute(p) ? p : join(dirname(path), p));
  const fileOrData = (file?: string, data?: string, what = ''): Buffer | undefined =>
    data ? Buffer.from(data, 'base64') : file ? readBounded(relative(file), what) : undefined;
  const tokenFile = user.tokenFile;
  const literalToken = user.token;
  return {
    server: cluster.server.replace(/\/+$/, ''),
    ca: fileOrData(cluster['certificate-authority'], cluster['certificate-authority-data'], 'the kubeconfig\'s certificate-authority'),
    token: literalToken ? () => literalToken : tokenFile ? tokenFileReader(relative(tokenFile)) : undefined,
    clientCert: fileOrData(user['client-certificate'], user['client-certificate-data'], 'the kubeconfig\'s client-certificate'),
    clientKey: fileOrData(user['client-key'], user['client-key-data'], 'the kubeconfig\'s client-key'),
    serverName: cluster['tls-server-name'],
    source: `kubeconfig ${path}`,
  };
}

function tokenFileReader(path: string): () => string {
  let token = '';
  let readAt = -Infinity;
  return () => {
    const now = Date.now();
    if (now - readAt >= TOKEN_REREAD_MS) {
      try {
        token = readBounded(path, 'the token file').toString('utf8').trim();
        readAt = now;
      } catch {
        // Keep the last token: kubelet replaces the file atomically, a failed read is a moment's race.
      }
    }
    return token;
  };
}

function readBounded(path: string, what: string): Buffer {
  let data: Buffer;
  try {
    data = readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new Error(`cannot read ${what} at ${path} (${code})`);
  }
  if (data.length > MAX_FILE_BYTES) throw new Error(`${what} at ${path} is larger than ${MAX_FILE_BYTES} bytes`);
  return data;
}
