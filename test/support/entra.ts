/**
 * Local stand-ins for Microsoft Entra ID and the things that federate with it:
 *
 *  - `startEntra`: the token service (login.microsoftonline.com and the other clouds' login hosts, plus AD FS hosts),
 *    over TLS with the test PKI, reached through the CONNECT proxy under its real host names. It serves what MSAL
 *    (@azure/msal-node 5.6 behind @azure/identity 4.13.1) asks for:
 *      GET  /{tenant}/v2.0/.well-known/openid-configuration      (authority metadata)
 *      GET  /common/discovery/instance?api-version=1.1&…         (instance discovery, if a client asks)
 *      POST /{tenant}/oauth2/v2.0/token                          (client_credentials with client_secret or with
 *                                                                  client_assertion + jwt-bearer assertion type)
 *      GET  /adfs/.well-known/openid-configuration, POST /adfs/oauth2/token   (AD FS hosts, Azure Stack Hub)
 *    Errors are Entra's: status, `error`, `error_description` starting with the AADSTS code, `error_codes`.
 *  - `createServiceAccountIssuer`: a cluster's service account token issuer (RS256 JWTs), the assertions of workload
 *    identity. Entra trusts an issuer's key the way it trusts a federated credential's issuer (here: registered, not
 *    fetched from the issuer's discovery document).
 *  - `startIdentityBindingProxy`: the AKS API server endpoint with its identity binding token proxy behind SNI
 *    routing: a TLS handshake for `a<hash>.ests.aks` reaches the token exchange, anything else the API server.
 *
 * Tokens are issued through the shared TokenRegistry, so the Key Vault stand-in accepts them.
 */
import { HangingRequests, writeHostileAnswer, type HostileAnswer } from './hostile';
import { createHash, generateKeyPairSync, randomUUID, sign, verify, type KeyObject } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { createSecureContext, type TLSSocket } from 'node:tls';
import type { TestPki } from './pki';
import type { TokenRegistry } from './tokens';

export const CLIENT_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
export const WORKLOAD_IDENTITY_AUDIENCE = 'api://AzureADTokenExchange';
export const IDENTITY_BINDING_AUDIENCE = 'api://AKSIdentityBinding';

/** The login hosts of the four named clouds (and the aliases the Key Vault challenge and MSAL use). */
export const LOGIN_HOSTS: readonly string[] = [
  'login.microsoftonline.com',
  'login.windows.net',
  'login.microsoftonline.us',
  'login.chinacloudapi.cn',
  // MSAL sends the China cloud's token requests to its preferred network alias, as the real service directs.
  'login.partner.microsoftonline.cn',
  'login.microsoftonline.de',
];

/** Resources Entra knows by default: Key Vault in the four clouds. Tests add Azure Stack's. */
const DEFAULT_RESOURCES = [
  'https://vault.azure.net',
  'https://vault.usgovcloudapi.net',
  'https://vault.azure.cn',
  'https://vault.microsoftazure.de',
];

// ---- service account tokens ------------------------------------------------------------------------------------

export interface ServiceAccountTokenRequest {
  namespace: string;
  serviceAccount: string;
  audience: string;
  /** Default 3600 s, the lifetime kubelet asks for when the CSIDriver sets none. */
  lifetimeSeconds?: number;
  /** Seconds added to "now" for iat/nbf/exp (negative: a token issued in the past, e.g. an expired one). */
  skewSeconds?: number;
}

export interface ServiceAccountIssuer {
  /** The issuer URL (the cluster's OIDC issuer). */
  issuer: string;
  publicKey: KeyObject;
  /** A signed token, as kubelet's TokenRequest would return it. */
  issue(request: ServiceAccountTokenRequest): { token: string; expirationTimestamp: string };
}

export function createServiceAccountIssuer(issuer = `https://oidc.test.invalid/${randomUUID()}/`): ServiceAccountIssuer {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const kid = createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' })).digest('base64url');
  return {
    issuer,
    publicKey,
    issue(request) {
      const now = Math.floor(Date.now() / 1000) + (request.skewSeconds ?? 0);
      const exp = now + (request.lifetimeSeconds ?? 3600);
      const payload = {
        aud: [request.audience],
        exp,
        iat: now,
        iss: issuer,
        nbf: now,
        sub: `system:serviceaccount:${request.namespace}:${request.serviceAccount}`,
        'kubernetes.io': {
          namespace: request.namespace,
          serviceaccount: { name: request.serviceAccount, uid: randomUUID() },
        },
        // Unique per token, as real tokens are (jti since Kubernetes 1.29).
        jti: randomUUID(),
      };
      const head = b64url({ alg: 'RS256', kid, typ: 'JWT' });
      const body = b64url(payload);
      const signature = sign('sha256', Buffer.from(`${head}.${body}`), privateKey).toString('base64url');
      return { token: `${head}.${body}.${signature}`, expirationTimestamp: new Date(exp * 1000).toISOString() };
    },
  };
}

