/**
 * The chart's Key Vault value cache and per-vault rate values: off unless set, passed as the provider's flags, and
 * refused by the schema when they are not what the flags take.
 */
import { parseCommandLine } from '../../src/cli/flags';
import { renderChart, renderChartError, type K8sObject } from './support/helm';

function providerArgs(objects: K8sObject[]): string[] {
  const ds = objects.find((o) => o.kind === 'DaemonSet' && !String(o.metadata?.['name']).includes('windows') && JSON.stringify(o).includes('provider-azure'))!;
  const spec = ds['spec'] as { template: { spec: { containers: Array<{ args: string[] }> } } };
  return spec.template.spec.containers[0]!.args;
}

describe('the chart and the Key Vault value cache', () => {
  it('passes no cache or rate flag by default', async () => {
    const args = providerArgs((await renderChart()).objects);
    expect(args.filter((a) => a.includes('keyvault-cache') || a.includes('per-second'))).toEqual([]);
  });

  it('passes every cache value as its flag, which the provider accepts', async () => {
    const { objects } = await renderChart({
      values: {
        keyVaultCache: { maxTTL: '5m', maxEntries: 2000, maxBytes: 16777216, allowFirstMounts: true, staleGrace: '15m' },
        load: { maxRequestsPerSecondPerVault: 50 },
      },
    });
    const args = providerArgs(objects);
    expect(args).toEqual(
      expect.arrayContaining([
        '--max-requests-per-second-per-vault=50',
        '--keyvault-cache-max-ttl=5m',
        '--keyvault-cache-max-entries=2000',
        '--keyvault-cache-max-bytes=16777216',
        '--keyvault-cache-first-mounts=true',
        '--keyvault-cache-stale-grace=15m',
      ]),
    );
    expect(parseCommandLine(args)).toMatchObject({
      kind: 'run',
      config: {
        keyVaultCache: { maxTtlMs: 300_000, maxEntries: 2000, maxBytes: 16777216, allowFirstMounts: true, staleGraceMs: 900_000 },
        vaultRequestsPerSecond: 50,
      },
    });
  });

  it('refuses a maxTTL that is not a duration, and unknown keys', async () => {
    expect(await renderChartError({ values: { keyVaultCache: { maxTTL: '5 minutes' } } })).toContain('maxTTL');
    expect(await renderChartError({ values: { keyVaultCache: { ttl: '5m' } } })).toContain('ttl');
  });
});
