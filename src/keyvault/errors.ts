import { restPipeline } from '../util/rest-pipeline';
import { ProviderError, type StatusName } from '../errors';
import { boundedHttpErrorIn } from '../identity/bounded-http';
import { joinReasonAndFix, TokenRequestError } from '../identity/token-errors';
import { scrub } from '../observability/scrub';
import { isNetworkErrorCode } from '../util/network-errors';
import { firstLine } from '../util/text';
import { AttemptTimeoutError } from './retry';

/** What was being read when an error happened: the words every Key Vault error message carries. */
export interface ReadContext {
  vaultName: string;
  vaultUrl: string;
  objectType: 'secret' | 'key' | 'certificate';
  objectName: string;
  version: string;
  identity: string;
  /** Set for a listing of the vault's objects of the type (objectName is then empty). */
  listing?: boolean;
}

/** The role that grants read access to each object type under Azure RBAC. */
const READER_ROLE: Record<ReadContext['objectType'], string> = {
  secret: 'Key Vault Secrets User',
  key: 'Key Vault Crypto User',
  certificate: 'Key Vault Certificate User',
};

const IDENTITY_NOT_FOUND = /identity not found/i;
/** IMDS's answer (400) when no identity is named and the node has only user-assigned identities, more than one. */
const MULTIPLE_IDENTITIES = /multiple user assigned identities exist/i;

function isManagedIdentityError(name: unknown): boolean {
  return name === 'CredentialUnavailableError' || name === 'AuthenticationError' || name === 'AggregateAuthenticationError';
}
/** Key Vault's text for reading a disabled object version (status 403, inner code SecretDisabled). */
const DISABLED = /not allowed on a disabled/i;


/** The object a read was for, as messages name it: `secret "db"` or `key "k" version abc…`. */
export function describeRead(ctx: Pick<ReadContext, 'objectType' | 'objectName' | 'version' | 'listing'>): string {
  if (ctx.listing) return `the list of ${ctx.objectType}s`;
  return `${ctx.objectType} "${ctx.objectName}"${ctx.version ? ` version ${ctx.version}` : ''}`;
}

/**
 * Turns whatever the SDK threw into a ProviderError that names the object, the vault and the identity, keeps the
 * service's status and error code, and says what to do. The service's own text is never shown: a body (or a parser's
 * message about it, which quotes it) may hold the very secret that was read, or whatever a proxy in between sent.
 */
