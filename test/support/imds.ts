/**
 * A stand-in for the Azure Instance Metadata Service's managed identity endpoint, reached by the product through
 * AZURE_POD_IDENTITY_AUTHORITY_HOST (plain http on loopback, as @azure/identity allows for IMDS).
 *
 * It answers like the real service, not like a mock shaped after the SDK: the same paths, the same required header
 * and parameters, the same error bodies ({"error": "...", "error_description": "..."} with status 400), string-typed
 * numbers in the token response, and the same rules for picking an identity when the request names none.
 *
 * What @azure/identity 4.13.1 (through @azure/msal-node 5.6) sends when AZURE_POD_IDENTITY_AUTHORITY_HOST is set:
 *   GET <host>/metadata/identity/oauth2/token/?api-version=2018-02-01&resource=<scope minus /.default>[&client_id=|
 *   &msi_res_id=|&object_id=] with `Metadata: true`. MSAL lower-cases the URL and appends a trailing slash to the
 *   path, so both spellings of the path are served. 404 and 410 are retried by the SDK (5 times, from 800 ms / 3 s),
 *   5xx and 408 three times, 429/503 only with Retry-After; 400 fails at once.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { HangingRequests, writeHostileAnswer, type HostileAnswer } from './hostile';
import type { TokenRegistry } from './tokens';

export interface SystemAssignedIdentity {
  /** The identity's id in the token registry (and so in the Key Vault stand-in's access lists). */
  id: string;
  /** Reported in token responses as `client_id`; a random GUID when omitted. */
  clientId?: string;
}

export interface UserAssignedIdentity {
  id: string;
  clientId: string;
  /** ARM resource ID, /subscriptions/…/providers/Microsoft.ManagedIdentity/userAssignedIdentities/<name>. */
  resourceId: string;
  /** Principal (object) ID for `object_id` selection; defaults to `id`. */
  objectId?: string;
}

export interface ImdsIdentities {
  systemAssigned?: SystemAssignedIdentity;
  userAssigned?: UserAssignedIdentity[];
}

export interface ImdsOptions {
  tokens: TokenRegistry;
  /**
   * The identities assigned to the "VM". Read on every request: tests may assign or remove identities while running.
   */
  identities: ImdsIdentities;
  /** Lifetime of issued tokens; default 86399 s, what IMDS typically reports. */
  tokenLifetimeSeconds?: number;
  /** Recorded with each token so the Key Vault stand-in can check the tenant; omit to skip that check. */
  tenantId?: string;
  /**
   * Resources (audiences) Entra ID knows; others get IMDS's pass-through of AADSTS500011 (400 invalid_resource).
   * Matched ignoring one trailing slash. Default: Key Vault in the four clouds plus a few common Azure resources.
   */
  knownResources?: string[];
  /** Delay before every answer, in ms. */
  delayMs?: number;
}

export interface ImdsRequestRecord {
  method: string;
  path: string;
  query: Record<string, string>;
  status: number;
  /** The identity a token was issued to (200 only). */
  identityId?: string;
  /** Whether the `Metadata: true` header was present. */
  metadata: boolean;
  /** True when the answer came from injectFaults. */
  faulted?: boolean;
}

export interface ImdsFault {
  /** 404/410 are IMDS's "identity not ready / updating" answers; 429 throttling; 5xx transient. */
  status: 404 | 410 | 429 | 500 | 503;
  retryAfterSeconds?: number;
  /** How many token requests fail; default 1. Use Infinity for "until cleared". */
  count?: number;
}

export interface ImdsStandIn {
  /** Origin to put in AZURE_POD_IDENTITY_AUTHORITY_HOST, e.g. http://127.0.0.1:41234 (no trailing slash). */
  url: string;
  /** Every request, oldest first. */
  requests: ImdsRequestRecord[];
  /** Requests that reached the token endpoint (any outcome). */
  tokenRequestCount(): number;
  /** The live identity set; mutate it to assign or remove identities. */
  identities: ImdsIdentities;
  /** Delay before every answer, in ms. */
  delayMs: number;
  /** Makes the next token requests fail as given (queued in order). */
  injectFaults(fault: ImdsFault): void;
  clearFaults(): void;
  /** Spoils answers to token requests (after the Metadata header check): see hostile.ts. */
  hostile: ((record: ImdsRequestRecord) => HostileAnswer | undefined) | undefined;
  /** Requests held open by a `hang` answer right now. */
  hangingCount(): number;
  close(): Promise<void>;
}