/** The value of the `csi.storage.k8s.io/serviceAccount.tokens` attribute for the given tokens, keyed by audience. */
export function serviceAccountTokensAttribute(tokens: Record<string, { token: string; expirationTimestamp: string }>): string {
  return JSON.stringify(tokens);
}

interface VerifiedAssertion {
  iss: string;
  sub: string;
  aud: string[];
  exp: number;
  nbf: number;
}

type AssertionCheck = { ok: true; claims: VerifiedAssertion } | { ok: false; code: number; error: string; description: string };

/** Checks a JWT client assertion the way Entra does for a federated credential: format, issuer key, signature, time. */
function checkAssertion(jwt: string, issuers: ReadonlyMap<string, KeyObject>): AssertionCheck {
  const parts = jwt.split('.');
  const malformed: AssertionCheck = { ok: false, code: 50027, error: 'invalid_request', description: 'JWT token is invalid or malformed.' };
  if (parts.length !== 3) return malformed;
  let header: { alg?: string };
  let claims: Partial<VerifiedAssertion> & { aud?: string | string[] };
  try {
    header = JSON.parse(Buffer.from(parts[0]!, 'base64url').toString('utf8')) as { alg?: string };
    claims = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')) as typeof claims;
  } catch {
    return malformed;
  }
  if (header.alg !== 'RS256' || typeof claims.iss !== 'string' || typeof claims.sub !== 'string') return malformed;
  const key = issuers.get(claims.iss);
  const aud = Array.isArray(claims.aud) ? claims.aud : typeof claims.aud === 'string' ? [claims.aud] : [];
  if (!key) {
    return {
      ok: false,
      code: 70021,
      error: 'invalid_request',
      description:
        `No matching federated identity record found for presented assertion issuer '${claims.iss}'. Please check ` +
        'your federated identity credential Subject, Audience and Issuer against the presented assertion.',
    };
  }
  if (!verify('sha256', Buffer.from(`${parts[0]}.${parts[1]}`), key, Buffer.from(parts[2]!, 'base64url'))) {
    return { ok: false, code: 700027, error: 'invalid_client', description: 'Client assertion failed signature validation.' };
  }
  const now = Math.floor(Date.now() / 1000);
  const exp = Number(claims.exp);
  const nbf = Number(claims.nbf ?? claims.exp);
  // Entra allows five minutes of clock skew.
  if (!(exp + 300 > now) || nbf - 300 > now) {
    return {
      ok: false,
      code: 700024,
      error: 'invalid_client',
      description:
        `Client assertion is not within its valid time range. Current time: ${new Date(now * 1000).toISOString()}, ` +
        `assertion valid from ${new Date(nbf * 1000).toISOString()}, expiry time of assertion ${new Date(exp * 1000).toISOString()}.`,
    };
  }
  return { ok: true, claims: { iss: claims.iss, sub: claims.sub, aud, exp, nbf } };
}

// ---- Entra ID ------------------------------------------------------------------------------------------------

export interface FederatedCredential {
  issuer: string;
  /** e.g. system:serviceaccount:<namespace>:<name> */
  subject: string;
  /** Default api://AzureADTokenExchange. */
  audience?: string;
}

export interface EntraApplication {
  clientId: string;
  /** The token registry id Key Vault access lists use. */
  identityId: string;
  /** The tenant the application (service principal) lives in. */
  tenantId: string;
  /** Client secret values that are currently valid. */
  secrets?: string[];
  /** Federated identity credentials (workload identity). */
  federatedCredentials?: FederatedCredential[];
}