export function toProviderError(err: unknown, ctx: ReadContext): ProviderError {
  const what = describeRead(ctx);
  const vault = `Key Vault "${ctx.vaultName}"`;
  const make = (status: StatusName, message: string): ProviderError =>
    new ProviderError(status, scrub(message), { cause: err });
  if (err instanceof TokenRequestError) {
    // The identity layer knows why and what to change; this adds what was being read.
    return make(err.status, `could not get a token for ${err.identity} to read ${what} from ${vault}: ${joinReasonAndFix(err.reason, err.fix)}`);
  }
  if (err instanceof ProviderError) return err;
  const bounded = boundedHttpErrorIn(err);
  if (bounded) {
    const fix =
      bounded.failure === 'foreign'
        ? ": check HTTPS_PROXY/NO_PROXY and the proxy's or firewall's rules for the vault's host"
        : bounded.failure === 'too-large' || bounded.failure === 'not-json'
          ? ': something other than Key Vault may be answering for it (a proxy or firewall); the driver retries the mount'
          : '';
    return make('Unavailable', `could not read ${what} from ${vault}: ${bounded.message}${fix}`);
  }
  if (err instanceof AttemptTimeoutError) {
    return make(
      'Unavailable',
      `${vault} at ${ctx.vaultUrl} did not answer the request for ${what} within ${err.timeoutMs / 1000}s: check network ` +
        "policies, the vault's firewall and any HTTPS_PROXY",
    );
  }

  const name = (err as { name?: unknown } | null)?.name;
  if (isManagedIdentityError(name) && MULTIPLE_IDENTITIES.test(String((err as Error).message))) {
    // IMDS picks the system-assigned identity when no identity is named; a node with none but several user-assigned
    // ones refuses. Retrying cannot help and "system-assigned" would be the wrong name: the SecretProviderClass
    // must choose.
    return make(
      'InvalidArgument',
      `the node's managed identity endpoint (IMDS) has several user-assigned identities and no system-assigned one, so ` +
        `it cannot choose which to use for ${what} in ${vault} (Multiple user assigned identities exist): set ` +
        "userAssignedIdentityID to the client ID of one of the node pool's identities that may read the vault",
    );
  }
  if (name === 'AuthenticationError' || name === 'AggregateAuthenticationError') {
    return make('Unauthenticated', `could not get a token for ${ctx.identity} to read ${what} from ${vault}: ${describeAuthError(err)}`);
  }
  if (name === 'CredentialUnavailableError' && IDENTITY_NOT_FOUND.test((err as Error).message)) {
    // IMDS answers 400 "Identity not found" for an identity the node's scale set does not have; the SDK reports it
    // as "unavailable", but it is a configuration error that retrying will not fix.
    return make(
      'Unauthenticated',
      `the node's managed identity endpoint (IMDS) does not know ${ctx.identity} (Identity not found), so ${what} ` +
        `cannot be read from ${vault}: check userAssignedIdentityID and that the identity is assigned to the node ` +
        "pool's VM scale set",
    );
  }
  if (name === 'CredentialUnavailableError') {
    return make('Unavailable', `no token for ${ctx.identity} is available to read ${what} from ${vault}; the driver retries the mount`);
  }
  if (restPipeline().isRestError(err)) {
    const status = err.statusCode;
    const code = err.code && /^[A-Za-z_]{1,60}$/.test(err.code) ? ` ${err.code}` : '';
    // Read to tell cases apart, never shown.
    const service = firstLine(err.message);
    if (status === undefined || isNetworkErrorCode(err.code)) {
      return make(
        'Unavailable',
        `could not reach ${vault} at ${ctx.vaultUrl} to read ${what} (${err.code ?? 'network error'}): check the vault name, DNS, ` +
          'network policies and any HTTPS_PROXY',
      );
    }
    const cause = `(${status}${code})`;
    if (status === 404) return make('NotFound', `${what} was not found in ${vault} ${cause}: check objectName and objectVersion`);
    if (status === 403 && DISABLED.test(service)) {
      // Key Vault answers a disabled version with 403 too; access rights are not the problem, so say what is.
      return make(
        'FailedPrecondition',
        `${what} is disabled in ${vault} ${cause}: enable it, or set objectVersion to an enabled version`,
      );
    }
    if (status === 403) return make('PermissionDenied', forbiddenMessage(err.message, status, code, what, vault, ctx));
    if (status === 401) return make('Unauthenticated', `${vault} rejected the token of ${ctx.identity} for ${what} ${cause}`);
    if (status === 429) {
      return make(
        'ResourceExhausted',
        `${vault} throttled the requests for ${what} ${cause}: the vault's request limits (per vault, shared by every ` +
          'client) are exhausted; the driver retries the mount, and fewer pods rotating at once, a longer rotation ' +
          'interval or spreading objects over more vaults lowers the load',
      );
    }
    if (status === 400) return make('InvalidArgument', `${vault} rejected the request for ${what} ${cause}`);
    if (status >= 500) return make('Unavailable', `${vault} failed to serve ${what} ${cause}`);
    if (status < 400) return make('Unavailable', `${vault} answered the request for ${what} with an answer that could not be read ${cause}`);
    return make('Internal', `${vault} answered the request for ${what} with an unexpected status ${cause}`);
  }
  if (name === 'AbortError') return make('Cancelled', `reading ${what} from ${vault} was cancelled`);
  // An error of our own code or of a library: its text is no message for a pod; its kind helps the provider's log.
  return make('Internal', `reading ${what} from ${vault} failed unexpectedly (${typeof name === 'string' ? name : 'error'}); see the provider log`);
}

/**
 * A 403 that is about access, worded so the fix is one step. Key Vault's answer names who asked and what was refused,
 * over several lines: "Caller: appid=…;oid=…;iss=…" and "Action: '…'" (Azure RBAC), or one sentence naming the
 * "appid=…;oid=…" and the missing permission (access policies), or "Client address: …" (the firewall). Those ids are
 * what the operator needs to find the principal to grant, so they stay next to the role; the rest is dropped.
 */
