/** What the modes that ask Entra ID (or the token proxy speaking for it) share: connections and error messages. */
import type { TokenCredential } from '@azure/core-auth';
import type { EntraCredentialOptions } from '../entra-credentials';
import { translateEntraError, type TokenErrorContext } from '../token-errors';
import type { TransportErrorRecorder } from '../transport-errors';
import type { Cached, ModeContext } from './mode';

/** Entra ID credentials share the process's connections and record their transport failures for messages. */
export function entraOptions(ctx: ModeContext, recorder: TransportErrorRecorder): EntraCredentialOptions {
  return {
    userAgentPrefix: ctx.userAgentPrefix,
    ...(ctx.agentFor ? { agentFor: ctx.agentFor } : {}),
    additionalPolicies: [{ policy: recorder.policy, position: 'perRetry' as const }],
  };
}

/** Their failures are explained with what the recorder saw on the wire and what the mount sent (for redaction). */
export function viaEntra(inner: TokenCredential, recorder: TransportErrorRecorder, errors: TokenErrorContext, cached: Cached): TokenCredential {
  return cached(inner, (err) => translateEntraError(err, errors, recorder.take()));
}
