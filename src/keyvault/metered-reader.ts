/**
 * keyvault_request as the reference records it: one observation per object read (a get, or a version listing), from
 * the call to its result, with retries, the per-vault queue and the auth challenge inside it, and `error` empty on
 * success. The failure class comes from a fixed set (never the error text), so alerts on `error!=""` work without
 * unbounded series.
 */
import { ProviderError, type StatusName } from '../errors';
import type { ListedVersion, VaultReader } from '../spec/ports';
import type { ObjectType } from '../spec/types';
import type { FetchError, KeyVaultObjectType, ProviderMetrics } from '../observability/metrics';
import { outcomeOfError } from '../observability/outcome';

/**
 * When the cause carries no HTTP status or network code, the status we answer with says what kind of failure it was.
 */
const CLASS_OF_STATUS: Partial<Record<StatusName, FetchError>> = {
  NotFound: 'not_found',
  PermissionDenied: 'forbidden',
  Unauthenticated: 'unauthenticated',
  ResourceExhausted: 'throttled',
  Unavailable: 'server_error',
  Cancelled: 'cancelled',
  DeadlineExceeded: 'cancelled',
};

export function fetchErrorClass(err: unknown, signal?: AbortSignal): FetchError {
  const fromCause = outcomeOfError(err instanceof ProviderError && err.cause !== undefined ? err.cause : err, signal);
  if (fromCause !== 'other' && fromCause !== 'success') return fromCause;
  if (err instanceof ProviderError) return CLASS_OF_STATUS[err.status] ?? 'other';
  return 'other';
}

export function meteredReader(reader: VaultReader, metrics: ProviderMetrics): VaultReader {
  const timed = async <T>(objectType: KeyVaultObjectType, signal: AbortSignal, read: () => Promise<T>): Promise<T> => {
    const started = process.hrtime.bigint();
    const seconds = (): number => Number(process.hrtime.bigint() - started) / 1e9;
    try {
      const result = await read();
      metrics.observeObjectFetch(objectType, '', seconds());
      return result;
    } catch (err) {
      metrics.observeObjectFetch(objectType, fetchErrorClass(err, signal), seconds());
      throw err;
    }
  };
  return {
    vaultName: reader.vaultName,
    getSecret: (name, version, signal) => timed('secret', signal, () => reader.getSecret(name, version, signal)),
    getKey: (name, version, signal) => timed('key', signal, () => reader.getKey(name, version, signal)),
    getCertificate: (name, version, signal) => timed('cert', signal, () => reader.getCertificate(name, version, signal)),
    listVersions: (type: ObjectType, name, signal): Promise<ListedVersion[]> =>
      timed(type, signal, () => reader.listVersions(type, name, signal)),
    listSecrets: (signal) => timed('secret', signal, () => reader.listSecrets(signal)),
  };
}
