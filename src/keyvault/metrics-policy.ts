/**
 * Counts every HTTP request the Key Vault SDK clients send, with the object type and a coarse outcome (the per-fetch
 * histogram, keyvault_request, is metered-reader.ts). Retries are ours (retry.ts), each a pass through the pipeline,
 * so each counts once.
 * The policy sits per retry, which in the SDK's pipeline is after its authentication policy, so it sees the wire
 * requests: the authentication challenge too. The first request of each new client goes without a token, to learn
 * the vault's tenant and scope, and is answered 401 with WWW-Authenticate; that is the normal start of every
 * client, not a failure, so it is counted in a counter of its own and never as `unauthenticated`. A 401 to a request
 * that carried a token is a rejected token, and is.
 */
import type { PipelinePolicy, PipelineRequest, PipelineResponse } from '@azure/core-rest-pipeline';
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
        if (isChallenge(request, response)) metrics.countKeyVaultChallenge(objectType);
        else metrics.observeKeyVaultRequest(objectType, outcomeOfStatus(response.status), secondsSince(started));
        return response;
      } catch (err) {
        metrics.observeKeyVaultRequest(objectType, outcomeOfError(err, request.abortSignal), secondsSince(started));
        throw err;
      }
    },
  };
}

function isChallenge(request: PipelineRequest, response: PipelineResponse): boolean {
  return response.status === 401 && !request.headers.has('authorization') && response.headers.has('www-authenticate');
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
