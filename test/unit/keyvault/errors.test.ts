import { RestError } from '@azure/core-rest-pipeline';
import { AuthenticationError, CredentialUnavailableError } from '@azure/identity';
import { toProviderError, type ReadContext } from '../../../src/keyvault/errors';

const ctx: ReadContext = {
  vaultName: 'shop-kv',
  vaultUrl: 'https://shop-kv.vault.azure.net/',
  objectType: 'secret',
  objectName: 'db-password',
  version: '',
  identity: "the node's system-assigned managed identity",
};

describe('toProviderError', () => {
  it.each([
    [404, 'SecretNotFound', 'NotFound', ['secret "db-password" was not found in Key Vault "shop-kv"', '404 SecretNotFound', 'objectName']],
    [403, 'Forbidden', 'PermissionDenied', ["system-assigned managed identity may not read", 'Key Vault Secrets User', '403 Forbidden']],
    [401, 'Unauthorized', 'Unauthenticated', ['rejected the token', '401']],
    [429, 'Throttled', 'ResourceExhausted', ['throttled', '429']],
    [503, 'ServiceUnavailable', 'Unavailable', ['failed to serve', '503']],
    [400, 'BadParameter', 'InvalidArgument', ['rejected the request', '400 BadParameter']],
  ])('maps HTTP %d %s to %s with object, vault and cause', (statusCode, code, status, fragments) => {
    const err = toProviderError(new RestError('service said so', { statusCode, code }), ctx);
    expect(err.status).toBe(status);
    for (const fragment of fragments) expect(err.message).toContain(fragment);
    // The service's text is never shown: it may quote what was read.
    expect(err.message).not.toContain('service said so');
    expect(err.cause).toBeInstanceOf(RestError);
  });

  it('tells a disabled version apart from missing access', () => {
    const err = toProviderError(
      new RestError('Operation get is not allowed on a disabled secret.', { statusCode: 403, code: 'Forbidden' }),
      ctx,
    );
    expect(err.status).toBe('FailedPrecondition');
    expect(err.message).toContain('secret "db-password" is disabled in Key Vault "shop-kv"');
    expect(err.message).toContain('enable it');
    expect(err.message).not.toContain('grant');
  });

  it('reports an unreachable vault with its URL', () => {
    const err = toProviderError(new RestError('connect ECONNREFUSED', { code: 'ECONNREFUSED' }), ctx);
    expect(err.status).toBe('Unavailable');
    expect(err.message).toContain('could not reach Key Vault "shop-kv" at https://shop-kv.vault.azure.net/');
    expect(err.message).toContain('ECONNREFUSED');
  });

  it('reports token failures with the identity and the service description', () => {
    const auth = new AuthenticationError(400, { error: 'invalid_request', error_description: 'Identity not found' });
    const err = toProviderError(auth, ctx);
    expect(err.status).toBe('Unauthenticated');
    expect(err.message).toContain("could not get a token for the node's system-assigned managed identity");
    expect(err.message).toContain('400 invalid_request');
    expect(err.message).not.toContain('Identity not found');
    expect(toProviderError(new CredentialUnavailableError('IMDS unreachable'), ctx).status).toBe('Unavailable');
    const unknown = toProviderError(new CredentialUnavailableError('ManagedIdentityCredential: Identity not found'), ctx);
    expect(unknown.status).toBe('Unauthenticated');
    expect(unknown.message).toContain('check userAssignedIdentityID');
  });

  it('never shows the service\'s text, nor a parser message that quotes a body', () => {
    const jwt = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJjYW5hcnkifQ.c2lnbmF0dXJl';
    const err = toProviderError(new RestError(`bad token ${jwt}`, { statusCode: 401 }), ctx);
    expect(err.message).not.toContain(jwt);
    const parse = toProviderError(new RestError('Unexpected token s in JSON: "secret-canary', { statusCode: 200, code: 'PARSE_ERROR' }), ctx);
    expect(parse.message).not.toContain('secret-canary');
    const internal = toProviderError(new TypeError("Cannot read properties of undefined (reading 'error')"), ctx);
    expect(internal.message).not.toContain('Cannot read');
    expect(internal.message).toContain('TypeError');
  });
});

