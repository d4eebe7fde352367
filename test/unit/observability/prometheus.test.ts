import { createEmptyPipeline, createHttpHeaders, createPipelineRequest, RestError, type HttpClient } from '@azure/core-rest-pipeline';
import { keyVaultMetricsPolicy } from '../../../src/keyvault/metrics-policy';
import { noopMetrics, type ProviderMetrics } from '../../../src/observability/metrics';
import { outcomeOfError, outcomeOfStatus } from '../../../src/observability/outcome';
import { PrometheusMetrics } from '../../../src/observability/prometheus';

async function valuesOf(metrics: PrometheusMetrics, name: string): Promise<Array<{ labels: Record<string, string | number>; value: number }>> {
  const metric = await metrics.registry.getSingleMetric(name)!.get();
  return metric.values.map((v) => ({ labels: v.labels as Record<string, string | number>, value: v.value }));
}

describe('PrometheusMetrics', () => {
  it('keeps the reference names, constant labels and bucket edges, with grpc_request for every RPC', async () => {
    const metrics = new PrometheusMetrics({ osType: 'linux', processMetrics: false });
    metrics.observeGrpcRequest('/v1alpha1.CSIDriverProvider/Mount', 0.3, 'OK');
    metrics.observeGrpcRequest('/v1alpha1.CSIDriverProvider/Mount', 1.5, 'NotFound');
    metrics.observeGrpcRequest('/v1alpha1.CSIDriverProvider/Version', 0.001, 'OK');
    metrics.observeGrpcRequest('/grpc.health.v1.Health/Check', 0.001, 'OK');
    // A code outside grpc-go's names, or a method we do not serve, cannot become a new series.
    metrics.observeGrpcRequest('/v1alpha1.CSIDriverProvider/Mount', 0.1, 'connect ECONNREFUSED 10.0.0.1:443');
    metrics.observeGrpcRequest('/x.Evil/pod-name-123', 0.1, 'OK');
    const text = (await metrics.expose()).body;
    expect(text).toContain('grpc_request_count{provider="azure",os_type="linux",grpc_method="/v1alpha1.CSIDriverProvider/Mount",grpc_code="OK"} 1');
    expect(text).toContain('grpc_method="/v1alpha1.CSIDriverProvider/Mount",grpc_code="NotFound"} 1');
    expect(text).toContain('grpc_method="/v1alpha1.CSIDriverProvider/Version",grpc_code="OK"} 1');
    expect(text).toContain('grpc_method="/grpc.health.v1.Health/Check",grpc_code="OK"} 1');
    expect(text).toContain('grpc_code="Unknown"} 1');
    expect(text).toContain('grpc_method="other",grpc_code="OK"} 1');
    expect(text).not.toContain('ECONNREFUSED');
    expect(text).not.toContain('Evil');
    expect(text).not.toMatch(/^process_/m);
    // The reference's edges: 0.1 … 30 s.
    const edges = [...text.matchAll(/^grpc_request_bucket\{le="([^"]+)"[^}]*grpc_code="NotFound"\}/gm)].map((m) => m[1]);
    expect(edges).toEqual(['0.1', '0.2', '0.3', '0.4', '0.5', '1', '1.5', '2', '2.5', '3', '5', '10', '15', '30', '+Inf']);
  });

  it('keyvault_request: object_type as the SPC spells it (cert), error "" on success, a fixed class otherwise', async () => {
    const metrics = new PrometheusMetrics({ osType: 'linux', processMetrics: false });
    metrics.observeObjectFetch('secret', '', 0.15);
    metrics.observeObjectFetch('cert', '', 0.25);
    metrics.observeObjectFetch('secret', 'forbidden', 0.05);
    const text = (await metrics.expose()).body;
    expect(text).toContain('keyvault_request_count{provider="azure",os_type="linux",object_type="secret",error=""} 1');
    expect(text).toContain('keyvault_request_count{provider="azure",os_type="linux",object_type="cert",error=""} 1');
    expect(text).toContain('keyvault_request_count{provider="azure",os_type="linux",object_type="secret",error="forbidden"} 1');
    expect(text).toContain('keyvault_request_bucket{le="0.2",provider="azure",os_type="linux",object_type="secret",error=""} 1');
  });

  it('counts HTTP requests to Key Vault (each retry) apart from the fetches', async () => {
    const metrics = new PrometheusMetrics({ processMetrics: false });
    metrics.observeKeyVaultRequest('secret', 'throttled', 0.01);
    metrics.observeKeyVaultRequest('secret', 'success', 0.01);
    expect(await valuesOf(metrics, 'csi_provider_azure_keyvault_http_requests_total')).toEqual([
      { labels: { object_type: 'secret', outcome: 'throttled' }, value: 1 },
      { labels: { object_type: 'secret', outcome: 'success' }, value: 1 },
    ]);
    expect((await valuesOf(metrics, 'keyvault_request')).every((v) => v.value === 0)).toBe(true);
  });

  it('counts mounts in flight, token requests and cache lookups', async () => {
    const metrics = new PrometheusMetrics({ processMetrics: false });
    metrics.mountStarted();
    metrics.mountStarted();
    metrics.mountFinished();
    metrics.countTokenRequest('vmManagedIdentity', 'success');
    metrics.countTokenRequest('vmManagedIdentity', 'success');
    metrics.countTokenRequest('workloadIdentity', 'forbidden');
    metrics.countCacheLookup('credential', true);
    metrics.countCacheLookup('credential', false);
    expect((await valuesOf(metrics, 'csi_provider_azure_mounts_in_flight'))[0]!.value).toBe(1);
    expect(await valuesOf(metrics, 'csi_provider_azure_token_requests_total')).toEqual([
      { labels: { identity_mode: 'vmManagedIdentity', outcome: 'success' }, value: 2 },
      { labels: { identity_mode: 'workloadIdentity', outcome: 'forbidden' }, value: 1 },
    ]);
    expect(await valuesOf(metrics, 'csi_provider_azure_cache_lookups_total')).toEqual([
      { labels: { cache: 'credential', result: 'hit' }, value: 1 },
      { labels: { cache: 'credential', result: 'miss' }, value: 1 },
    ]);
  });

  it('exposes the Key Vault value cache series only when the cache is on (off, /metrics is as without it)', async () => {
    const off = new PrometheusMetrics({ processMetrics: false });
    off.countValueCacheEviction();
    off.countValueCacheStale();
    off.setValueCacheBytes(10);
    expect((await off.expose()).body).not.toContain('keyvault_cache');
    const on = new PrometheusMetrics({ processMetrics: false, valueCache: true });
    on.countValueCacheEviction();
    on.countValueCacheStale();
    on.countValueCacheStale();
    on.setValueCacheBytes(4096);
    const text = (await on.expose()).body;
    expect(text).toMatch(/^csi_provider_azure_keyvault_cache_evictions_total\{[^}]*\} 1$/m);
    expect(text).toMatch(/^csi_provider_azure_keyvault_cache_stale_served_total\{[^}]*\} 2$/m);
    expect(text).toMatch(/^csi_provider_azure_keyvault_cache_bytes\{[^}]*\} 4096$/m);
  });

  it('collects process metrics by default, in its own registry', async () => {
    const a = new PrometheusMetrics();
    const b = new PrometheusMetrics();
    expect((await a.expose()).body).toMatch(/^process_resident_memory_bytes\{/m);
    expect((await b.expose()).body).toMatch(/^nodejs_eventloop_lag_seconds\{/m);
  });
});

