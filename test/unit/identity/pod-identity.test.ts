import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PodIdentityCredential } from '../../../src/identity/pod-identity';
import { TokenRequestError } from '../../../src/identity/token-errors';

// These tests never bind NMI's port 2579 (test/e2e/identity-pod-identity.test.ts owns it): the credential is given
// the address of an NMI-like server on a free port.
let handler: (req: IncomingMessage, res: ServerResponse) => void;
let server: Server;
let endpoint: string;
const seen: IncomingMessage[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    seen.push(req);
    handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

const pod = { name: 'web-0', namespace: 'shop', uid: 'u-1' };

describe('PodIdentityCredential', () => {
  it('asks /host/token/ for the scope\'s resource with podname and podns, and reads ADAL\'s string numbers', async () => {
    handler = (_req, res) => res.end(JSON.stringify({ token: { access_token: 'at', expires_on: '2000000000', expires_in: '3599' }, clientid: 'c' }));
    const token = await new PodIdentityCredential(pod, endpoint).getToken('https://vault.azure.net/.default');
    expect(token).toEqual({ token: 'at', expiresOnTimestamp: 2_000_000_000_000, tokenType: 'Bearer' });
    const req = seen.at(-1)!;
    expect(req.url).toBe('/host/token/?resource=https%3A%2F%2Fvault.azure.net');
    expect(req.headers['podname']).toBe('web-0');
    expect(req.headers['podns']).toBe('shop');
  });

  it.each([
    [404, 'getting assigned identities for pod shop/web-0 in CREATED state failed', 'Unauthenticated', 'not_found', 'AzureIdentityBinding'],
    [403, 'failed to refresh token', 'Unauthenticated', 'forbidden', 'NMI logs'],
    [500, 'request remote address is not from a host', 'Unavailable', 'server_error', 'NMI logs'],
  ])('relays NMI\'s %s answer and what to check', async (status, body, grpc, outcome, fix) => {
    handler = (_req, res) => {
      res.writeHead(status, { 'Content-Type': 'text/plain' });
      res.end(`${body}\n`);
    };
    const err = (await new PodIdentityCredential(pod, endpoint).getToken('https://vault.azure.net/.default').catch((e: unknown) => e)) as TokenRequestError;
    expect(err).toBeInstanceOf(TokenRequestError);
    expect(err.status).toBe(grpc);
    expect(err.outcome).toBe(outcome);
    expect(err.reason).toBe(`NMI at ${endpoint} answered ${status}: ${body}`);
    expect(err.fix).toContain(fix);
  });

  it.each([
    ['not JSON', 'oops', 'not JSON'],
    ['no clientid', JSON.stringify({ token: { access_token: 'at', expires_on: '2000000000' } }), 'expected token and clientid'],
    ['no expiry', JSON.stringify({ token: { access_token: 'at', expires_on: 'soon' }, clientid: 'c' }), 'valid expires_on'],
  ])('refuses a 200 answer with %s', async (_name, body, fragment) => {
    handler = (_req, res) => res.end(body);
    await expect(new PodIdentityCredential(pod, endpoint).getToken('https://vault.azure.net/.default')).rejects.toThrow(fragment);
  });

  it('gives up after its timeout, and on the caller\'s abort', async () => {
    handler = () => undefined; // never answers
    const slow = new PodIdentityCredential(pod, endpoint, 200);
    await expect(slow.getToken('https://vault.azure.net/.default')).rejects.toThrow('did not answer within 0.2 s');
    const controller = new AbortController();
    const pending = new PodIdentityCredential(pod, endpoint, 10_000).getToken('https://vault.azure.net/.default', { abortSignal: controller.signal });
    controller.abort();
    await expect(pending).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('says NMI is not running when nothing listens', async () => {
    const err = (await new PodIdentityCredential(pod, 'http://127.0.0.1:1').getToken('https://vault.azure.net/.default').catch((e: unknown) => e)) as TokenRequestError;
    expect(err.status).toBe('Unavailable');
    expect(err.reason).toContain('ECONNREFUSED');
    expect(err.fix).toContain('aad-pod-identity');
  });
});
