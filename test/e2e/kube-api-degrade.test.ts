/**
 * The Kubernetes API features when the API cannot be reached: the real provider process with its features on, an
 * API server address where nothing listens (as when the API server is down), and no in-cluster configuration at all.
 * Mounts behave exactly as without the features, one log line says what is wrong, and only a policy that needs the
 * API to decide refuses (fail closed). The real API server's side is test/k8s/kube-api.test.ts.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startAzureStandIns, type AzureStandIns } from '../support/azure-standins';
import type { MountRequestInput } from '../support/driver-client';
import { freePorts } from '../support/ports';
import { registerProviderCleanup, startProvider, type ProviderProcess } from '../support/provider-process';
import { objects, rejectionOf } from '../support/spc';

registerProviderCleanup();

const SYSTEM = 'node-system-identity';
const VALUE = 'canary-kube-degrade-value-a41f';

let azure: AzureStandIns;
let kubeconfig: string;

function request(podUid: string, parameters: Record<string, string> = {}): MountRequestInput {
  return {
    attributes: {
      'csi.storage.k8s.io/pod.name': 'shop-0',
      'csi.storage.k8s.io/pod.namespace': 'shop',
      'csi.storage.k8s.io/pod.uid': podUid,
      'csi.storage.k8s.io/serviceAccount.name': 'shop',
      secretProviderClass: 'shop-secrets',
      useVMManagedIdentity: 'true',
      keyvaultName: 'degrade-kv',
      tenantID: azure.tenantId,
      objects: objects(['objectName: db\nobjectType: secret']),
      ...parameters,
    },
    permission: '420',
    targetPath: `/var/lib/kubelet/pods/${podUid}/volumes/kubernetes.io~csi/secrets/mount`,
  };
}

const count = (text: string, needle: string): number => text.split(needle).length - 1;

beforeAll(async () => {
  azure = await startAzureStandIns({ identities: { systemAssigned: { id: SYSTEM } } });
  azure.keyVault.addVault('degrade-kv', { allow: [SYSTEM] });
  azure.keyVault.setSecret('degrade-kv', 'db', VALUE);
  const [closedPort] = await freePorts(1);
  kubeconfig = join(azure.dir, 'kubeconfig');
  writeFileSync(
    kubeconfig,
    [
      'apiVersion: v1',
      'kind: Config',
      `clusters:\n- name: down\n  cluster:\n    server: https://127.0.0.1:${closedPort}\n    certificate-authority: ${azure.caFile}`,
      'users:\n- name: provider\n  user:\n    token: canary-kube-api-token-0d3b',
      'contexts:\n- name: down\n  context:\n    cluster: down\n    user: provider',
      'current-context: down',
      '',
    ].join('\n'),
  );
});

afterAll(async () => {
  await azure?.close();
});

async function expectRotationUnaffected(provider: ProviderProcess, podUid: string): Promise<void> {
  const ok = await provider.client.mount(request(podUid));
  expect(ok.files.map((f) => f.contents.toString())).toEqual([VALUE]);
  azure.keyVault.revoke('degrade-kv', SYSTEM);
  try {
    for (let i = 0; i < 3; i++) {
      const err = await rejectionOf(provider.client.mount(request(podUid)));
      // Key Vault's own reason, as without the feature.
      expect(err.details).toContain('degrade-kv');
      expect(err.details).not.toContain('Kubernetes');
    }
  } finally {
    azure.keyVault.grant('degrade-kv', SYSTEM);
  }
  await provider.waitForLog('cannot post rotation failure events');
  expect(count(provider.logs(), 'cannot post rotation failure events')).toBe(1);
  expect((await provider.client.mount(request(podUid))).files).toHaveLength(1);
}

describe('the API server is down', () => {
  it('rotation failure events: mounts unaffected, one log line', async () => {
    const provider = await startProvider({ env: azure.providerEnv(), args: ['--kubeconfig', kubeconfig, '--rotation-failure-events'] });
    try {
      await expectRotationUnaffected(provider, 'uid-down-1');
      expect(provider.logs()).toContain('cannot reach the API server');
      expect(provider.logs()).not.toContain('canary-kube-api-token-0d3b');
    } finally {
      await provider.stop();
    }
  });

  it('a node identity policy by namespace label refuses node identities (fail closed) before any Azure call', async () => {
    const provider = await startProvider({
      env: azure.providerEnv(),
      args: ['--kubeconfig', kubeconfig, '--node-identity-policy=deny', '--node-identity-allowed-namespace-label=trusted'],
    });
    try {
      azure.keyVault.clearRequests();
      const err = await rejectionOf(provider.client.mount(request('uid-down-2')));
      expect(err.details).toContain('useVMManagedIdentity is allowed only in namespaces labelled trusted');
      expect(err.details).toContain('could not be read from the Kubernetes API');
      expect(err.details).toContain('the mount is refused until they can be');
      expect(azure.keyVault.count()).toBe(0);
    } finally {
      await provider.stop();
    }
  });

  it('a cluster-wide deny needs no API: refused with why and what to use instead', async () => {
    const provider = await startProvider({ env: azure.providerEnv(), args: ['--node-identity-policy', 'deny'] });
    try {
      const err = await rejectionOf(provider.client.mount(request('uid-deny')));
      expect(err.details).toContain("useVMManagedIdentity is refused by this cluster's node identity policy (--node-identity-policy=deny)");
      expect(err.details).toContain('use workload identity instead');
      expect(provider.logs()).not.toContain('Kubernetes API client');
    } finally {
      await provider.stop();
    }
  });
});

describe('no Kubernetes configuration at all (outside a pod, no --kubeconfig)', () => {
  it('starts, says once why the features are unavailable, and mounts as before', async () => {
    // The test process's environment is not passed on: no KUBERNETES_SERVICE_HOST, as on a machine outside a cluster.
    const provider = await startProvider({ env: azure.providerEnv(), args: ['--rotation-failure-events'] });
    try {
      expect(count(provider.logs(), 'cannot configure the Kubernetes API client')).toBe(1);
      await expectRotationUnaffected(provider, 'uid-none');
    } finally {
      await provider.stop();
    }
  });
});

describe('with every feature off (the default)', () => {
  it('configures no API client and logs once per class that every pod on the node can use its identity', async () => {
    const provider = await startProvider({ env: azure.providerEnv() });
    try {
      await provider.client.mount(request('uid-default-1'));
      await provider.client.mount(request('uid-default-2'));
      expect(provider.logs()).not.toContain('Kubernetes API client');
      expect(count(provider.logs(), 'every pod on this node can use')).toBe(1);
    } finally {
      await provider.stop();
    }
  });
});