export interface EntraOptions {
  pki: TestPki;
  tokens: TokenRegistry;
  /** Tenants that exist; applications' tenants are added automatically. */
  tenants?: string[];
  applications?: EntraApplication[];
  /** Issuers whose assertions can be presented (their public keys). */
  trustedIssuers?: Array<{ issuer: string; publicKey: KeyObject }>;
  /** Extra login hosts to serve (Azure Stack Hub with Entra ID). */
  extraHosts?: string[];
  /** Hosts that behave as AD FS (authority `https://<host>/adfs`). */
  adfsHosts?: string[];
  /** Extra known resources (audiences), e.g. an Azure Stack Hub vault resource. */
  extraResources?: string[];
  /** Lifetime of issued access tokens; default 3599 s, what Entra reports for client credentials. */
  tokenLifetimeSeconds?: number;
}

export interface EntraRequestRecord {
  host: string;
  method: string;
  path: string;
  kind: 'openid-configuration' | 'instance-discovery' | 'token' | 'other';
  tenant?: string;
  grantType?: string;
  clientId?: string;
  credential?: 'secret' | 'assertion' | 'none';
  /** For assertions: the assertion's subject (who presented it). */
  subject?: string;
  status: number;
  /** AADSTS code of an error answer. */
  errorCode?: number;
  /** Identity a token was issued to. */
  identityId?: string;
  resource?: string;
}

export interface EntraStandIn {
  /** 127.0.0.1 and the port the CONNECT proxy should send the login hosts to. */
  host: string;
  port: number;
  /** Every host the stand-in serves (for proxy routing). */
  hosts: readonly string[];
  requests: EntraRequestRecord[];
  /** Token endpoint requests matching the filter (any outcome). */
  tokenRequestCount(filter?: Partial<Pick<EntraRequestRecord, 'clientId' | 'credential' | 'status' | 'host' | 'subject'>>): number;
  addApplication(app: EntraApplication): void;
  /** Replaces an application's valid secrets (rotation). */
  setSecrets(clientId: string, secrets: string[]): void;
  trustIssuer(issuer: string, publicKey: KeyObject): void;
  /** Route function for `startAzureStandIns({ route })`. */
  route(host: string, port: number): { host: string; port: number } | undefined;
  /** Spoils answers to token requests (the form holds what the client sent): see hostile.ts. */
  hostile: ((record: EntraRequestRecord, form: URLSearchParams) => HostileAnswer | undefined) | undefined;
  close(): Promise<void>;
}

