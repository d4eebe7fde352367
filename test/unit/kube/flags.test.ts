import { parseCommandLine } from '../../../src/cli/flags';

const run = (argv: string[]) => {
  const parsed = parseCommandLine(argv);
  if (parsed.kind !== 'run') throw new Error(parsed.kind === 'error' ? parsed.message : parsed.kind);
  return parsed.config;
};

it('has every Kubernetes API feature off by default', () => {
  expect(run([])).toMatchObject({
    kubeconfig: '',
    rotationFailureEvents: false,
    workloadIdentityFromServiceAccount: false,
    nodeIdentityPolicy: 'allow',
    nodeIdentityAllowedNamespaceLabel: undefined,
  });
});

it('reads the feature flags', () => {
  expect(
    run([
      '--kubeconfig=/etc/kube/config',
      '--rotation-failure-events',
      '--workload-identity-from-service-account=true',
      '--node-identity-policy',
      'deny',
      '--node-identity-allowed-namespace-label=example.com/node-identity=allowed',
    ]),
  ).toMatchObject({
    kubeconfig: '/etc/kube/config',
    rotationFailureEvents: true,
    workloadIdentityFromServiceAccount: true,
    nodeIdentityPolicy: 'deny',
    nodeIdentityAllowedNamespaceLabel: { key: 'example.com/node-identity', value: 'allowed' },
  });
  expect(run(['--node-identity-policy=deny', '--node-identity-allowed-namespace-label=trusted']).nodeIdentityAllowedNamespaceLabel).toEqual({
    key: 'trusted',
    value: undefined,
  });
});

it.each([
  [['--node-identity-policy=refuse'], 'expected allow or deny'],
  [['--node-identity-policy=deny', '--node-identity-allowed-namespace-label=a=b=c'], 'KEY or KEY=VALUE'],
  [['--node-identity-allowed-namespace-label=trusted'], 'only with --node-identity-policy=deny'],
])('refuses %j', (argv, message) => {
  const parsed = parseCommandLine(argv);
  expect(parsed.kind).toBe('error');
  expect(parsed.kind === 'error' && parsed.message).toContain(message);
});
