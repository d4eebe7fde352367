/**
 * Operating the provider: /healthz and /metrics of the real process, reached over HTTP the way
 * the kubelet and Prometheus reach them. SIGTERM with a mount in flight is covered in lifecycle.test.ts.
 */
import { unlinkSync } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { startAzureStandIns, type AzureStandIns } from '../support/azure-standins';
import { registerProviderCleanup, startProvider, type ProviderProcess } from '../support/provider-process';

registerProviderCleanup();

const CANARY = 'canary-ops-secret-value-3e91';
let azure: AzureStandIns;

beforeAll(async () => {
  azure = await startAzureStandIns({ identities: { systemAssigned: { id: 'node' } } });
  azure.keyVault.addVault('ops-kv', { allow: ['node'] });
  azure.keyVault.setSecret('ops-kv', 'ops-password', CANARY);
  azure.keyVault.setSecret('ops-kv', 'slow', 'slow-value');
});

afterAll(async () => {
  await azure?.close();
});

function attributes(objectName: string, pod = 'web-7f9c'): Record<string, string> {
  return {
    'csi.storage.k8s.io/pod.name': pod,
    'csi.storage.k8s.io/pod.namespace': 'shop',
    useVMManagedIdentity: 'true',
    keyvaultName: 'ops-kv',
    tenantID: azure.tenantId,
    objects: `array:\n  - |\n    objectName: ${objectName}\n    objectType: secret\n`,
  };
}

async function get(port: number | undefined, path: string, init: RequestInit = {}): Promise<{ status: number; body: string }> {
  const response = await fetch(`http://127.0.0.1:${port}${path}`, init);
  return { status: response.status, body: await response.text() };
}

describe('/healthz', () => {
  let provider: ProviderProcess;

  beforeEach(async () => {
    provider = await startProvider({ env: azure.providerEnv(), args: ['--healthz-path=/healthz', '--healthz-timeout=2s'] });
  });

  afterEach(async () => {
    await provider.stop();
  });

  it('answers 200 "ok" while the provider serves its socket', async () => {
    expect(await get(provider.healthzPort, '/healthz')).toEqual({ status: 200, body: 'ok' });
    // A probe is a real RPC each time, not a cached answer: ten in a row all succeed.
    for (let i = 0; i < 10; i++) expect((await get(provider.healthzPort, '/healthz?probe=' + i)).status).toBe(200);
  });

  it('serves nothing but the health path', async () => {
    for (const path of ['/', '/metrics', '/healthz/', '/healthz/extra', '/debug/pprof/']) {
      expect(await get(provider.healthzPort, path)).toEqual({ status: 404, body: 'not found\n' });
    }
    expect((await get(provider.healthzPort, '/healthz', { method: 'POST' })).status).toBe(405);
  });

  it('answers 503 with the reason when the socket is gone, without naming the path', async () => {
    expect((await get(provider.healthzPort, '/healthz')).status).toBe(200);
    unlinkSync(provider.socketPath);
    const answer = await get(provider.healthzPort, '/healthz');
    expect(answer.status).toBe(503);
    expect(answer.body).toMatch(/socket/);
    expect(answer.body).not.toContain(provider.socketPath);
    await provider.waitForLog('health check failed');
  });

  it('answers 503 while SIGTERM drains the mounts in flight', async () => {
    await provider.client.mount({ attributes: attributes('slow') }); // warm: token and challenge done
    azure.keyVault.delayMs = 1500;
    try {
      const inFlight = provider.client.mount({ attributes: attributes('slow') });
      await new Promise((r) => setTimeout(r, 300));
      const exited = provider.stop('SIGTERM');
      await provider.waitForLog('shutting down');
      expect((await get(provider.healthzPort, '/healthz')).status).toBe(503);
      await inFlight;
      expect(await exited).toEqual({ code: 0, signal: null });
    } finally {
      azure.keyVault.delayMs = 0;
    }
  });
});