export async function startEntra(options: EntraOptions): Promise<EntraStandIn> {
  const lifetime = options.tokenLifetimeSeconds ?? 3599;
  const tenants = new Set((options.tenants ?? []).map((t) => t.toLowerCase()));
  const apps: EntraApplication[] = [];
  const issuers = new Map<string, KeyObject>();
  const resources = new Set([...DEFAULT_RESOURCES, ...(options.extraResources ?? [])].map(stripSlash));
  const adfsHosts = new Set((options.adfsHosts ?? []).map((h) => h.toLowerCase()));
  const hosts = [...LOGIN_HOSTS, ...(options.extraHosts ?? []), ...adfsHosts].map((h) => h.toLowerCase());
  const requests: EntraRequestRecord[] = [];
  const hostile: { answer: EntraStandIn['hostile'] } = { answer: undefined };
  const hanging = new HangingRequests();

  const addApplication = (app: EntraApplication): void => {
    apps.push({ ...app, secrets: [...(app.secrets ?? [])], federatedCredentials: [...(app.federatedCredentials ?? [])] });
    tenants.add(app.tenantId.toLowerCase());
  };
  for (const app of options.applications ?? []) addApplication(app);
  for (const i of options.trustedIssuers ?? []) issuers.set(i.issuer, i.publicKey);

  const cert = options.pki.issueServerCert(hosts);

  const handle = async (req: IncomingMessage, res: ServerResponse, body: string): Promise<void> => {
    const host = (req.headers.host ?? '').toLowerCase().replace(/:\d+$/, '');
    const url = new URL(req.url ?? '/', `https://${host || 'login.invalid'}`);
    const path = url.pathname.replace(/\/+$/, '') || '/';
    const record: EntraRequestRecord = { host, method: req.method ?? '', path, kind: 'other', status: 0 };
    requests.push(record);
    const send = (status: number, json: unknown): void => {
      record.status = status;
      const text = JSON.stringify(json);
      res.writeHead(status, {
        'Content-Type': 'application/json; charset=utf-8',
        'Content-Length': Buffer.byteLength(text),
        'Cache-Control': 'no-store, no-cache',
        Pragma: 'no-cache',
        'x-ms-request-id': randomUUID(),
        'X-Content-Type-Options': 'nosniff',
        'Strict-Transport-Security': 'max-age=31536000; includeSubDomains',
      });
      res.end(text);
    };
    const fail = (status: number, error: string, code: number, description: string): void => {
      record.errorCode = code;
      const traceId = randomUUID();
      const correlationId = randomUUID();
      const timestamp = new Date().toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
      send(status, {
        error,
        error_description: `AADSTS${code}: ${description} Trace ID: ${traceId} Correlation ID: ${correlationId} Timestamp: ${timestamp}`,
        error_codes: [code],
        timestamp,
        trace_id: traceId,
        correlation_id: correlationId,
        error_uri: `https://${host}/error?code=${code}`,
      });
    };

    if (adfsHosts.has(host)) return handleAdfs(url, path, record, req, body, send, fail);

    // Instance discovery (/common/discovery/instance): the real service's answer for the known clouds.
    if (path === '/common/discovery/instance' && req.method === 'GET') {
      record.kind = 'instance-discovery';
      const endpoint = url.searchParams.get('authorization_endpoint') ?? '';
      const tenant = /^https:\/\/[^/]+\/([^/]+)\//.exec(endpoint)?.[1] ?? 'common';
      return send(200, {
        tenant_discovery_endpoint: `https://${host}/${tenant}/v2.0/.well-known/openid-configuration`,
        'api-version': '1.1',
        metadata: [
          { preferred_network: 'login.microsoftonline.com', preferred_cache: 'login.windows.net', aliases: ['login.microsoftonline.com', 'login.windows.net', 'login.microsoft.com', 'sts.windows.net'] },
          { preferred_network: 'login.partner.microsoftonline.cn', preferred_cache: 'login.partner.microsoftonline.cn', aliases: ['login.partner.microsoftonline.cn', 'login.chinacloudapi.cn'] },
          { preferred_network: 'login.microsoftonline.de', preferred_cache: 'login.microsoftonline.de', aliases: ['login.microsoftonline.de'] },
          { preferred_network: 'login.microsoftonline.us', preferred_cache: 'login.microsoftonline.us', aliases: ['login.microsoftonline.us', 'login.usgovcloudapi.net'] },
        ],
      });
    }

    const m = /^\/([^/]+)(\/.*)$/.exec(path);
    const tenant = m?.[1]?.toLowerCase();
    const rest = m?.[2] ?? '';
    if (!tenant) return fail(404, 'invalid_request', 90027, `The request path ${path} is not served.`);
    record.tenant = tenant;
    const knownTenant = tenants.has(tenant);
    const tenantNotFound = (): void =>
      fail(
        400,
        'invalid_tenant',
        90002,
        `Tenant '${tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct ` +
          'cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant.',
      );

    if (rest === '/v2.0/.well-known/openid-configuration' && req.method === 'GET') {
      record.kind = 'openid-configuration';
      if (!knownTenant) return tenantNotFound();
      return send(200, openIdConfiguration(`https://${host}`, tenant));
    }
    if (rest === '/oauth2/v2.0/token') {
      record.kind = 'token';
      if (req.method !== 'POST') return fail(405, 'invalid_request', 900561, 'The endpoint only accepts POST requests.');
      if (!knownTenant) return tenantNotFound();
      const form = new URLSearchParams(body);
      const spoiled = hostile.answer?.(record, form);
      if (spoiled) {
        record.clientId = form.get('client_id') ?? '';
        record.status = writeHostileAnswer(res, spoiled, hanging);
        return;
      }
      return tokenRequest(form, tenant, record, fail, send);
    }
    return fail(404, 'invalid_request', 90027, `The request path ${path} is not served.`);
  };

  /** The client credentials grant: check the application, the scope, then the credential; issue a token. */
  function tokenRequest(
    form: URLSearchParams,
    tenant: string,
    record: EntraRequestRecord,
    fail: (status: number, error: string, code: number, description: string) => void,
    send: (status: number, json: unknown) => void,
  ): void {
    const grantType = form.get('grant_type') ?? '';
    const clientId = form.get('client_id') ?? '';
    record.grantType = grantType;
    record.clientId = clientId;
    const secret = form.get('client_secret');
    const assertion = form.get('client_assertion');
    record.credential = secret !== null ? 'secret' : assertion !== null ? 'assertion' : 'none';
    if (grantType !== 'client_credentials') {
      return fail(400, 'unsupported_grant_type', 70003, `The app requested an unsupported grant type '${grantType}'.`);
    }
    if (!clientId) return fail(400, 'invalid_request', 900144, "The request body must contain the following parameter: 'client_id'.");
    const app = apps.find((a) => a.clientId.toLowerCase() === clientId.toLowerCase() && a.tenantId.toLowerCase() === tenant);
    if (!app) {
      return fail(
        400,
        'unauthorized_client',
        700016,
        `Application with identifier '${clientId}' was not found in the directory '${tenant}'. This can happen if the ` +
          'application has not been installed by the administrator of the tenant or consented to by any user in the tenant. ' +
          'You may have sent your authentication request to the wrong tenant.',
      );
    }
    if (secret !== null) {
      if (!(app.secrets ?? []).includes(secret)) {
        return fail(
          401,
          'invalid_client',
          7000215,
          'Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the ' +
            `client secret ID, for a secret added to app '${app.clientId}'.`,
        );
      }
    } else if (assertion !== null) {
      if (form.get('client_assertion_type') !== CLIENT_ASSERTION_TYPE) {
        return fail(400, 'invalid_request', 50027, 'Invalid client_assertion_type: expected urn:ietf:params:oauth:client-assertion-type:jwt-bearer.');
      }
      const checked = checkAssertion(assertion, issuers);
      if (!checked.ok) return fail(checked.code === 70021 ? 400 : 401, checked.error, checked.code, checked.description);
      record.subject = checked.claims.sub;
      const match = (app.federatedCredentials ?? []).some(
        (f) =>
          f.issuer === checked.claims.iss &&
          f.subject === checked.claims.sub &&
          checked.claims.aud.includes(f.audience ?? WORKLOAD_IDENTITY_AUDIENCE),
      );
      if (!match) {
        return fail(
          400,
          'invalid_request',
          70021,
          `No matching federated identity record found for presented assertion. Assertion Issuer: '${checked.claims.iss}'. ` +
            `Assertion Subject: '${checked.claims.sub}'. Assertion Audience: '${checked.claims.aud.join(',')}'.`,
        );
      }
    } else {
      return fail(
        401,
        'invalid_client',
        7000218,
        "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
      );
    }
    const scope = (form.get('scope') ?? '').split(' ').find((s) => s.endsWith('/.default'));
    if (!scope) {
      return fail(
        400,
        'invalid_scope',
        1002012,
        `The provided value for scope ${form.get('scope') ?? ''} is not valid. Client credential flows must have a scope ` +
          'value with /.default suffixed to the resource identifier (application ID URI).',
      );
    }
    const resource = scope.slice(0, -'/.default'.length);
    if (!resources.has(stripSlash(resource))) {
      return fail(
        400,
        'invalid_resource',
        500011,
        `The resource principal named ${resource} was not found in the tenant named ${tenant}. This can happen if the ` +
          'application has not been installed by the administrator of the tenant or consented to by any user in the tenant. ' +
          'You might have sent your authentication request to the wrong tenant.',
      );
    }
    const { token } = options.tokens.issue({ identityId: app.identityId, resource, lifetimeSeconds: lifetime, issuer: 'entra', tenantId: tenant });
    record.identityId = app.identityId;
    record.resource = resource;
    send(200, { token_type: 'Bearer', expires_in: lifetime, ext_expires_in: lifetime, access_token: token });
  }

  /** AD FS (Azure Stack Hub disconnected): authority https://<host>/adfs, client credentials with a secret. */
  function handleAdfs(
    url: URL,
    path: string,
    record: EntraRequestRecord,
    req: IncomingMessage,
    body: string,
    send: (status: number, json: unknown) => void,
    fail: (status: number, error: string, code: number, description: string) => void,
  ): void {
    const origin = `https://${url.host}`;
    record.tenant = 'adfs';
    if (path === '/adfs/.well-known/openid-configuration' && req.method === 'GET') {
      record.kind = 'openid-configuration';
      return send(200, {
        issuer: `${origin}/adfs`,
        authorization_endpoint: `${origin}/adfs/oauth2/authorize/`,
        token_endpoint: `${origin}/adfs/oauth2/token/`,
        jwks_uri: `${origin}/adfs/discovery/keys`,
        token_endpoint_auth_methods_supported: ['client_secret_post', 'client_secret_basic', 'private_key_jwt', 'windows_client_authentication'],
        response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token', 'code token', 'code id_token token'],
        response_modes_supported: ['query', 'fragment', 'form_post'],
        grant_types_supported: ['authorization_code', 'refresh_token', 'client_credentials', 'urn:ietf:params:oauth:grant-type:jwt-bearer', 'implicit', 'password', 'srv_challenge', 'urn:ietf:params:oauth:grant-type:device_code', 'device_code'],
        subject_types_supported: ['pairwise'],
        scopes_supported: ['allatclaims', 'email', 'user_impersonation', 'logon_cert', 'aza', 'profile', 'vpn_cert', 'winhello_cert', 'openid'],
        id_token_signing_alg_values_supported: ['RS256'],
        end_session_endpoint: `${origin}/adfs/oauth2/logout`,
        access_token_issuer: `http://${url.host}/adfs/services/trust`,
      });
    }
    if (path === '/adfs/oauth2/token' && req.method === 'POST') {
      record.kind = 'token';
      // AD FS is its own single "tenant": applications registered with tenantId "adfs" live here.
      return tokenRequest(new URLSearchParams(body), 'adfs', record, fail, send);
    }
    return fail(404, 'invalid_request', 90027, `The request path ${path} is not served by AD FS.`);
  }

  const sockets = new Set<Socket>();
  const server: Server = createServer({ cert: cert.certPem, key: cert.keyPem }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      handle(req, res, Buffer.concat(chunks).toString('utf8')).catch((err: unknown) => {
        res.writeHead(500, { 'Content-Type': 'text/plain' });
        res.end(String(err));
      });
    });
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const hostSet = new Set(hosts);

  return {
    host: '127.0.0.1',
    port,
    hosts,
    requests,
    tokenRequestCount(filter = {}) {
      return requests.filter(
        (r) =>
          r.kind === 'token' &&
          (filter.clientId === undefined || r.clientId?.toLowerCase() === filter.clientId.toLowerCase()) &&
          (filter.credential === undefined || r.credential === filter.credential) &&
          (filter.status === undefined || r.status === filter.status) &&
          (filter.host === undefined || r.host === filter.host) &&
          (filter.subject === undefined || r.subject === filter.subject),
      ).length;
    },
    addApplication,
    setSecrets(clientId, secrets) {
      const app = apps.find((a) => a.clientId.toLowerCase() === clientId.toLowerCase());
      if (!app) throw new Error(`no application ${clientId} in the Entra stand-in`);
      app.secrets = [...secrets];
    },
    trustIssuer(issuer, publicKey) {
      issuers.set(issuer, publicKey);
    },
    route(host, p) {
      return p === 443 && hostSet.has(host.toLowerCase()) ? { host: '127.0.0.1', port } : undefined;
    },
    get hostile() {
      return hostile.answer;
    },
    set hostile(fn) {
      hostile.answer = fn;
    },
    close: () =>
      new Promise<void>((resolve) => {
        hanging.releaseAll();
        server.close(() => resolve());
        server.closeAllConnections();
        for (const s of sockets) s.destroy();
      }),
  };
}