const TOKEN_PATHS = new Set(['/metadata/identity/oauth2/token', '/metadata/identity/oauth2/token/']);

/** The oldest IMDS identity API version; the SDK sends exactly this one. */
const MIN_API_VERSION = '2018-02-01';

export const DEFAULT_KNOWN_RESOURCES: readonly string[] = [
  'https://vault.azure.net',
  'https://vault.usgovcloudapi.net',
  'https://vault.azure.cn',
  'https://vault.microsoftazure.de',
  'https://management.azure.com',
  'https://management.core.windows.net',
  'https://storage.azure.com',
  'https://graph.microsoft.com',
];

export async function startImds(options: ImdsOptions): Promise<ImdsStandIn> {
  const lifetime = options.tokenLifetimeSeconds ?? 86399;
  const known = new Set((options.knownResources ?? DEFAULT_KNOWN_RESOURCES).map(stripSlash));
  const requests: ImdsRequestRecord[] = [];
  const faults: Array<{ fault: ImdsFault; left: number }> = [];
  const systemClientId = options.identities.systemAssigned?.clientId ?? randomUUID();

  const standIn: ImdsStandIn = {
    url: '',
    requests,
    tokenRequestCount: () => requests.filter((r) => TOKEN_PATHS.has(r.path)).length,
    identities: options.identities,
    delayMs: options.delayMs ?? 0,
    injectFaults(fault) {
      faults.push({ fault, left: fault.count ?? 1 });
    },
    clearFaults() {
      faults.length = 0;
    },
    hostile: undefined,
    hangingCount: () => hanging.count,
    close: async () => undefined,
  };
  const hanging = new HangingRequests();

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const url = new URL(req.url ?? '/', 'http://imds.invalid');
    const query = Object.fromEntries(url.searchParams);
    const metadata = headerValue(req, 'metadata')?.toLowerCase() === 'true';
    const record: ImdsRequestRecord = { method: req.method ?? '', path: url.pathname, query, status: 0, metadata };
    requests.push(record);
    const send = (status: number, body: unknown, headers: Record<string, string> = {}): void => {
      record.status = status;
      const text = JSON.stringify(body);
      res.writeHead(status, {
        'Content-Type': 'application/json; charset=utf-8',
        'Content-Length': Buffer.byteLength(text),
        Server: 'IMDS/150.870.65.1854',
        ...headers,
      });
      res.end(text);
    };
    const invalid = (description: string, error = 'invalid_request'): void =>
      send(400, { error, error_description: description });

    if (!TOKEN_PATHS.has(url.pathname)) {
      send(404, { error: 'Not found' });
      return;
    }
    if (req.method !== 'GET') {
      send(405, { error: 'invalid_request', error_description: 'Method not allowed' }, { Allow: 'GET' });
      return;
    }
    // The header is checked first: it is IMDS's defence against server-side request forgery.
    if (!metadata) return invalid('Required metadata header not specified');

    const spoiled = standIn.hostile?.(record);
    if (spoiled) {
      record.faulted = true;
      record.status = writeHostileAnswer(res, spoiled, hanging);
      return;
    }

    const pending = faults[0];
    if (pending) {
      if (--pending.left <= 0) faults.shift();
      record.faulted = true;
      const headers: Record<string, string> = {};
      if (pending.fault.retryAfterSeconds !== undefined) headers['Retry-After'] = String(pending.fault.retryAfterSeconds);
      const bodies: Record<ImdsFault['status'], unknown> = {
        404: { error: 'not_found', error_description: 'Identity is being provisioned; retry later' },
        410: { error: 'gone', error_description: 'IMDS is being updated; retry later' },
        429: { error: 'too_many_requests', error_description: 'Too many requests' },
        500: { error: 'unknown', error_description: 'Internal server error' },
        503: { error: 'service_unavailable', error_description: 'Service unavailable' },
      };
      send(pending.fault.status, bodies[pending.fault.status], headers);
      return;
    }

    const apiVersion = query['api-version'];
    if (!apiVersion) return invalid('Required api-version parameter not specified');
    if (!/^\d{4}-\d{2}-\d{2}$/.test(apiVersion) || apiVersion < MIN_API_VERSION) {
      return invalid(`Invalid api-version ${apiVersion}`);
    }
    const resource = query['resource'];
    if (!resource) return invalid('Required audience parameter not specified');

    const selectors = (['client_id', 'object_id', 'msi_res_id'] as const).filter((k) => query[k] !== undefined);
    if (selectors.length > 1) return invalid('Only one of client_id, object_id or msi_res_id may be specified');
    const identity = pickIdentity(standIn.identities, selectors[0], selectors[0] ? query[selectors[0]]! : '');
    if ('error' in identity) return invalid(identity.error);

    if (!known.has(stripSlash(resource))) {
      // IMDS passes Entra ID's answer through.
      return send(400, {
        error: 'invalid_resource',
        error_description:
          `AADSTS500011: The resource principal named ${resource} was not found in the tenant named ` +
          `${options.tenantId ?? 'the VM tenant'}. This can happen if the application has not been installed by the ` +
          'administrator of the tenant or consented to by any user in the tenant. You might have sent your ' +
          'authentication request to the wrong tenant.',
        error_codes: [500011],
      });
    }

    const { token, record: issued } = options.tokens.issue({
      identityId: identity.id,
      resource,
      lifetimeSeconds: lifetime,
      issuer: 'imds',
      ...(options.tenantId !== undefined ? { tenantId: options.tenantId } : {}),
    });
    record.identityId = identity.id;
    // IMDS sends every number as a string.
    send(200, {
      access_token: token,
      client_id: identity.clientId,
      expires_in: String(lifetime),
      expires_on: String(issued.expiresOn),
      ext_expires_in: String(lifetime),
      not_before: String(issued.issuedAt - 300),
      resource,
      token_type: 'Bearer',
    });
  };

  /**
   * IMDS's rules: a selector must match a user-assigned identity; without one, the system-assigned identity is used,
   * or, if there is none, the only user-assigned identity; with several and no selector it refuses.
   */
  function pickIdentity(
    identities: ImdsIdentities,
    selector: 'client_id' | 'object_id' | 'msi_res_id' | undefined,
    value: string,
  ): { id: string; clientId: string } | { error: string } {
    const users = identities.userAssigned ?? [];
    if (!selector) {
      if (identities.systemAssigned) {
        return { id: identities.systemAssigned.id, clientId: identities.systemAssigned.clientId ?? systemClientId };
      }
      if (users.length === 1) return users[0]!;
      if (users.length > 1) {
        return {
          error:
            'Multiple user assigned identities exist, please specify the clientId / resourceId of the identity in the token request',
        };
      }
      return { error: 'Identity not found' };
    }
    // GUIDs and ARM resource IDs are case-insensitive.
    const v = value.toLowerCase();
    const match = users.find((u) =>
      selector === 'client_id'
        ? u.clientId.toLowerCase() === v
        : selector === 'object_id'
          ? (u.objectId ?? u.id).toLowerCase() === v
          : u.resourceId.toLowerCase() === v,
    );
    return match ?? { error: 'Identity not found' };
  }

  const server: Server = createServer((req, res) => {
    // Drain the body (IMDS GETs have none, but a client may send one) before answering.
    req.resume();
    req.on('end', () => {
      if (standIn.delayMs > 0) setTimeout(() => handle(req, res), standIn.delayMs);
      else handle(req, res);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  standIn.url = `http://127.0.0.1:${port}`;
  standIn.close = () => {
    hanging.releaseAll();
    return closeServer(server);
  };
  return standIn;
}

function headerValue(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function stripSlash(s: string): string {
  return s.endsWith('/') ? s.slice(0, -1) : s;
}

/** Stops listening and drops kept-alive connections, so tests never hang on an idle socket. */
export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
