import { ProviderError } from '../../../src/errors';
import { fetchErrorClass, meteredReader } from '../../../src/keyvault/metered-reader';
import type { VaultReader } from '../../../src/spec/ports';
import { noopMetrics, type ProviderMetrics } from '../../../src/observability/metrics';

describe('meteredReader: keyvault_request once per object read', () => {
  it('records one observation per call with the object type as the SPC spells it, error "" on success', async () => {
    const seen: Array<[string, string]> = [];
    const metrics: ProviderMetrics = { ...noopMetrics, observeObjectFetch: (type, error) => void seen.push([type, error]) };
    const denied = new ProviderError('PermissionDenied', 'no role', { cause: Object.assign(new Error('403'), { statusCode: 403 }) });
    const inner = {
      vaultName: 'kv',
      getSecret: async () => ({ value: 'v' }),
      getKey: async () => Promise.reject(new ProviderError('NotFound', 'no key')),
      getCertificate: async () => Promise.reject(denied),
      listVersions: async () => [],
    } as unknown as VaultReader;
    const reader = meteredReader(inner, metrics);
    const signal = new AbortController().signal;
    await reader.getSecret('a', '', signal);
    await expect(reader.getKey('b', '', signal)).rejects.toThrow('no key');
    await expect(reader.getCertificate('c', '', signal)).rejects.toBe(denied);
    await reader.listVersions('cert', 'c', signal);
    expect(seen).toEqual([
      ['secret', ''],
      ['key', 'not_found'],
      ['cert', 'forbidden'],
      ['cert', ''],
    ]);
    expect(reader.vaultName).toBe('kv');
  });

  it('classifies by the cause first, then by our status, never by text', () => {
    expect(fetchErrorClass(new ProviderError('Unavailable', 'x', { cause: Object.assign(new Error('reset'), { code: 'ECONNRESET' }) }))).toBe('network');
    expect(fetchErrorClass(new ProviderError('Unavailable', 'x'))).toBe('server_error');
    expect(fetchErrorClass(new ProviderError('ResourceExhausted', 'x'))).toBe('throttled');
    expect(fetchErrorClass(new ProviderError('InvalidArgument', 'bad base64'))).toBe('other');
    expect(fetchErrorClass(new Error('anything'))).toBe('other');
    const aborted = new AbortController();
    aborted.abort();
    expect(fetchErrorClass(new Error('x'), aborted.signal)).toBe('cancelled');
  });
});