/** The tenant's v2.0 OpenID configuration as Entra serves it, on the host it was asked on. */
function openIdConfiguration(origin: string, tenant: string): Record<string, unknown> {
  return {
    token_endpoint: `${origin}/${tenant}/oauth2/v2.0/token`,
    token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
    jwks_uri: `${origin}/${tenant}/discovery/v2.0/keys`,
    response_modes_supported: ['query', 'fragment', 'form_post'],
    subject_types_supported: ['pairwise'],
    id_token_signing_alg_values_supported: ['RS256'],
    response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
    scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
    issuer: `${origin}/${tenant}/v2.0`,
    request_uri_parameter_supported: false,
    userinfo_endpoint: 'https://graph.microsoft.com/oidc/userinfo',
    authorization_endpoint: `${origin}/${tenant}/oauth2/v2.0/authorize`,
    device_authorization_endpoint: `${origin}/${tenant}/oauth2/v2.0/devicecode`,
    http_logout_supported: true,
    frontchannel_logout_supported: true,
    end_session_endpoint: `${origin}/${tenant}/oauth2/v2.0/logout`,
    claims_supported: ['sub', 'iss', 'cloud_instance_name', 'cloud_instance_host_name', 'cloud_graph_host_name', 'msgraph_host', 'aud', 'exp', 'iat', 'auth_time', 'acr', 'nonce', 'preferred_username', 'name', 'tid', 'ver', 'at_hash', 'c_hash', 'email'],
    kerberos_endpoint: `${origin}/${tenant}/kerberos`,
    tenant_region_scope: 'NA',
    cloud_instance_name: 'microsoftonline.com',
    cloud_graph_host_name: 'graph.windows.net',
    msgraph_host: 'graph.microsoft.com',
    rbac_url: 'https://pas.windows.net',
  };
}

