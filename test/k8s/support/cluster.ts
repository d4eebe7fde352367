/**
 * A real control plane on loopback: etcd and kube-apiserver (built by test/k8s/build.sh), with the Secrets Store
 * CSI Driver's CRDs applied from the driver's own module and the CSIDriver object the driver's chart installs.
 * The API server serves TLS with a certificate of the test CA, authenticates the suite and the driver with a static
 * admin token, and signs service account tokens with a key the suite holds, so the Entra ID stand-in can trust the
 * cluster's issuer exactly as Entra ID trusts an AKS cluster's OIDC issuer.
 */
import { generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { createTestPki, type TestPki } from '../../support/pki';
import { freePorts } from '../../support/ports';
import { components, type DriverVersion } from './components';
import { startDaemon, type Daemon } from './daemon';
import { createKubeClient, type KubeClient, type KubeObject } from './kube';

export const DRIVER_NAME = 'secrets-store.csi.k8s.io';
export const SERVICE_ACCOUNT_ISSUER = 'https://oidc.csi-provider-azure.test/cluster';

export interface Cluster {
  kube: KubeClient;
  pki: TestPki;
  /** A kubeconfig for the driver (the admin token; the driver's RBAC is the driver chart's business). */
  kubeconfig: string;
  /** The service account token issuer, as a workload identity federation trusts it. */
  issuer: { issuer: string; publicKey: KeyObject };
  dir: string;
  /** The API server's audit log (JSON lines, one per request at the Metadata level), for counting who called what. */
  auditLog: string;
  daemons: Daemon[];
  /** Creates or replaces the CSIDriver object as the driver's chart does, with the given token options. */
  installCsiDriver(options?: CsiDriverOptions): Promise<void>;
  stop(): Promise<void>;
}

export interface CsiDriverOptions {
  /** Kubernetes ≥ 1.35: kubelet passes the tokens in NodePublishVolume's secrets instead of its volume context. */
  serviceAccountTokenInSecrets?: boolean;
  /** v1.6.0's rotation: kubelet calls NodePublishVolume again periodically. */
  requiresRepublish?: boolean;
}

/** The audiences the reference chart requests: workload identity and the AKS identity binding. */
export const TOKEN_AUDIENCES = ['api://AzureADTokenExchange', 'api://AKSIdentityBinding'];

export async function startCluster(crdsFrom: DriverVersion = 'v1.6.0'): Promise<Cluster> {
  const parts = components();
  const dir = mkdtempSync(join(tmpdir(), 'csi-k8s-'));
  const daemons: Daemon[] = [];
  const stop = async (): Promise<void> => {
    for (const d of [...daemons].reverse()) await d.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const [etcdClient, etcdPeer, apiPort] = await freePorts(3);
    const etcd = startDaemon('etcd', parts.etcd, [
      `--data-dir=${join(dir, 'etcd')}`,
      `--listen-client-urls=http://127.0.0.1:${etcdClient}`,
      `--advertise-client-urls=http://127.0.0.1:${etcdClient}`,
      `--listen-peer-urls=http://127.0.0.1:${etcdPeer}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeer}`,
      `--initial-cluster=default=http://127.0.0.1:${etcdPeer}`,
      // A throwaway store: durability costs fsyncs the tests do not need.
      '--unsafe-no-fsync',
      '--log-level=warn',
    ]);
    daemons.push(etcd);

    const pki = createTestPki('csi-provider-azure k8s test CA');
    const caFile = pki.writeCaFile(dir);
    const serving = pki.issueServerCert(['localhost', 'kubernetes', 'kubernetes.default.svc'], { ipAddresses: ['127.0.0.1'] });
    writeFileSync(join(dir, 'apiserver.crt'), serving.certPem);
    writeFileSync(join(dir, 'apiserver.key'), serving.keyPem, { mode: 0o600 });
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    writeFileSync(join(dir, 'sa.key'), privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, { mode: 0o600 });
    writeFileSync(join(dir, 'sa.pub'), publicKey.export({ type: 'spki', format: 'pem' }) as string);
    const adminToken = randomBytes(24).toString('hex');
    writeFileSync(join(dir, 'tokens.csv'), `${adminToken},admin,admin,"system:masters"\n`, { mode: 0o600 });
    // Every request once (at ResponseComplete), without bodies: enough to count the calls each client makes.
    writeFileSync(
      join(dir, 'audit-policy.yaml'),
      'apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived, ResponseStarted]\nrules:\n- level: Metadata\n',
    );
    const auditLog = join(dir, 'audit.log');

    const apiserver = startDaemon('kube-apiserver', parts.kubeApiserver, [
      `--etcd-servers=http://127.0.0.1:${etcdClient}`,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      `--secure-port=${apiPort}`,
      `--cert-dir=${join(dir, 'certs')}`,
      `--tls-cert-file=${join(dir, 'apiserver.crt')}`,
      `--tls-private-key-file=${join(dir, 'apiserver.key')}`,
      `--token-auth-file=${join(dir, 'tokens.csv')}`,
      `--service-account-issuer=${SERVICE_ACCOUNT_ISSUER}`,
      `--service-account-key-file=${join(dir, 'sa.pub')}`,
      `--service-account-signing-key-file=${join(dir, 'sa.key')}`,
      '--service-cluster-ip-range=10.96.0.0/16',
      '--authorization-mode=RBAC',
      // No kubelet or controller manager runs: nothing answers for the kubernetes Service's endpoints.
      '--endpoint-reconciler-type=none',
      '--enable-priority-and-fairness=false',
      `--audit-policy-file=${join(dir, 'audit-policy.yaml')}`,
      `--audit-log-path=${auditLog}`,
      '--audit-log-mode=blocking',
      '--profiling=false',
      '--v=0',
    ]);
    daemons.push(apiserver);

    const server = `https://127.0.0.1:${apiPort}`;
    const kube = createKubeClient(server, adminToken, pki.caCertPem);
    await waitForReady(kube, apiserver);

    const kubeconfig = join(dir, 'kubeconfig');
    writeFileSync(
      kubeconfig,
      [
        'apiVersion: v1',
        'kind: Config',
        'clusters:',
        `- name: test\n  cluster:\n    server: ${server}\n    certificate-authority: ${caFile}`,
        'users:',
        `- name: admin\n  user:\n    token: ${adminToken}`,
        'contexts:',
        '- name: test\n  context:\n    cluster: test\n    user: admin',
        'current-context: test',
        '',
      ].join('\n'),
      { mode: 0o600 },
    );

    await applyCrds(kube, parts.drivers[crdsFrom].crds);

    const installCsiDriver = async (options: CsiDriverOptions = {}): Promise<void> => {
      const existing = await kube.find('storage.k8s.io/v1', 'CSIDriver', DRIVER_NAME);
      if (existing) await kube.delete('storage.k8s.io/v1', 'CSIDriver', DRIVER_NAME);
      await kube.create({
        apiVersion: 'storage.k8s.io/v1',
        kind: 'CSIDriver',
        metadata: { name: DRIVER_NAME },
        spec: {
          podInfoOnMount: true,
          attachRequired: false,
          volumeLifecycleModes: ['Ephemeral'],
          tokenRequests: TOKEN_AUDIENCES.map((audience) => ({ audience })),
          requiresRepublish: options.requiresRepublish ?? true,
          ...(options.serviceAccountTokenInSecrets === undefined ? {} : { serviceAccountTokenInSecrets: options.serviceAccountTokenInSecrets }),
        },
      });
    };
    await installCsiDriver();

    return { kube, pki, kubeconfig, issuer: { issuer: SERVICE_ACCOUNT_ISSUER, publicKey }, dir, auditLog, daemons, installCsiDriver, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

async function waitForReady(kube: KubeClient, apiserver: Daemon): Promise<void> {
  const deadline = Date.now() + 120_000;
  let last = '';
  while (Date.now() < deadline) {
    if (apiserver.exited()) throw new Error(`kube-apiserver exited:\n${apiserver.logs().slice(-4000)}`);
    try {
      await kube.request('GET', '/readyz');
      // The default namespace is created by the API server's own bootstrap controller, shortly after readyz.
      if (await kube.find('v1', 'Namespace', 'default')) return;
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`kube-apiserver was not ready within 120 s (${last}):\n${apiserver.logs().slice(-4000)}`);
}

/** Creates every CRD in the driver module's config/crd/bases and waits until each is Established. */
async function applyCrds(kube: KubeClient, crdDir: string): Promise<void> {
  const names: string[] = [];
  for (const file of readdirSync(crdDir).filter((f) => f.endsWith('.yaml')).sort()) {
    for (const doc of parseAllDocuments(readFileSync(join(crdDir, file), 'utf8'))) {
      const crd = doc.toJS() as KubeObject | null;
      if (!crd) continue;
      await kube.create(crd);
      names.push(crd.metadata.name);
    }
  }
  const deadline = Date.now() + 30_000;
  for (const name of names) {
    for (;;) {
      const crd = await kube.get<KubeObject & { status?: { conditions?: Array<{ type: string; status: string }> } }>(
        'apiextensions.k8s.io/v1',
        'CustomResourceDefinition',
        name,
      );
      if (crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True')) break;
      if (Date.now() > deadline) throw new Error(`CRD ${name} was not Established within 30 s`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