describe('/metrics', () => {
  it('after a few mounts shows the mount and Key Vault histograms with bounded labels', async () => {
    const provider = await startProvider({ env: azure.providerEnv(), args: ['--metrics-backend=prometheus'] });
    try {
      await provider.client.mount({ attributes: attributes('ops-password', 'web-aaaa') });
      await provider.client.mount({ attributes: attributes('ops-password', 'web-bbbb') });
      await expect(provider.client.mount({ attributes: attributes('no-such-secret', 'web-cccc') })).rejects.toMatchObject({ code: 5 });
      await expect(provider.client.mount({ attributes: { ...attributes('x'), keyvaultName: 'bad name!' } })).rejects.toMatchObject({ code: 3 });

      const { status, body } = await get(provider.prometheusPort, '/metrics');
      expect(status).toBe(200);
      const samples = parseExposition(body);
      const value = (name: string, labels: Record<string, string>): number | undefined =>
        samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;

      const mount = { grpc_method: '/v1alpha1.CSIDriverProvider/Mount', provider: 'azure', os_type: 'linux' };
      expect(value('grpc_request_count', { ...mount, grpc_code: 'OK' })).toBe(2);
      expect(value('grpc_request_count', { ...mount, grpc_code: 'NotFound' })).toBe(1);
      expect(value('grpc_request_count', { ...mount, grpc_code: 'InvalidArgument' })).toBe(1);
      expect(value('grpc_request_bucket', { ...mount, grpc_code: 'OK', le: '+Inf' })).toBe(2);
      expect(value('grpc_request_bucket', { ...mount, grpc_code: 'OK', le: '30' })).toBe(2);
      // Every RPC, as the reference: the start-up Version probe and the health checks too.
      expect(value('grpc_request_count', { grpc_method: '/v1alpha1.CSIDriverProvider/Version', grpc_code: 'OK' })).toBeGreaterThanOrEqual(1);
      expect(value('csi_provider_azure_mounts_in_flight', {})).toBe(0);

      // Once per object fetch, as the reference: two successful reads and one 404, whatever the retries and challenges.
      expect(value('keyvault_request_count', { object_type: 'secret', error: '' })).toBe(2);
      expect(value('keyvault_request_count', { object_type: 'secret', error: 'not_found' })).toBe(1);
      expect(value('keyvault_request_bucket', { object_type: 'secret', error: '', le: '+Inf' })).toBe(2);
      // The HTTP requests, each retry counted, are a counter of their own.
      expect(value('csi_provider_azure_keyvault_http_requests_total', { object_type: 'secret', outcome: 'success' })).toBe(2);
      expect(value('csi_provider_azure_keyvault_http_requests_total', { object_type: 'secret', outcome: 'not_found' })).toBe(1);
      // A healthy start-up is no authentication failure: the new client's one challenge (401 + WWW-Authenticate to its
      // first request, sent without a token) is counted apart, and no request counts as unauthenticated.
      expect(value('csi_provider_azure_keyvault_auth_challenges_total', { object_type: 'secret' })).toBe(1);
      expect(value('csi_provider_azure_keyvault_http_requests_total', { outcome: 'unauthenticated' })).toBeUndefined();
      expect(samples.filter((s) => s.name === 'keyvault_request_count' && s.labels['error'] === 'unauthenticated')).toEqual([]);

      // Tokens: one from IMDS for the three mounts; the credential and the vault client were reused.
      expect(value('csi_provider_azure_token_requests_total', { identity_mode: 'vmManagedIdentity', outcome: 'success' })).toBe(1);
      expect(value('csi_provider_azure_cache_lookups_total', { cache: 'credential', result: 'hit' })).toBeGreaterThanOrEqual(1);
      expect(value('csi_provider_azure_cache_lookups_total', { cache: 'vault_client', result: 'hit' })).toBeGreaterThanOrEqual(1);

      // Process metrics from the client library.
      expect(value('process_resident_memory_bytes', {})).toBeGreaterThan(0);
      expect(samples.some((s) => s.name.startsWith('nodejs_eventloop_lag'))).toBe(true);

      // Bounded labels: only known label names, and none of the request's free text anywhere in the exposition.
      const allowedLabels = new Set([
        'provider', 'os_type', 'grpc_method', 'grpc_code', 'object_type', 'error', 'outcome', 'identity_mode', 'cache', 'result',
        'le', 'quantile', 'type', 'kind', 'space', 'version', 'major', 'minor', 'patch',
      ]);
      for (const s of samples) for (const label of Object.keys(s.labels)) expect([s.name, label, allowedLabels.has(label)]).toEqual([s.name, label, true]);
      for (const text of [CANARY, 'ops-password', 'no-such-secret', 'ops-kv', 'web-aaaa', 'web-cccc', 'shop', azure.tenantId, 'bad name']) {
        expect(body).not.toContain(text);
      }
    } finally {
      await provider.stop();
    }
  });

  it('serves nothing but /metrics on the metrics port', async () => {
    const provider = await startProvider({ env: azure.providerEnv() });
    try {
      expect((await get(provider.prometheusPort, '/metrics')).status).toBe(200);
      expect((await get(provider.prometheusPort, '/healthz')).status).toBe(404);
      expect((await get(provider.prometheusPort, '/')).status).toBe(404);
    } finally {
      await provider.stop();
    }
  });
});

describe('start-up checks', () => {
  it('refuses a metrics backend other than Prometheus', async () => {
    await expect(startProvider({ env: azure.providerEnv(), args: ['--metrics-backend=stackdriver'], startTimeoutMs: 10_000 })).rejects.toThrow(
      // klog text quotes the error, escaping its quotes.
      /--metrics-backend \\?"stackdriver\\?" is not supported/,
    );
  });

  it('names the flag when the healthz port is taken', async () => {
    const blocker = await occupyPort();
    try {
      const port = (blocker.address() as AddressInfo).port;
      await expect(startProvider({ env: azure.providerEnv(), args: [`--healthz-port=${port}`], startTimeoutMs: 10_000 })).rejects.toThrow(
        new RegExp(`--healthz-port ${port} for the healthz endpoint is already in use`),
      );
    } finally {
      blocker.close();
    }
  });
});

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The Prometheus text format, enough of it for these checks: `name{a="b",...} value` lines. */
function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$/.exec(line);
    if (!m) throw new Error(`unparsable exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return samples;
}

function occupyPort(): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    // Bound like the provider binds (every interface), so the conflict is certain.
    server.listen(0, () => resolve(server));
  });
}
