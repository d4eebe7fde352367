/**
 * Driver v1.5 and older dial the provider with grpc-go's `grpc.Dial(<socket path>)` and so send the socket path as
 * the HTTP/2 :authority (driver v1.6 sends `localhost`). Node's HTTP/2 refuses such an authority with a stream
 * PROTOCOL_ERROR, which failed every mount from those drivers; the real-driver suite (test/k8s) shows it with the
 * real v1.5.6. Here a client sends that authority over the real socket, across several requests on one connection
 * (HPACK's dynamic table refers back to the first request's authority) and with headers large enough to span
 * CONTINUATION frames.
 */
import { startAzureStandIns, type AzureStandIns } from '../support/azure-standins';
import { createDriverClient, type DriverClient } from '../support/driver-client';
import { registerProviderCleanup, startProvider, type ProviderProcess } from '../support/provider-process';
import { objects } from '../support/spc';

registerProviderCleanup();

let azure: AzureStandIns;
let provider: ProviderProcess;
const clients: DriverClient[] = [];

const request = (extra: Record<string, string> = {}) => ({
  attributes: {
    'csi.storage.k8s.io/pod.name': 'legacy-driver-pod',
    'csi.storage.k8s.io/pod.namespace': 'shop',
    useVMManagedIdentity: 'true',
    keyvaultName: 'authority-kv',
    tenantID: azure.tenantId,
    objects: objects(['objectName: db\nobjectType: secret']),
    ...extra,
  },
});

beforeAll(async () => {
  azure = await startAzureStandIns({ identities: { systemAssigned: { id: 'node' } } });
  azure.keyVault.addVault('authority-kv', { allow: ['node'] });
  azure.keyVault.setSecret('authority-kv', 'db', 'value-through-a-v1.5-driver');
  provider = await startProvider({ env: azure.providerEnv(), args: ['-v=5'] });
});

afterAll(async () => {
  for (const c of clients) c.close();
  await provider?.stop();
  await azure?.close();
});

describe('a driver that sends the socket path as :authority (v1.5 and older)', () => {
  it('is served: Version, Health and Mount, many calls on one connection', async () => {
    const client = createDriverClient(provider.socketPath, { authority: provider.socketPath });
    clients.push(client);
    expect((await client.version()).runtimeName).toBe('secrets-store-csi-driver-provider-azure');
    expect(await client.healthCheck()).toBe('SERVING');
    for (let i = 0; i < 5; i++) {
      const result = await client.mount(request());
      expect(result.files.map((f) => [f.path, f.contents.toString()])).toEqual([['db', 'value-through-a-v1.5-driver']]);
    }
    const concurrent = await Promise.all(Array.from({ length: 10 }, () => client.mount(request())));
    expect(concurrent.every((r) => r.files.length === 1)).toBe(true);
    expect(provider.logs()).toContain('sent the socket path as the HTTP/2 authority');
  });

  it('is served when the request headers span CONTINUATION frames (40 KB of metadata)', async () => {
    const client = createDriverClient(provider.socketPath, { authority: provider.socketPath });
    clients.push(client);
    // Metadata, not the message, travels in headers: 40 KB of it needs HEADERS plus CONTINUATION frames.
    const result = await client.mount(request(), { metadata: { 'x-padding': 'x'.repeat(40_000) } });
    expect(result.files).toHaveLength(1);
    expect((await client.mount(request())).files).toHaveLength(1);
  });

  it('a v1.6 driver\'s connection (authority localhost) is passed through untouched', async () => {
    const client = createDriverClient(provider.socketPath);
    clients.push(client);
    const before = provider.logs().split('sent the socket path as the HTTP/2 authority').length;
    for (let i = 0; i < 3; i++) expect((await client.mount(request())).files).toHaveLength(1);
    expect(provider.logs().split('sent the socket path as the HTTP/2 authority').length).toBe(before);
  });
});