function forbiddenMessage(service: string, status: number, code: string, what: string, vault: string, ctx: ReadContext): string {
  // Only pieces that match what Key Vault writes are kept, each checked against its own shape: the service's free
  // text never reaches a pod (a proxy or a garbled answer could put anything there).
  const lines = service.split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
  const field = (name: string, shape: RegExp): string | undefined => {
    const value = lines.find((l) => l.toLowerCase().startsWith(`${name.toLowerCase()}:`))?.slice(name.length + 1).trim().replace(/^'|'$/g, '');
    return value !== undefined && shape.test(value) ? value : undefined;
  };
  const role = `"${READER_ROLE[ctx.objectType]}"`;
  if (/client address is not authorized/i.test(service)) {
    const address = field('Client address', /^[0-9a-fA-F.:]{3,45}$/);
    return (
      `${vault} refused the request for ${what} from ${address ? `address ${address}` : "this node's address"} ` +
      `(${status}${code}: client address is not authorized): allow the node pool's outbound address or subnet in the ` +
      "vault's firewall, or reach the vault through a private endpoint"
    );
  }
  const CALLER = /^appid=[\w-]{1,64};oid=[\w-]{1,64}$/;
  const callerText = (lines.find((l) => /^caller:/i.test(l))?.slice(7).trim() ?? /'(appid=[^']*)'/i.exec(service)?.[1])?.replace(/;iss=[^;]*$/i, '');
  const caller = callerText && CALLER.test(callerText) ? callerText : undefined;
  const action = field('Action', /^[\w./-]{1,200}$/);
  const permission = /does not have (\w{1,20} \w{1,20}) permission/i.exec(service)?.[1];
  const reason = /caller is not authorized to perform action on resource/i.test(service)
    ? 'Caller is not authorized to perform action on resource'
    : permission
      ? `the principal does not have ${permission} permission`
      : undefined;
  const parts = [
    reason,
    caller ? `caller ${caller}` : undefined,
    action ? `action ${action}` : permission ? `missing permission ${permission}` : undefined,
  ].filter(Boolean);
  const detail = `(${status}${code}${parts.length > 0 ? `: ${parts.join('; ')}` : ''})`;
  if (ctx.listing) return `${ctx.identity} may not list the ${ctx.objectType}s of ${vault} ${detail}: ${listGrant(ctx.objectType, role)}`;
  const grant = permission
    ? `add an access policy for that principal with ${permission} permission (the vault uses access policies), or ` +
      `switch the vault to Azure RBAC and grant the ${role} role`
    : `grant that principal the ${role} role on the vault (or on the ${ctx.objectType})`;
  return `${ctx.identity} may not read ${what} from ${vault} ${detail}: ${grant}`;
}

/**
 * Selecting secrets by prefix, pattern or tags lists the vault, which reading named secrets never does: under Azure
 * RBAC the data action Microsoft.KeyVault/vaults/secrets/readMetadata/action (in "Key Vault Secrets User", assigned
 * on the vault: a role on single secrets does not cover the listing); under access policies the List permission.
 */
function listGrant(objectType: ReadContext['objectType'], role: string): string {
  const plural = `${objectType}s`;
  return (
    `listing needs the data action Microsoft.KeyVault/vaults/${plural}/readMetadata/action: with Azure RBAC grant ` +
    `that principal the ${role} role on the vault itself (a role on single ${plural} does not allow listing them); ` +
    `with access policies add the List permission for ${plural} (besides Get) to its access policy`
  );
}

/** What an @azure/identity AuthenticationError may show: the status and the OAuth error word, never the description. */
function describeAuthError(err: unknown): string {
  const e = err as { statusCode?: number; errorResponse?: { error?: string } };
  const word = e.errorResponse?.error && /^[a-z_]{1,60}$/i.test(e.errorResponse.error) ? e.errorResponse.error : 'error';
  return `the token service answered ${e.statusCode ? `${e.statusCode} ` : ''}${word}`;
}