// ---- AKS identity binding token proxy -----------------------------------------------------------------------------

export interface IdentityBinding {
  namespace: string;
  serviceAccount: string;
  /** The managed identity's client id the binding grants. */
  clientId: string;
  identityId: string;
  tenantId: string;
}

export interface IdentityBindingProxyOptions {
  /** Issues the API server's and the proxy's certificates (the cluster CA). */
  pki: TestPki;
  tokens: TokenRegistry;
  /** The id in the API server certificate's SAN hcp-kubernetes.<clusterId>.svc.cluster.local. */
  clusterId: string;
  /** The cluster's service account token issuer. */
  issuer: ServiceAccountIssuer;
  bindings: IdentityBinding[];
  tokenLifetimeSeconds?: number;
}

export interface IdentityBindingRequestRecord {
  /** The SNI name the client sent ('' for none). */
  servername: string;
  method: string;
  path: string;
  /** Host header as sent. */
  host: string;
  kind: 'openid-configuration' | 'token' | 'apiserver' | 'other';
  clientId?: string;
  subject?: string;
  status: number;
  errorCode?: number;
  identityId?: string;
}

export interface IdentityBindingProxy {
  /** https://127.0.0.1:PORT, for --token-proxy-url. */
  url: string;
  port: number;
  /** The SNI name of the token proxy, computed as AKS does from the cluster id. */
  sniName: string;
  requests: IdentityBindingRequestRecord[];
  tokenRequestCount(filter?: { clientId?: string; status?: number; subject?: string }): number;
  /** TLS handshakes by server name. */
  handshakes: string[];
  bindings: IdentityBinding[];
  close(): Promise<void>;
}

