/**
 * The one error type of the provider. Every failure a user can act on is a ProviderError: it carries the gRPC
 * status name the server answers with and a message written for the person reading `kubectl describe pod`.
 * The server is the only place that turns it into a gRPC status; everything else throws or wraps it.
 *
 * Messages never contain secret values, tokens or client secrets: callers build them from names, never from content.
 */

/** The gRPC status names we answer with (a subset of google.rpc.Code). */
export type StatusName =
  | 'Cancelled'
  | 'InvalidArgument'
  | 'DeadlineExceeded'
  | 'NotFound'
  | 'PermissionDenied'
  | 'ResourceExhausted'
  | 'FailedPrecondition'
  | 'Internal'
  | 'Unimplemented'
  | 'Unavailable'
  | 'Unauthenticated';

export class ProviderError extends Error {
  override readonly name = 'ProviderError';

  constructor(
    readonly status: StatusName,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** A SecretProviderClass parameter, object entry or request field that cannot be used as given. */
export function invalidArgument(message: string): ProviderError {
  return new ProviderError('InvalidArgument', message);
}

/**
 * A conversion of fetched content that failed (bad encoding, unsupported key type...). Wrapped by mount/ with the
 * object.
 */
export class ContentError extends Error {
  override readonly name = 'ContentError';
}
