import { entraErrorOf, TokenRequestError, translateEntraError, type TokenErrorContext } from '../../../src/identity/token-errors';

const sp: TokenErrorContext = {
  mode: 'servicePrincipal',
  identity: 'the service principal with client ID app-1',
  clientId: 'app-1',
  tenantId: 'tenant-1',
  authorityHost: 'https://login.microsoftonline.com',
};
const wi: TokenErrorContext = { ...sp, mode: 'workloadIdentity', identity: 'the workload identity app-1', serviceAccount: 'shop/web' };

/** What @azure/identity throws for an Entra answer that reached MSAL as a server error. */
function msalServerError(code: number, word: string, description: string): Error {
  const e = new Error(
    `${word}: Error(s): ${code} - Timestamp: 2026-01-01 00:00:00Z - Description: AADSTS${code}: ${description} Trace ID: 1 Correlation ID: 2 ` +
      'Timestamp: 2026-01-01 00:00:00Z - Correlation ID: 2 - Trace ID: 1',
  );
  e.name = 'AuthenticationRequiredError';
  return e;
}

describe('Entra answers in SDK errors', () => {
  it('reads the AADSTS code and description from MSAL server errors, without trace ids', () => {
    expect(entraErrorOf(msalServerError(7000215, 'invalid_client', 'Invalid client secret provided.'))).toEqual({
      code: 7000215,
      error: 'invalid_client',
      description: 'AADSTS7000215: Invalid client secret provided.',
      status: undefined,
    });
  });

  it('reads AuthenticationError bodies, and scrubs anything token-shaped', () => {
    const e = Object.assign(new Error('x'), {
      name: 'AuthenticationError',
      statusCode: 400,
      errorResponse: { error: 'invalid_request', errorDescription: 'AADSTS50027: JWT eyJhbGciOi.eyJzdWIiOiJ4In0.c2lnbmF0dXJl is invalid' },
    });
    const answer = entraErrorOf(e)!;
    expect(answer).toMatchObject({ code: 50027, error: 'invalid_request', status: 400 });
    expect(answer.description).not.toContain('eyJ');
  });

  it('is undefined for errors that are not answers', () => {
    expect(entraErrorOf(new Error('boom'))).toBeUndefined();
    expect(entraErrorOf(null)).toBeUndefined();
  });
});

describe('translateEntraError', () => {
  it.each([
    [sp, 7000215, 'invalid_client', 'clientsecret in the nodePublishSecretRef Secret'],
    [sp, 700016, 'unauthorized_client', 'check clientid in the nodePublishSecretRef Secret ("app-1") and tenantID ("tenant-1")'],
    [wi, 700016, 'unauthorized_client', 'check clientID ("app-1")'],
    [sp, 90002, 'invalid_tenant', 'check tenantID ("tenant-1") and cloudName'],
    [wi, 70021, 'invalid_request', 'subject system:serviceaccount:shop:web and audience api://AzureADTokenExchange'],
    [{ ...wi, mode: 'tokenProxy' as const }, 70021, 'invalid_request', 'no identity binding grants service account shop/web'],
    [wi, 700024, 'invalid_client', "check the node's clock"],
  ])('%#: AADSTS%s gets a fix for the mode', (ctx, code, word, fix) => {
    const err = translateEntraError(msalServerError(code, word, 'Something.'), ctx) as TokenRequestError;
    expect(err).toBeInstanceOf(TokenRequestError);
    expect(err.status).toBe('Unauthenticated');
    expect(err.outcome).toBe('unauthenticated');
    expect(err.reason).toContain(`AADSTS${code}`);
    expect(err.reason).toContain('https://login.microsoftonline.com/tenant-1');
    expect(err.fix).toContain(fix);
    expect(err.message).toContain(`could not get a token for ${ctx.identity}`);
  });

  it('says which tenant the vault is in when it is not tenantID', () => {
    const e = Object.assign(new Error('The current credential is not configured to acquire tokens for tenant other-tenant. To enable…'), {
      name: 'CredentialUnavailableError',
    });
    const err = translateEntraError(e, sp) as TokenRequestError;
    expect(err.reason).toContain('the vault belongs to tenant other-tenant');
    expect(err.fix).toBe('set tenantID to the tenant of the Key Vault');
  });

  it('uses the recorded transport failure when MSAL only says network_error', () => {
    const e = Object.assign(new Error('network_error: See https://aka.ms/msal.js.errors#network_error for details'), { name: 'AuthenticationRequiredError' });
    const err = translateEntraError(e, sp, 'ECONNREFUSED: connect ECONNREFUSED 10.0.0.1:443') as TokenRequestError;
    expect(err.status).toBe('Unavailable');
    expect(err.outcome).toBe('network');
    expect(err.reason).toBe('could not reach https://login.microsoftonline.com/tenant-1 (ECONNREFUSED: connect ECONNREFUSED 10.0.0.1:443)');
  });

  it('passes aborts and ProviderErrors through', () => {
    const abort = Object.assign(new Error('aborted'), { name: 'AbortError' });
    expect(translateEntraError(abort, sp)).toBe(abort);
    const mine = new TokenRequestError('FailedPrecondition', 'x', 'y', 'z', 'other');
    expect(translateEntraError(mine, sp)).toBe(mine);
  });

  it('joins reason and fix without doubled punctuation', () => {
    expect(new TokenRequestError('Unauthenticated', 'me', 'it failed.', 'fix it', 'other').message).toBe('could not get a token for me: it failed: fix it');
  });
});
