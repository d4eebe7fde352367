/**
 * Counts every HTTP request the Key Vault SDK clients send, with the object type and a coarse outcome (the per-fetch
 * histogram, keyvault_request, is metered-reader.ts).
 * Added per retry (after the retry policy, before the authentication policy), so each retry counts once and the
 * challenge round-trip of a fresh client (401, token, resend) counts as the one request it is to the caller.
 */
import type { PipelinePolicy, PipelineRequest } from '@azure/core-rest-pipeline';
import type { KeyVaultObjectType, ProviderMetrics } from '../observability/metrics';
import { outcomeOfError, outcomeOfStatus } from '../observability/outcome';

export const KEY_VAULT_METRICS_POLICY = 'csiProviderKeyVaultMetrics';

/** The first path segment of a Key Vault data-plane URL names the collection: /secrets/…, /keys/…, /certificates/…. */
const COLLECTIONS: Record<string, KeyVaultObjectType> = {
  secrets: 'secret',
  keys: 'key',
  certificates: 'cert',
};

export function keyVaultMetricsPolicy(metrics: ProviderMetrics): PipelinePolicy {
  return {
    name: KEY_VAULT_METRICS_POLICY,
    async sendRequest(request, next) {
      const objectType = objectTypeOf(request);
      // Requests outside the three collections (none today) are left out rather than given an open-ended label.
      if (!objectType) return next(request);
      const started = process.hrtime.bigint();
      try {
        const response = await next(request);
        metrics.observeKeyVaultRequest(objectType, outcomeOfStatus(response.status), secondsSince(started));
        return response;
      } catch (err) {
        metrics.observeKeyVaultRequest(objectType, outcomeOfError(err, request.abortSignal), secondsSince(started));
        throw err;
      }
    },
  };
}

function objectTypeOf(request: PipelineRequest): KeyVaultObjectType | undefined {
  let path: string;
  try {
    path = new URL(request.url).pathname;
  } catch {
    return undefined;
  }
  const collection = path.split('/')[1]?.toLowerCase() ?? '';
  return Object.hasOwn(COLLECTIONS, collection) ? COLLECTIONS[collection] : undefined;
}

function secondsSince(started: bigint): number {
  return Number(process.hrtime.bigint() - started) / 1e9;
}
