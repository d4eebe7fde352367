/**
 * The real Secrets Store CSI Driver (v1.6.0 or v1.5.6) as its DaemonSet runs it: the CSI socket for kubelet, the
 * providers directory that holds azure.sock, the API server through a kubeconfig, one node id.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { freePorts } from '../../support/ports';
import type { Cluster } from './cluster';
import { components, type DriverVersion } from './components';
import { startDaemon, type Daemon } from './daemon';

export interface DriverOptions {
  /** The directory the providers' sockets are in (the DaemonSet's /var/run/secrets-store-csi-providers). */
  providerDir: string;
  nodeId: string;
  /** --enable-secret-rotation with this --rotation-poll-interval (e.g. "2s"). */
  rotationPollInterval?: string;
}

export interface Driver {
  version: DriverVersion;
  csiSocket: string;
  nodeId: string;
  daemon: Daemon;
  stop(): Promise<void>;
}

export async function startDriver(cluster: Cluster, version: DriverVersion, options: DriverOptions): Promise<Driver> {
  const dir = join(cluster.dir, `driver-${version}-${options.nodeId}`);
  mkdirSync(dir, { recursive: true });
  const csiSocket = join(dir, 'csi.sock');
  const [metricsPort] = await freePorts(1);
  const args = [
    `--endpoint=unix://${csiSocket}`,
    `--nodeid=${options.nodeId}`,
    `--provider-volume=${options.providerDir}`,
    // The default second path is the host's /etc/kubernetes/...; keep the driver to this test's directory.
    `--additional-provider-volume-paths=${options.providerDir}`,
    `--metrics-addr=127.0.0.1:${metricsPort}`,
    '--provider-health-check=false',
    '-v=5',
  ];
  if (options.rotationPollInterval) args.push('--enable-secret-rotation=true', `--rotation-poll-interval=${options.rotationPollInterval}`);
  const daemon = startDaemon(`driver ${version}`, components().drivers[version].binary, args, { KUBECONFIG: cluster.kubeconfig });
  cluster.daemons.push(daemon);
  await daemon.waitForLog(/Listening for connections/, 60_000);
  return { version, csiSocket, nodeId: options.nodeId, daemon, stop: () => daemon.stop() };
}