describe('outcome classes', () => {
  it.each([
    [200, 'success'],
    [204, 'success'],
    [401, 'unauthenticated'],
    [403, 'forbidden'],
    [404, 'not_found'],
    [409, 'other'],
    [429, 'throttled'],
    [500, 'server_error'],
    [503, 'server_error'],
  ])('HTTP %i is %s', (status, outcome) => expect(outcomeOfStatus(status)).toBe(outcome));

  it('classifies thrown errors by name, code and status only', () => {
    expect(outcomeOfError(new RestError('boom', { code: 'REQUEST_SEND_ERROR' }))).toBe('network');
    expect(outcomeOfError(Object.assign(new Error('x'), { code: 'ECONNRESET' }))).toBe('network');
    expect(outcomeOfError(new RestError('throttled', { statusCode: 429 }))).toBe('throttled');
    expect(outcomeOfError(Object.assign(new Error('stop'), { name: 'AbortError' }))).toBe('cancelled');
    expect(outcomeOfError(new Error('anything'), { aborted: true })).toBe('cancelled');
    expect(outcomeOfError(new Error('anything'))).toBe('other');
    expect(outcomeOfError('a string')).toBe('other');
  });
});

describe('the Key Vault metrics policy', () => {
  function recorder(): { metrics: ProviderMetrics; seen: Array<[string, string]> } {
    const seen: Array<[string, string]> = [];
    const metrics: ProviderMetrics = {
      observeGrpcRequest: () => undefined,
      mountStarted: () => undefined,
      mountFinished: () => undefined,
      observeObjectFetch: () => undefined,
      observeKeyVaultRequest: (type, outcome, seconds) => {
        expect(seconds).toBeGreaterThanOrEqual(0);
        seen.push([type, outcome]);
      },
      countKeyVaultChallenge: () => undefined,
      countTokenRequest: () => undefined,
      countCacheLookup: () => undefined,
      countTokenRejection: () => undefined,
      countOptionalObjectSkipped: () => undefined,
      setCacheEntries: () => undefined,
    };
    return { metrics, seen };
  }

  function client(answer: (url: string) => number | Error): HttpClient {
    return {
      async sendRequest(request) {
        const result = answer(request.url);
        if (result instanceof Error) throw result;
        return { request, status: result, headers: createHttpHeaders() };
      },
    };
  }

  it('records the object type from the URL and the outcome of each request', async () => {
    const { metrics, seen } = recorder();
    const pipeline = createEmptyPipeline();
    pipeline.addPolicy(keyVaultMetricsPolicy(metrics));
    const http = client((url) => (url.includes('/keys/') ? 404 : url.includes('/certificates/') ? new RestError('x', { code: 'ECONNREFUSED' }) : 200));
    const send = (path: string) => pipeline.sendRequest(http, createPipelineRequest({ url: `https://kv.vault.azure.net${path}?api-version=7.5` }));

    await send('/secrets/db-password/');
    await send('/keys/signing/abc');
    await expect(send('/certificates/tls/')).rejects.toThrow();
    await send('/deletedsecrets/x'); // not one of the three collections: not recorded
    expect(seen).toEqual([
      ['secret', 'success'],
      ['key', 'not_found'],
      ['cert', 'network'],
    ]);
  });

  it('counts the challenge (401 + WWW-Authenticate to a request without a token) apart, never a rejected token', async () => {
    const challenges: string[] = [];
    const requests: Array<[string, string]> = [];
    const metrics: ProviderMetrics = {
      ...noopMetrics,
      countKeyVaultChallenge: (type) => void challenges.push(type),
      observeKeyVaultRequest: (type, outcome) => void requests.push([type, outcome]),
    };
    const pipeline = createEmptyPipeline();
    pipeline.addPolicy(keyVaultMetricsPolicy(metrics));
    const wire: HttpClient = {
      async sendRequest(request) {
        const headers = createHttpHeaders(request.url.includes('/plain401/') ? {} : { 'www-authenticate': 'Bearer authorization="https://login"' });
        return { request, status: 401, headers };
      },
    };
    const send = (path: string, token?: string) =>
      pipeline.sendRequest(
        wire,
        createPipelineRequest({ url: `https://kv.vault.azure.net${path}`, headers: createHttpHeaders(token ? { authorization: `Bearer ${token}` } : {}) }),
      );
    await send('/secrets/a');
    await send('/certificates/b');
    await send('/secrets/a', 'rejected-token'); // a token Key Vault refused: a failure, not a challenge
    await send('/keys/plain401/x'); // no challenge header: not a challenge
    expect(challenges).toEqual(['secret', 'cert']);
    expect(requests).toEqual([
      ['secret', 'unauthenticated'],
      ['key', 'unauthenticated'],
    ]);
  });

  it('exports the challenges as csi_provider_azure_keyvault_auth_challenges_total{object_type}', async () => {
    const metrics = new PrometheusMetrics({ osType: 'linux', processMetrics: false });
    metrics.countKeyVaultChallenge('secret');
    metrics.countKeyVaultChallenge('secret');
    metrics.countKeyVaultChallenge('key');
    expect(await valuesOf(metrics, 'csi_provider_azure_keyvault_auth_challenges_total')).toEqual([
      { labels: { object_type: 'secret' }, value: 2 },
      { labels: { object_type: 'key' }, value: 1 },
    ]);
  });
});
