import { createEmptyPipeline, createHttpHeaders, createPipelineRequest, RestError, type HttpClient } from '@azure/core-rest-pipeline';
import { keyVaultMetricsPolicy } from '../../../src/keyvault/metrics-policy';
import type { ProviderMetrics } from '../../../src/observability/metrics';
import { outcomeOfError, outcomeOfStatus } from '../../../src/observability/outcome';
import { PrometheusMetrics } from '../../../src/observability/prometheus';

async function valuesOf(metrics: PrometheusMetrics, name: string): Promise<Array<{ labels: Record<string, string | number>; value: number }>> {
  const metric = await metrics.registry.getSingleMetric(name)!.get();
  return metric.values.map((v) => ({ labels: v.labels as Record<string, string | number>, value: v.value }));
}

describe('PrometheusMetrics', () => {
  it('keeps the reference names and constant labels, and only fixed label values', async () => {
    const metrics = new PrometheusMetrics({ osType: 'linux', processMetrics: false });
    metrics.observeMount(0.3, 'OK');
    metrics.observeMount(1.5, 'NotFound');
    // A code outside grpc-go's names cannot become a new series.
    metrics.observeMount(0.1, 'connect ECONNREFUSED 10.0.0.1:443');
    const text = (await metrics.expose()).body;
    expect(text).toContain('grpc_request_count{provider="azure",os_type="linux",grpc_method="/v1alpha1.CSIDriverProvider/Mount",grpc_code="OK",result="success"} 1');
    expect(text).toContain('grpc_code="NotFound",result="failure"} 1');
    expect(text).toContain('grpc_code="Unknown",result="failure"} 1');
    expect(text).not.toContain('ECONNREFUSED');
    expect(text).not.toMatch(/^process_/m);
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
      observeMount: () => undefined,
      mountStarted: () => undefined,
      mountFinished: () => undefined,
      observeKeyVaultRequest: (type, outcome, seconds) => {
        expect(seconds).toBeGreaterThanOrEqual(0);
        seen.push([type, outcome]);
      },
      countTokenRequest: () => undefined,
      countCacheLookup: () => undefined,
      countTokenRejection: () => undefined,
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
      ['certificate', 'network'],
    ]);
  });
});
