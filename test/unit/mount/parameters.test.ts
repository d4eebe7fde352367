import { ProviderError } from '../../../src/errors';
import { parseBoolParameter, parseMountParameters } from '../../../src/mount/parameters';
import { attributes, objectsYaml } from './fixtures';

const defaults = { cloudName: 'AzurePublicCloud' };
const TOKENS = 'csi.storage.k8s.io/serviceAccount.tokens';
const C1 = '0c100000-0000-4000-8000-0000000000c1';
const C2 = '0c200000-0000-4000-8000-0000000000c2';
const tokensAttribute = (tokens: Record<string, { token: string; expirationTimestamp?: string }>): string => JSON.stringify(tokens);
const parse = (overrides: Record<string, string | undefined>, secrets: Record<string, string> = {}) =>
  parseMountParameters(attributes(overrides), secrets, defaults);

function expectInvalid(run: () => unknown, ...fragments: string[]): void {
  let error: unknown;
  try {
    run();
  } catch (err) {
    error = err;
  }
  expect(error).toBeInstanceOf(ProviderError);
  expect((error as ProviderError).status).toBe('InvalidArgument');
  for (const fragment of fragments) expect((error as ProviderError).message).toContain(fragment);
}

describe('parseMountParameters', () => {
  it('reads a VMSS system-assigned identity SecretProviderClass', () => {
    const spec = parse({});
    expect(spec).toMatchObject({
      pod: { name: 'web-0', namespace: 'shop', uid: '6f0e-uid', serviceAccountName: 'default' },
      secretProviderClass: 'shop-secrets',
      vaultName: 'shop-kv',
      tenantId: '72f988bf-86f1-41af-91ab-2d7cd011db47',
      cloudName: 'AzurePublicCloud',
      identity: { mode: 'vmManagedIdentity', userAssigned: undefined },
    });
    expect(spec.objects).toHaveLength(1);
  });

  it('selects a user-assigned identity by client id or by resource id', () => {
    const clientId = '00000000-1111-2222-3333-444444444444';
    expect(parse({ userAssignedIdentityID: clientId }).identity).toEqual({
      mode: 'vmManagedIdentity',
      userAssigned: { kind: 'clientId', value: clientId },
    });
    const resourceId =
      '/subscriptions/s1/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/shop-id';
    expect(parse({ userAssignedIdentityID: resourceId }).identity).toEqual({
      mode: 'vmManagedIdentity',
      userAssigned: { kind: 'resourceId', value: resourceId },
    });
    expectInvalid(() => parse({ userAssignedIdentityID: 'not-an-id' }), 'userAssignedIdentityID', 'GUID');
  });

  it('trims values and accepts the deprecated tenantId spelling', () => {
    const spec = parse({ tenantID: undefined, tenantId: '  contoso.onmicrosoft.com  ', keyvaultName: ' shop-kv ' });
    expect(spec.tenantId).toBe('contoso.onmicrosoft.com');
    expect(spec.vaultName).toBe('shop-kv');
  });

  it.each([
    ['pod name', { 'csi.storage.k8s.io/pod.name': undefined }, ['csi.storage.k8s.io/pod.name', 'podInfoOnMount']],
    ['pod namespace', { 'csi.storage.k8s.io/pod.namespace': '' }, ['csi.storage.k8s.io/pod.namespace']],
    ['keyvaultName', { keyvaultName: undefined }, ['keyvaultName is required']],
    ['tenantID', { tenantID: undefined }, ['tenantID is required']],
    ['short vault name', { keyvaultName: 'kv' }, ['keyvaultName "kv"', '3-24']],
    ['long vault name', { keyvaultName: 'a'.repeat(25) }, ['keyvaultName', '3-24']],
    ['vault URL instead of name', { keyvaultName: 'https://shop.vault.azure.net' }, ['keyvaultName', 'not the URL']],
    ['bad boolean', { useVMManagedIdentity: 'yes' }, ['useVMManagedIdentity "yes"', 'boolean']],
    ['unknown cloud', { cloudName: 'Mars' }, ['cloudName "Mars"', 'AzurePublicCloud', 'AzureStackCloud']],
  ])('rejects a missing or bad %s', (_name, overrides, fragments) => {
    expectInvalid(() => parse(overrides), ...fragments);
  });

  it('rejects two identity switches, naming both', () => {
    expectInvalid(
      () => parse({ usePodIdentity: 'true', useVMManagedIdentity: 'TRUE' }),
      'usePodIdentity and useVMManagedIdentity',
      'at most one',
    );
  });

  it('checks in the documented order: pod info before the vault name', () => {
    expectInvalid(() => parse({ 'csi.storage.k8s.io/pod.name': undefined, keyvaultName: undefined }), 'pod.name');
  });

  it('accepts every boolean spelling of the reference', () => {
    for (const word of ['1', 't', 'T', 'TRUE', 'true', 'True']) expect(parseBoolParameter(word, 'p')).toBe(true);
    for (const word of ['', '0', 'f', 'F', 'FALSE', 'false', 'False']) expect(parseBoolParameter(word, 'p')).toBe(false);
  });

  it('matches cloud names case-insensitively and falls back to --cloud-name', () => {
    expect(parse({ cloudName: 'azureusgovernmentcloud' }).cloudName).toBe('AzureUSGovernmentCloud');
    expect(parseMountParameters(attributes(), {}, { cloudName: 'AzureChinaCloud' }).cloudName).toBe('AzureChinaCloud');
  });

  it('resolves the other identity modes as the reference does', () => {
    const base = { useVMManagedIdentity: undefined };
    const wi = tokensAttribute({ 'api://AzureADTokenExchange': { token: 'wi-token', expirationTimestamp: '2030-01-02T03:04:05Z' } });
    expect(parse({ ...base, clientID: C1, [TOKENS]: wi }).identity).toEqual({
      mode: 'workloadIdentity',
      clientId: C1,
      serviceAccountToken: {
        namespace: 'shop',
        name: 'default',
        audience: 'api://AzureADTokenExchange',
        token: 'wi-token',
        expiresAt: Date.parse('2030-01-02T03:04:05Z'),
      },
    });
    expect(parse({ ...base, usePodIdentity: 'true' }).identity).toEqual({
      mode: 'podIdentity',
      pod: { name: 'web-0', namespace: 'shop', uid: '6f0e-uid' },
    });
    const tp = tokensAttribute({ 'api://AKSIdentityBinding': { token: 'tp-token', expirationTimestamp: 'not a date' } });
    expect(parse({ ...base, useAzureTokenProxy: 'true', clientID: C2, [TOKENS]: tp }).identity).toEqual({
      mode: 'tokenProxy',
      clientId: C2,
      serviceAccountToken: { namespace: 'shop', name: 'default', audience: 'api://AKSIdentityBinding', token: 'tp-token', expiresAt: undefined },
    });
    expect(parse(base, { ClientID: 'sp-1', CLIENTSECRET: 's3cret' }).identity).toEqual({
      mode: 'servicePrincipal',
      clientId: 'sp-1',
      clientSecret: 's3cret',
    });
  });

  it('says how to choose an identity when none is given, without echoing secrets', () => {
    let message = '';
    try {
      parse({ useVMManagedIdentity: undefined }, { clientid: 'sp-1', other: 'hunter2' });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toContain('clientsecret');
    expect(message).toContain('useVMManagedIdentity');
    expect(message).not.toContain('hunter2');
  });

  it.each([
    ['no nodePublishSecretRef', {}, ['no nodePublishSecretRef', 'clientid and clientsecret']],
    ['no clientid', { clientSecret: 'hunter2' }, ['no "clientid"']],
    ['an empty clientsecret', { clientid: 'sp-1', clientsecret: ' ' }, ['no "clientsecret"']],
  ])('a service principal with %s fails naming what is missing', (_name, secrets, fragments) => {
    expectInvalid(() => parse({ useVMManagedIdentity: undefined }, secrets as Record<string, string>), ...fragments);
    try {
      parse({ useVMManagedIdentity: undefined }, secrets as Record<string, string>);
    } catch (err) {
      expect((err as Error).message).not.toContain('hunter2');
    }
  });

  describe('service account tokens (workload identity, token proxy)', () => {
    const wiBase = { useVMManagedIdentity: undefined, clientID: C1 };
    it.each([
      ['missing', undefined, ['no service account token', 'CSIDriver', 'api://AzureADTokenExchange', 'tokenRequests']],
      ['not JSON', '{"api://AzureADTokenExchange": "secret-token-text', ['is not valid JSON', 'CSIDriver']],
      ['an array', '["secret-token-text"]', ['not a JSON object']],
      ['for another audience', tokensAttribute({ 'api://other': { token: 'secret-token-text' } }), ['no token for audience api://AzureADTokenExchange', 'api://other']],
      ['empty', tokensAttribute({ 'api://AzureADTokenExchange': { token: ' ' } }), ['no token for audience']],
      ['not a string', '{"api://AzureADTokenExchange": {"token": 42}}', ['no token for audience']],
    ])('%s: fails before the network, saying what the CSIDriver must request, never echoing a token', (_name, tokens, fragments) => {
      let message = '';
      try {
        parse({ ...wiBase, [TOKENS]: tokens });
      } catch (err) {
        expect((err as ProviderError).status).toBe('InvalidArgument');
        message = (err as Error).message;
      }
      for (const fragment of fragments) expect(message).toContain(fragment);
      expect(message).not.toContain('secret-token-text');
    });

    it('the token proxy needs clientID and the api://AKSIdentityBinding token', () => {
      expectInvalid(() => parse({ useVMManagedIdentity: undefined, useAzureTokenProxy: 'true' }), 'clientID is empty');
      const wiOnly = tokensAttribute({ 'api://AzureADTokenExchange': { token: 't' } });
      expectInvalid(
        () => parse({ useVMManagedIdentity: undefined, useAzureTokenProxy: 'true', clientID: C1, [TOKENS]: wiOnly }),
        'useAzureTokenProxy is "true"',
        'api://AKSIdentityBinding',
      );
    });

    it('reads the tokens from secrets when kubelet puts them there (serviceAccountTokenInSecrets; driver v1.5 passes only those)', () => {
      const tokens = tokensAttribute({ 'api://AzureADTokenExchange': { token: 'from-secrets' } });
      const spec = parse({ ...wiBase, [TOKENS]: undefined }, { [TOKENS]: tokens });
      expect(spec.identity).toMatchObject({ mode: 'workloadIdentity', serviceAccountToken: { token: 'from-secrets' } });
    });

    it('kubelet\'s tokens in secrets are not a service principal\'s credentials', () => {
      const tokens = tokensAttribute({ 'api://AzureADTokenExchange': { token: 'secret-token-text' } });
      expectInvalid(() => parse({ useVMManagedIdentity: undefined }, { [TOKENS]: tokens }), 'the volume has no nodePublishSecretRef');
      const spec = parse({ useVMManagedIdentity: undefined }, { [TOKENS]: tokens, clientid: 'app', clientsecret: 's' });
      expect(spec.identity).toEqual({ mode: 'servicePrincipal', clientId: 'app', clientSecret: 's' });
    });

    it('the node managed identity ignores clientID and tokens', () => {
      expect(parse({ clientID: C1 }).identity).toEqual({ mode: 'vmManagedIdentity', userAssigned: undefined });
    });
  });

  describe('Azure Stack Hub', () => {
    it('needs cloudEnvFileName, checked before the identity', () => {
      expectInvalid(() => parse({ cloudName: 'AzureStackCloud', useVMManagedIdentity: undefined }), 'cloudEnvFileName is empty');
    });

    it('keeps cloudEnvFileName for AzureStackCloud and ignores it (with a warning) for other clouds', () => {
      expect(parse({ cloudName: 'azurestackcloud', cloudEnvFileName: ' /etc/kubernetes/stack.json ' }).cloudEnvFileName).toBe('/etc/kubernetes/stack.json');
      const spec = parse({ cloudName: 'AzurePublicCloud', cloudEnvFileName: '/etc/kubernetes/stack.json' });
      expect(spec.cloudEnvFileName).toBe('');
      expect(spec.warnings.join('\n')).toContain('cloudEnvFileName is ignored');
    });
  });

  it('warns about unknown object fields and an empty objects list', () => {
    expect(parse({ objects: objectsYaml(['objectName: a\nobjectType: secret\nobjectVerison: 1']) }).warnings).toEqual([
      'objects.array[0].objectVerison is not a known object field and is ignored',
    ]);
    expect(parse({ objects: 'array: []' }).warnings[0]).toContain('objects is empty');
  });
});
