/**
 * The chart's RBAC for the Kubernetes API features: nothing by default (no role, no token in the pods), and for each
 * feature exactly the rule it needs, with the service account token mounted and the flag passed.
 */
import { renderChart, type K8sObject } from './support/helm';

interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}
type PodTemplate = K8sObject & {
  spec: { template: { spec: { automountServiceAccountToken: boolean; volumes: Array<{ name: string }>; containers: Array<{ args: string[] }> } } };
};

async function render(kubernetesApi?: Record<string, unknown>) {
  const { objects } = await renderChart({ namespace: 'kube-system', ...(kubernetesApi ? { values: { kubernetesApi } } : {}) });
  const role = objects.find((o) => o.kind === 'ClusterRole') as (K8sObject & { rules: Rule[] }) | undefined;
  const binding = objects.find((o) => o.kind === 'ClusterRoleBinding') as (K8sObject & { subjects: unknown[]; roleRef: { name: string } }) | undefined;
  const daemonSets = objects.filter((o) => o.kind === 'DaemonSet') as PodTemplate[];
  const serviceAccount = objects.find((o) => o.kind === 'ServiceAccount') as K8sObject & { automountServiceAccountToken: boolean };
  return { role, binding, daemonSets, serviceAccount };
}

it('grants nothing and mounts no token by default', async () => {
  const { role, binding, daemonSets, serviceAccount } = await render();
  expect(role).toBeUndefined();
  expect(binding).toBeUndefined();
  expect(serviceAccount.automountServiceAccountToken).toBe(false);
  for (const ds of daemonSets) {
    expect(ds.spec.template.spec.automountServiceAccountToken).toBe(false);
    expect(ds.spec.template.spec.volumes.map((v) => v.name)).toContain('cluster-ca');
    expect(ds.spec.template.spec.containers[0]!.args.join(' ')).not.toMatch(/rotation-failure|node-identity|workload-identity-from/);
  }
});

it.each([
  [{ rotationFailureEvents: true }, [{ apiGroups: [''], resources: ['events'], verbs: ['create', 'patch'] }], ['--rotation-failure-events=true']],
  [{ workloadIdentityFromServiceAccount: true }, [{ apiGroups: [''], resources: ['serviceaccounts'], verbs: ['get'] }], ['--workload-identity-from-service-account=true']],
  [
    { nodeIdentityPolicy: { policy: 'deny', allowedNamespaceLabel: 'trusted=yes' } },
    [{ apiGroups: [''], resources: ['namespaces'], verbs: ['get'] }],
    ['--node-identity-policy=deny', '--node-identity-allowed-namespace-label=trusted=yes'],
  ],
  [{ checkAllClasses: true }, [{ apiGroups: ['secrets-store.csi.x-k8s.io'], resources: ['secretproviderclasses'], verbs: ['list'] }], []],
])('%j grants exactly what it needs and mounts the token', async (values, rules, flags) => {
  const { role, binding, daemonSets, serviceAccount } = await render(values);
  expect(role!.rules).toEqual(rules);
  expect(binding!.roleRef.name).toBe(role!.metadata.name);
  expect(binding!.subjects).toEqual([{ kind: 'ServiceAccount', name: serviceAccount.metadata.name, namespace: 'kube-system' }]);
  expect(serviceAccount.automountServiceAccountToken).toBe(true);
  for (const ds of daemonSets) {
    expect(ds.spec.template.spec.automountServiceAccountToken).toBe(true);
    // The automounted token volume brings ca.crt to the path the cluster-ca volume would use.
    expect(ds.spec.template.spec.volumes.map((v) => v.name)).not.toContain('cluster-ca');
    for (const flag of flags) expect(ds.spec.template.spec.containers[0]!.args).toContain(flag);
  }
});

it('a cluster-wide deny needs no API: no role, no token', async () => {
  const { role, daemonSets } = await render({ nodeIdentityPolicy: { policy: 'deny' } });
  expect(role).toBeUndefined();
  expect(daemonSets[0]!.spec.template.spec.automountServiceAccountToken).toBe(false);
  expect(daemonSets[0]!.spec.template.spec.containers[0]!.args).toContain('--node-identity-policy=deny');
});
