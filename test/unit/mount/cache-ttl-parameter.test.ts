import { ProviderError } from '../../../src/errors';
import { parseMountParameters } from '../../../src/mount/parameters';
import { parseCommandLine } from '../../../src/cli/flags';
import { attributes } from './fixtures';

const on = { cloudName: 'AzurePublicCloud', maxCacheTtlMs: 300_000 };
const off = { cloudName: 'AzurePublicCloud' };

function invalid(run: () => unknown): ProviderError {
  try {
    run();
  } catch (err) {
    if (err instanceof ProviderError) return err;
    throw err;
  }
  throw new Error('expected the parameters to be refused');
}

describe('cacheTTL', () => {
  it('is the TTL the class allows, within the operator maximum', () => {
    expect(parseMountParameters(attributes({ cacheTTL: '2m' }), {}, on).cacheTtlMs).toBe(120_000);
    expect(parseMountParameters(attributes({ cacheTTL: '5m' }), {}, on).cacheTtlMs).toBe(300_000);
    expect(parseMountParameters(attributes({ cacheTTL: '0' }), {}, on).cacheTtlMs).toBeUndefined();
    expect(parseMountParameters(attributes({}), {}, on).cacheTtlMs).toBeUndefined();
  });

  it('fails the mount before any network call when it is not a duration or above the maximum', () => {
    const notDuration = invalid(() => parseMountParameters(attributes({ cacheTTL: 'ten minutes' }), {}, on));
    expect(notDuration).toMatchObject({ status: 'InvalidArgument' });
    expect(notDuration.message).toContain('cacheTTL "ten minutes" is not a duration');
    const above = invalid(() => parseMountParameters(attributes({ cacheTTL: '1h' }), {}, on));
    expect(above.message).toContain('above the node\'s maximum of 300s (--keyvault-cache-max-ttl)');
    // A bad value is refused even where the cache is off: the class is wrong on every node.
    expect(invalid(() => parseMountParameters(attributes({ cacheTTL: '-5m' }), {}, off)).status).toBe('InvalidArgument');
  });

  it('is ignored with a warning on a node where the operator left the cache off', () => {
    const spec = parseMountParameters(attributes({ cacheTTL: '1h' }), {}, off);
    expect(spec.cacheTtlMs).toBeUndefined();
    expect(spec.warnings).toContain('cacheTTL is ignored: the Key Vault value cache is off on this node (--keyvault-cache-max-ttl)');
  });
});

describe('value cache flags', () => {
  it('are off by default', () => {
    const parsed = parseCommandLine([]);
    expect(parsed.kind === 'run' && parsed.config.keyVaultCache.maxTtlMs).toBe(0);
    expect(parsed.kind === 'run' && parsed.config.vaultRequestsPerSecond).toBe(0);
  });

  it('read the maximum TTL, bounds, first mounts, grace and the per-vault rate', () => {
    const parsed = parseCommandLine([
      '--keyvault-cache-max-ttl=10m',
      '--keyvault-cache-max-entries=500',
      '--keyvault-cache-max-bytes=1048576',
      '--keyvault-cache-first-mounts',
      '--keyvault-cache-stale-grace=1h',
      '--max-requests-per-second-per-vault=20',
    ]);
    expect(parsed.kind === 'run' && parsed.config).toMatchObject({
      keyVaultCache: { maxTtlMs: 600_000, maxEntries: 500, maxBytes: 1048576, allowFirstMounts: true, staleGraceMs: 3_600_000 },
      vaultRequestsPerSecond: 20,
    });
  });
});
