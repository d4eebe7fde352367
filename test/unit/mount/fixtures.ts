/** Builders for mount attributes as the driver sends them. */
export function objectsYaml(entries: string[]): string {
  const items = entries.map((e) => `    - |\n${e.split('\n').map((l) => `      ${l}`).join('\n')}`).join('\n');
  return `array:\n${items}\n`;
}

export function attributes(overrides: Record<string, string | undefined> = {}): Record<string, string> {
  const base: Record<string, string | undefined> = {
    'csi.storage.k8s.io/pod.name': 'web-0',
    'csi.storage.k8s.io/pod.namespace': 'shop',
    'csi.storage.k8s.io/pod.uid': '6f0e-uid',
    'csi.storage.k8s.io/serviceAccount.name': 'default',
    secretProviderClass: 'shop-secrets',
    useVMManagedIdentity: 'true',
    keyvaultName: 'shop-kv',
    tenantID: '72f988bf-86f1-41af-91ab-2d7cd011db47',
    objects: objectsYaml(['objectName: db-password\nobjectType: secret']),
    ...overrides,
  };
  return Object.fromEntries(Object.entries(base).filter((e): e is [string, string] => e[1] !== undefined));
}
