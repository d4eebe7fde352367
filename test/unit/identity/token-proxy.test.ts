import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHttpHeaders, createPipelineRequest } from '@azure/core-rest-pipeline';
import { parseTokenProxyUrl, rewriteToProxy, TokenProxyTransport } from '../../../src/identity/token-proxy';
import {
  createServiceAccountIssuer,
  IDENTITY_BINDING_AUDIENCE,
  startIdentityBindingProxy,
  type IdentityBindingProxy,
  type ServiceAccountIssuer,
} from '../../support/entra';
import { createTestPki, type TestPki } from '../../support/pki';
import { createTokenRegistry, type TokenRegistry } from '../../support/tokens';

describe('token proxy URL', () => {
  it.each([
    ['https://proxy.example.com/', 'https://orig.example.com/login?a=1&b=2', 'https://proxy.example.com/login?a=1&b=2'],
    ['https://proxy.example.com', 'https://orig.example.com/t/oauth2/v2.0/token', 'https://proxy.example.com/t/oauth2/v2.0/token'],
    ['https://proxy.example.com/base', 'https://orig.example.com/login?a=1', 'https://proxy.example.com/base/login?a=1'],
    ['https://proxy.example.com/v1/', 'https://orig.example.com/oauth2/token?x=1', 'https://proxy.example.com/v1/oauth2/token?x=1'],
    ['https://proxy.example.com/base/', 'https://orig.example.com/a%20b?q=1', 'https://proxy.example.com/base/a%20b?q=1'],
    ['https://proxy.example.com:8443/api', 'https://orig.example.com', 'https://proxy.example.com:8443/api/'],
  ])('%s + %s → %s', (proxy, request, expected) => {
    expect(rewriteToProxy(request, parseTokenProxyUrl(proxy))).toBe(expected);
  });

  it.each([
    ['http://proxy.example.com', 'must use https'],
    ['https://user:pass@proxy.example.com', 'user info'],
    ['https://proxy.example.com/?a=1', 'query'],
    ['https://proxy.example.com/#frag', 'fragment'],
    ['not a url', 'is not a URL'],
  ])('refuses %s (%s), as the Azure SDKs do', (url, fragment) => {
    expect(() => parseTokenProxyUrl(url)).toThrow(fragment);
  });
});

describe('TokenProxyTransport', () => {
  let pki: TestPki;
  let tokens: TokenRegistry;
  let issuer: ServiceAccountIssuer;
  let proxy: IdentityBindingProxy;
  let dir: string;
  const tenant = '00000000-0000-4000-8000-000000000001';
  const clientId = '00000000-0000-4000-8000-0000000000c1';

  beforeAll(async () => {
    pki = createTestPki('cluster CA');
    tokens = createTokenRegistry();
    issuer = createServiceAccountIssuer();
    proxy = await startIdentityBindingProxy({
      pki,
      tokens,
      clusterId: 'unit-cluster',
      issuer,
      bindings: [{ namespace: 'ns', serviceAccount: 'sa', clientId, identityId: 'bound', tenantId: tenant }],
    });
    dir = mkdtempSync(join(tmpdir(), 'token-proxy-'));
  });

  afterAll(async () => {
    await proxy.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const tokenRequest = () =>
    createPipelineRequest({
      url: `https://login.microsoftonline.com/${tenant}/oauth2/v2.0/token?client-request-id=1`,
      method: 'POST',
      headers: createHttpHeaders({ 'Content-Type': 'application/x-www-form-urlencoded' }),
      body: new URLSearchParams({
        grant_type: 'client_credentials',
        client_id: clientId,
        scope: 'https://vault.azure.net/.default',
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
        client_assertion: issuer.issue({ namespace: 'ns', serviceAccount: 'sa', audience: IDENTITY_BINDING_AUDIENCE }).token,
      }).toString(),
    });

  it('sends the request, path and query kept, to the proxy with its server name, trusting the service account CA', async () => {
    const caFile = join(dir, 'ca.crt');
    writeFileSync(caFile, pki.caCertPem);
    const transport = new TokenProxyTransport({ url: proxy.url, sniName: proxy.sniName, caFile });
    const response = await transport.httpClient.sendRequest(tokenRequest());
    expect(response.status).toBe(200);
    expect(JSON.parse(response.bodyAsText!)).toMatchObject({ token_type: 'Bearer' });
    expect(proxy.requests.at(-1)).toMatchObject({ servername: proxy.sniName, path: `/${tenant}/oauth2/v2.0/token`, status: 200 });
  });

  it('re-reads the CA: a rotated CA is used at once, an empty file mid-rotation keeps the last good one', async () => {
    const caFile = join(dir, 'rotating.crt');
    writeFileSync(caFile, pki.caCertPem);
    const transport = new TokenProxyTransport({ url: proxy.url, sniName: proxy.sniName, caFile });
    const first = await transport.prepare();
    expect((await transport.prepare()).agent).toBe(first.agent);
    writeFileSync(caFile, '');
    expect((await transport.prepare()).agent).toBe(first.agent);
    writeFileSync(caFile, `${pki.caCertPem}\n${createTestPki('next CA').caCertPem}`);
    const rotated = await transport.prepare();
    expect(rotated.agent).not.toBe(first.agent);
    expect((await transport.httpClient.sendRequest(tokenRequest())).status).toBe(200);
    writeFileSync(caFile, 'not a certificate');
    await expect(transport.prepare()).rejects.toThrow(/holds no valid PEM certificate/);
  });

  it('does not trust the proxy without its CA, and says which server name it used', async () => {
    const caFile = join(dir, 'other.crt');
    writeFileSync(caFile, createTestPki('unrelated CA').caCertPem);
    const transport = new TokenProxyTransport({ url: proxy.url, sniName: proxy.sniName, caFile });
    await expect(transport.httpClient.sendRequest(tokenRequest())).rejects.toThrow(`with server name ${proxy.sniName}`);
  });

  it('reports an invalid URL, and a failed SNI discovery with the flag that avoids it', async () => {
    await expect(new TokenProxyTransport({ url: 'http://x', sniName: 'n' }).prepare()).rejects.toThrow('must use https');
    const transport = new TokenProxyTransport({ url: proxy.url, caFile: join(dir, 'absent.crt') });
    await expect(transport.prepare()).rejects.toThrow(/absent\.crt cannot be read.*--sni-name/);
  });
});
