/**
 * Why a token could not be had, in words for `kubectl describe pod`: what the token service answered (its status and
 * AADSTS code, scrubbed) and what to change, per identity mode. The Key Vault layer adds the object and the vault
 * (keyvault/errors.ts); this layer knows the identity. Messages carry names and ids, never a secret or a token.
 */
import { ProviderError, type StatusName } from '../errors';
import type { IdentityMode, Outcome } from '../observability/metrics';
import { outcomeOfError } from '../observability/outcome';
import { redactSent, scrub } from '../observability/scrub';
import { firstLine } from '../util/text';

/** A failed token acquisition. `reason` is what happened, `fix` what to do; the message joins them. */
export class TokenRequestError extends ProviderError {
  constructor(
    status: StatusName,
    readonly identity: string,
    readonly reason: string,
    readonly fix: string,
    readonly outcome: Outcome,
    options?: { cause?: unknown },
  ) {
    super(status, `could not get a token for ${identity}: ${joinReasonAndFix(reason, fix)}`, options);
  }
}

/** "reason: fix", without the doubled punctuation of a reason that ends its own sentence. */
export function joinReasonAndFix(reason: string, fix: string): string {
  return fix ? `${reason.replace(/[.\s]+$/, '')}: ${fix}` : reason;
}

const OTHER_TENANT = /not configured to acquire tokens for tenant ([^\s.]+)/;

/**
 * The modes whose tokens come from Entra ID (or the token proxy speaking for it), named here rather than derived from
 * every mode so that a mode which never asks Entra ID leaves this file alone.
 */
export type EntraMode = Extract<IdentityMode, 'servicePrincipal' | 'workloadIdentity' | 'tokenProxy'>;

/** What the translation needs to know about the credential that failed. */
export interface TokenErrorContext {
  mode: EntraMode;
  /** "the service principal with client ID …", for messages. */
  identity: string;
  clientId: string;
  tenantId: string;
  authorityHost: string;
  /** namespace/name of the service account whose token was presented (workload identity, token proxy). */
  serviceAccount?: string;
  /** What the credential sends (client secret, assertion): removed from any text the token service sends back. */
  sent?: readonly string[];
}

/** An error answer of Entra ID (or AD FS, or the token proxy speaking for it), as far as the SDK error shows it. */
export interface EntraError {
  /** AADSTS code, when the answer had one. */
  code: number | undefined;
  /** OAuth error word (invalid_client, …). */
  error: string | undefined;
  /** The service's description without trace ids, scrubbed. */
  description: string;
  status: number | undefined;
}

const AADSTS = /AADSTS(\d+):\s*([\s\S]*?)(?=\s*(?:Trace ID:|Correlation ID:|Timestamp:|\r|\n| - Correlation| - Trace|$))/;

/**
 * Reads an Entra answer out of what @azure/identity throws: an AuthenticationError carries the parsed body; MSAL's
 * server errors arrive as AuthenticationRequiredError whose message is "<error>: Error(s): <codes> - … - Description:
 * AADSTS…". Undefined when the error is not an answer from the token service.
 */
export function entraErrorOf(err: unknown): EntraError | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const e = err as { name?: unknown; message?: unknown; statusCode?: unknown; errorResponse?: { error?: string; errorDescription?: string } };
  const message = typeof e.message === 'string' ? e.message : '';
  const status = typeof e.statusCode === 'number' && e.statusCode > 0 ? e.statusCode : undefined;
  const text = e.errorResponse?.errorDescription || message;
  const m = AADSTS.exec(text);
  if (m) {
    const word = e.errorResponse?.error || /^([a-z_]+):/.exec(message)?.[1];
    return { code: Number(m[1]), error: word, description: scrub(`AADSTS${m[1]}: ${m[2]!.trim()}`).slice(0, 600), status };
  }
  if (e.name === 'AuthenticationError' && e.errorResponse) {
    const description = e.errorResponse.errorDescription || e.errorResponse.error || message;
    return { code: undefined, error: e.errorResponse.error, description: scrub(firstLine(description)), status };
  }
  return undefined;
}

/**
 * Turns an error from ClientSecretCredential / ClientAssertionCredential into a TokenRequestError (aborts pass).
 * `transportError` is the last failure seen on the wire, which MSAL hides behind "network_error".
 */
export function translateEntraError(err: unknown, ctx: TokenErrorContext, transportError?: string): unknown {
  const translated = translate(err, ctx, transportError);
  if (!(translated instanceof TokenRequestError) || !ctx.sent?.length) return translated;
  // The service's description (and anything a proxy said) may quote the client secret or assertion we sent.
  const reason = redactSent(translated.reason, ctx.sent);
  if (reason === translated.reason) return translated;
  return new TokenRequestError(translated.status, translated.identity, reason, translated.fix, translated.outcome, { cause: translated.cause });
}

