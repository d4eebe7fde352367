/**
 * The real Kubernetes parts, as test/k8s/build.sh built them from their published Go modules. The suite never builds
 * or downloads anything itself: `npm run test:k8s` runs build.sh first, and a missing manifest says so.
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export const DRIVER_VERSIONS = ['v1.6.0', 'v1.5.6'] as const;
export type DriverVersion = (typeof DRIVER_VERSIONS)[number];

export interface Components {
  etcd: string;
  kubeApiserver: string;
  drivers: Record<DriverVersion, { binary: string; crds: string }>;
  /** The CSI spec's csi.proto from the module the driver was built with (kubelet's side of the wire). */
  csiProto: string;
  /** The reference provider (Azure's Go provider, the version AKS ships), for the differential parity test. */
  reference?: Record<string, string>;
}

let loaded: Components | undefined;

export function components(): Components {
  if (loaded) return loaded;
  const cache = process.env['CSI_K8S_CACHE'] ?? join(homedir(), '.cache', 'csi-provider-azure', 'k8s');
  const manifest = join(cache, 'manifest.json');
  if (!existsSync(manifest)) {
    throw new Error(`${manifest} is missing: run "npm run test:k8s" (it builds the driver, kube-apiserver and etcd first)`);
  }
  const parsed = JSON.parse(readFileSync(manifest, 'utf8')) as Components;
  for (const path of [parsed.etcd, parsed.kubeApiserver, parsed.csiProto, ...DRIVER_VERSIONS.map((v) => parsed.drivers[v].binary)]) {
    if (!existsSync(path)) throw new Error(`${path} (from ${manifest}) is missing: run test/k8s/build.sh again`);
  }
  loaded = parsed;
  return parsed;
}

/** The reference provider binary build.sh built (a manifest from before it did says so). */
export function referenceBinary(version = 'v1.8.2'): string {
  const path = components().reference?.[version];
  if (!path || !existsSync(path)) throw new Error(`the reference provider ${version} is not built: run test/k8s/build.sh again`);
  return path;
}