describe('toProviderError: answers an operator fixes in one step (issue 12)', () => {
  const uai = { ...ctx, identity: "the node's system-assigned managed identity" };

  it.each([
    ['CredentialUnavailableError', new CredentialUnavailableError('ManagedIdentityCredential: Multiple user assigned identities exist, please specify the clientId / resourceId of the identity in the token request')],
    ['AuthenticationError', new AuthenticationError(400, { error: 'invalid_request', error_description: 'Multiple user assigned identities exist, please specify the clientId / resourceId of the identity in the token request' })],
  ])('"Multiple user assigned identities exist" (%s) is InvalidArgument and says to set userAssignedIdentityID', (_kind, cause) => {
    const err = toProviderError(cause, uai);
    expect(err.status).toBe('InvalidArgument');
    expect(err.message).toContain('set userAssignedIdentityID to the client ID of one of the node pool');
    expect(err.message).toContain('Multiple user assigned identities exist');
    expect(err.message).not.toContain('system-assigned managed identity');
  });

  it('a 403 under Azure RBAC keeps the caller ids and the denied action next to the role', () => {
    const service =
      'Caller is not authorized to perform action on resource.\r\nIf role assignments, deny assignments or role definitions ' +
      'were changed recently, please observe propagation time.\r\nCaller: appid=11111111-2222-3333-4444-555555555555;' +
      'oid=66666666-7777-8888-9999-000000000000;iss=https://sts.windows.net/t/\r\n' +
      "Action: 'Microsoft.KeyVault/vaults/secrets/getSecret/action'\r\nResource: '/subscriptions/x/resourcegroups/rg/providers/" +
      "microsoft.keyvault/vaults/shop-kv/secrets/db-password'\r\nAssignment: (not found)\r\nDenyAssignmentId: null\r\n" +
      'DecisionReason: null \r\nVault: shop-kv;location=eastus\r\n';
    const err = toProviderError(new RestError(service, { statusCode: 403, code: 'Forbidden' }), ctx);
    expect(err.status).toBe('PermissionDenied');
    expect(err.message).toBe(
      `the node's system-assigned managed identity may not read secret "db-password" from Key Vault "shop-kv" ` +
        '(403 Forbidden: Caller is not authorized to perform action on resource; caller ' +
        'appid=11111111-2222-3333-4444-555555555555;oid=66666666-7777-8888-9999-000000000000; action ' +
        'Microsoft.KeyVault/vaults/secrets/getSecret/action): grant that principal the "Key Vault Secrets User" role on ' +
        'the vault (or on the secret)',
    );
  });

  it('a 403 under access policies keeps the caller ids and the missing permission', () => {
    const service =
      "The user, group or application 'appid=aaaa;oid=bbbb;iss=https://sts.windows.net/t/' does not have secrets get " +
      "permission on key vault 'shop-kv;location=eastus'. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125287";
    const err = toProviderError(new RestError(service, { statusCode: 403, code: 'Forbidden' }), ctx);
    expect(err.message).toContain('caller appid=aaaa;oid=bbbb');
    expect(err.message).toContain('missing permission secrets get');
    expect(err.message).toContain('add an access policy for that principal with secrets get permission');
  });

  it('a 403 from the vault firewall names the address and says to allow it', () => {
    const service = 'Client address is not authorized and caller is not a trusted service.\r\nClient address: 203.0.113.7\r\nCaller: appid=a;oid=b\r\nVault: shop-kv;location=eastus';
    const err = toProviderError(new RestError(service, { statusCode: 403, code: 'Forbidden' }), ctx);
    expect(err.status).toBe('PermissionDenied');
    expect(err.message).toContain('from address 203.0.113.7');
    expect(err.message).toContain("vault's firewall");
  });
});

describe('toProviderError: a listing of the vault (objects selected by prefix, pattern or tags)', () => {
  const listing: ReadContext = { ...ctx, objectName: '', listing: true };

  it('a 403 names the data action, the role on the vault itself and the access policy permission', () => {
    // What the SDK's paging helper throws: the service's text is gone, only the status and code remain.
    const err = toProviderError(new RestError('Pagination failed with unexpected statusCode 403', { statusCode: 403, code: 'Forbidden' }), listing);
    expect(err.status).toBe('PermissionDenied');
    expect(err.message).toBe(
      `the node's system-assigned managed identity may not list the secrets of Key Vault "shop-kv" (403 Forbidden): ` +
        'listing needs the data action Microsoft.KeyVault/vaults/secrets/readMetadata/action: with Azure RBAC grant ' +
        'that principal the "Key Vault Secrets User" role on the vault itself (a role on single secrets does not allow ' +
        'listing them); with access policies add the List permission for secrets (besides Get) to its access policy',
    );
  });

  it('keeps the caller and the action when the service text is there (RBAC)', () => {
    const service =
      "Caller is not authorized to perform action on resource.\r\nCaller: appid=1111;oid=2222;iss=https://sts.windows.net/t/\r\n" +
      "Action: 'Microsoft.KeyVault/vaults/secrets/readMetadata/action'\r\n";
    const err = toProviderError(new RestError(service, { statusCode: 403, code: 'Forbidden' }), listing);
    expect(err.message).toContain('(403 Forbidden: Caller is not authorized to perform action on resource; caller appid=1111;oid=2222; action Microsoft.KeyVault/vaults/secrets/readMetadata/action)');
  });

  it('other failures name the listing, not an object', () => {
    expect(toProviderError(new RestError('x', { statusCode: 503, code: 'ServiceUnavailable' }), listing).message).toBe(
      'Key Vault "shop-kv" failed to serve the list of secrets (503 ServiceUnavailable)',
    );
  });
});