function translate(err: unknown, ctx: TokenErrorContext, transportError?: string): unknown {
  if (err instanceof ProviderError) return err;
  if ((err as { name?: unknown } | null)?.name === 'AbortError') return err;
  const answer = entraErrorOf(err);
  const where = `${ctx.authorityHost}/${ctx.tenantId}`;
  // The vault's authentication challenge names its tenant; the SDK refuses to get a token in another tenant.
  const otherTenant = OTHER_TENANT.exec(String((err as { message?: unknown } | null)?.message ?? ''));
  if (otherTenant) {
    return new TokenRequestError(
      'Unauthenticated',
      ctx.identity,
      `the vault belongs to tenant ${otherTenant[1]} (from its authentication challenge), but tenantID is ${ctx.tenantId}`,
      'set tenantID to the tenant of the Key Vault',
      'unauthenticated',
      { cause: err },
    );
  }
  if (answer) {
    const status: StatusName = answer.status !== undefined && answer.status >= 500 ? 'Unavailable' : 'Unauthenticated';
    const head = `${answer.status ? `${answer.status} ` : ''}${answer.error ? `${answer.error} ` : ''}from ${where}: ${answer.description}`;
    return new TokenRequestError(status, ctx.identity, head, fixFor(answer.code, ctx), status === 'Unavailable' ? 'server_error' : 'unauthenticated', {
      cause: err,
    });
  }
  const thrown = scrub(firstLine(String((err as { message?: unknown } | null)?.message ?? err)));
  const message = transportError ?? thrown;
  const network = transportError !== undefined || /network|ECONNREFUSED|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|ECONNRESET|socket|proxy|certificate|TLS|self.signed|unable to verify/i.test(message);
  if (network) {
    return new TokenRequestError(
      'Unavailable',
      ctx.identity,
      `could not reach ${where} (${message})`,
      ctx.mode === 'tokenProxy'
        ? 'check --token-proxy-url, --sni-name and that the cluster runs the identity binding token proxy'
        : 'check network policies, DNS, any HTTPS_PROXY/NO_PROXY, and cloudName (its Entra ID host)',
      'network',
      { cause: err },
    );
  }
  return new TokenRequestError('Unauthenticated', ctx.identity, message || 'unknown error', defaultFix(ctx), outcomeOfError(err), { cause: err });
}

function fixFor(code: number | undefined, ctx: TokenErrorContext): string {
  const idParameter = ctx.mode === 'servicePrincipal' ? 'clientid in the nodePublishSecretRef Secret' : 'clientID';
  switch (code) {
    case 90002:
      return `check tenantID ("${ctx.tenantId}") and cloudName: the tenant does not exist in the cloud whose Entra ID is ${ctx.authorityHost}`;
    case 700016:
      return `check ${idParameter} ("${ctx.clientId}") and tenantID ("${ctx.tenantId}"): the application or managed identity must exist in that tenant`;
    case 7000215:
      return (
        `the clientsecret in the nodePublishSecretRef Secret is not a valid secret of application ${ctx.clientId}: store the ` +
        "secret's value (not its ID) under clientsecret, and check that it has not expired"
      );
    case 7000222:
      return `the client secret has expired: create a new secret for application ${ctx.clientId} and update the nodePublishSecretRef Secret`;
    case 70021:
      return ctx.mode === 'tokenProxy'
        ? `no identity binding grants service account ${ctx.serviceAccount ?? '(unknown)'} the identity ${ctx.clientId}: create an ` +
            'identity binding for this service account and managed identity, or use the service account that has one'
        : `add a federated identity credential to ${ctx.clientId} with the cluster's OIDC issuer URL, subject ` +
            `system:serviceaccount:${(ctx.serviceAccount ?? 'namespace/name').replace('/', ':')} and audience api://AzureADTokenExchange, ` +
            'or run the pod with the service account that has one';
    case 700024:
      return "the service account token is outside its validity period: check the node's clock and the CSIDriver's token expiration";
    case 700027:
    case 50027:
      return (
        "Entra ID could not validate the service account token: check that the federated credential's issuer is the " +
        "cluster's OIDC issuer URL and that the cluster's OIDC issuer is enabled"
      );
    case 500011:
    case 1002012:
    case 70011:
      return `check cloudName: the Key Vault resource is not known in the cloud whose Entra ID is ${ctx.authorityHost}`;
    default:
      return defaultFix(ctx);
  }
}

function defaultFix(ctx: TokenErrorContext): string {
  switch (ctx.mode) {
    case 'servicePrincipal':
      return 'check clientid and clientsecret in the nodePublishSecretRef Secret, tenantID and cloudName';
    case 'workloadIdentity':
      return "check clientID, tenantID, cloudName and the identity's federated identity credential for the pod's service account";
    case 'tokenProxy':
      return "check clientID, tenantID and the identity binding for the pod's service account";
  }
}