/** AKS's SNI name for the identity binding proxy: "a" + base32hex(sha256("identity-binding" + id)) + ".ests.aks". */
export function identityBindingSniName(clusterId: string): string {
  const digest = createHash('sha256').update(`identity-binding${clusterId}`).digest();
  return `a${base32Hex(digest)}.ests.aks`.toLowerCase();
}

function base32Hex(bytes: Buffer): string {
  const alphabet = '0123456789ABCDEFGHIJKLMNOPQRSTUV';
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += alphabet[(value << (5 - bits)) & 31];
  return out;
}

export async function startIdentityBindingProxy(options: IdentityBindingProxyOptions): Promise<IdentityBindingProxy> {
  const lifetime = options.tokenLifetimeSeconds ?? 3599;
  const sniName = identityBindingSniName(options.clusterId);
  const apiServerCert = options.pki.issueServerCert([
    'kubernetes',
    'kubernetes.default',
    'kubernetes.default.svc',
    'kubernetes.default.svc.cluster.local',
    `hcp-kubernetes.${options.clusterId}.svc.cluster.local`,
  ]);
  const proxyCert = options.pki.issueServerCert([sniName]);
  const apiServerContext = createSecureContext({ cert: apiServerCert.certPem, key: apiServerCert.keyPem });
  const proxyContext = createSecureContext({ cert: proxyCert.certPem, key: proxyCert.keyPem });
  const issuers = new Map([[options.issuer.issuer, options.issuer.publicKey]]);
  const requests: IdentityBindingRequestRecord[] = [];
  const handshakes: string[] = [];

  const handle = (req: IncomingMessage, res: ServerResponse, body: string): void => {
    const servername = ((req.socket as TLSSocket).servername || '').toLowerCase();
    const url = new URL(req.url ?? '/', 'https://proxy.invalid');
    const path = url.pathname.replace(/\/+$/, '') || '/';
    const record: IdentityBindingRequestRecord = { servername, method: req.method ?? '', path, host: req.headers.host ?? '', kind: 'other', status: 0 };
    requests.push(record);
    const send = (status: number, json: unknown): void => {
      record.status = status;
      const text = JSON.stringify(json);
      res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
      res.end(text);
    };
    const fail = (status: number, error: string, code: number, description: string): void => {
      record.errorCode = code;
      send(status, { error, error_description: `AADSTS${code}: ${description}`, error_codes: [code] });
    };

    if (servername !== sniName) {
      // Without the proxy's SNI name the connection reaches the API server, which does not know this request.
      record.kind = 'apiserver';
      return send(401, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'Unauthorized', reason: 'Unauthorized', code: 401 });
    }
    const m = /^\/([^/]+)\/v2\.0\/\.well-known\/openid-configuration$/.exec(path);
    if (m && req.method === 'GET') {
      record.kind = 'openid-configuration';
      // The metadata of the tenant the proxy exchanges in; endpoints keep the Entra host the client asked about.
      const host = (req.headers.host ?? 'login.microsoftonline.com').replace(/:\d+$/, '');
      return send(200, openIdConfiguration(`https://${host}`, m[1]!));
    }
    if (!(req.method === 'POST' && (path === '/' || path.endsWith('/oauth2/v2.0/token')))) {
      return fail(404, 'invalid_request', 90027, `The request path ${path} is not served by the identity binding proxy.`);
    }
    record.kind = 'token';
    const form = new URLSearchParams(body);
    const clientId = form.get('client_id') ?? '';
    record.clientId = clientId;
    if (form.get('grant_type') !== 'client_credentials') return fail(400, 'unsupported_grant_type', 70003, 'The grant type must be client_credentials.');
    if (form.get('client_assertion_type') !== CLIENT_ASSERTION_TYPE || !form.get('client_assertion')) {
      return fail(401, 'invalid_client', 7000218, "The request body must contain the following parameter: 'client_assertion'.");
    }
    const checked = checkAssertion(form.get('client_assertion')!, issuers);
    if (!checked.ok) return fail(checked.code === 70021 ? 400 : 401, checked.error, checked.code, checked.description);
    record.subject = checked.claims.sub;
    if (!checked.claims.aud.includes(IDENTITY_BINDING_AUDIENCE)) {
      return fail(400, 'invalid_request', 70021, `The presented assertion's audience '${checked.claims.aud.join(',')}' is not ${IDENTITY_BINDING_AUDIENCE}.`);
    }
    const binding = options.bindings.find(
      (b) =>
        `system:serviceaccount:${b.namespace}:${b.serviceAccount}` === checked.claims.sub && b.clientId.toLowerCase() === clientId.toLowerCase(),
    );
    if (!binding) {
      return fail(
        400,
        'invalid_request',
        70021,
        `No identity binding grants service account '${checked.claims.sub}' the identity with client ID '${clientId}'.`,
      );
    }
    const scope = (form.get('scope') ?? '').split(' ').find((s) => s.endsWith('/.default'));
    if (!scope) return fail(400, 'invalid_scope', 1002012, 'Client credential flows must have a scope value with /.default suffixed to the resource identifier.');
    const resource = scope.slice(0, -'/.default'.length);
    const { token } = options.tokens.issue({ identityId: binding.identityId, resource, lifetimeSeconds: lifetime, issuer: 'identity-binding', tenantId: binding.tenantId });
    record.identityId = binding.identityId;
    send(200, { token_type: 'Bearer', expires_in: lifetime, ext_expires_in: lifetime, access_token: token });
  };

  const sockets = new Set<Socket>();
  const server: Server = createServer(
    {
      cert: apiServerCert.certPem,
      key: apiServerCert.keyPem,
      // SNI routing, as the AKS API server endpoint does it.
      SNICallback: (servername, cb) => {
        handshakes.push(servername.toLowerCase());
        cb(null, servername.toLowerCase() === sniName ? proxyContext : apiServerContext);
      },
    },
    (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => handle(req, res, Buffer.concat(chunks).toString('utf8')));
    },
  );
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `https://127.0.0.1:${port}`,
    port,
    sniName,
    requests,
    handshakes,
    bindings: options.bindings,
    tokenRequestCount(filter = {}) {
      return requests.filter(
        (r) =>
          r.kind === 'token' &&
          (filter.clientId === undefined || r.clientId?.toLowerCase() === filter.clientId.toLowerCase()) &&
          (filter.status === undefined || r.status === filter.status) &&
          (filter.subject === undefined || r.subject === filter.subject),
      ).length;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
        for (const s of sockets) s.destroy();
      }),
  };
}

function b64url(json: unknown): string {
  return Buffer.from(JSON.stringify(json)).toString('base64url');
}

function stripSlash(s: string): string {
  return s.endsWith('/') ? s.slice(0, -1) : s;
}
