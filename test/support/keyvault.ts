/**
 * A stand-in for Azure Key Vault's data plane (read operations), speaking the REST contract the official SDK clients
 * use (api-version 2025-07-01); the requests it serves and the behaviour it copies are on startKeyVault.
 *
 * One HTTPS server serves every vault; the vault is chosen by the Host header (`<vault>.<cloud suffix>`), so the
 * product can keep real vault URLs and reach this server through a CONNECT proxy. Unknown vault names are refused
 * during the TLS handshake (SNI), the closest a stand-in gets to the real "no such host".
 */
import { createHash, createPrivateKey, createPublicKey, randomBytes, randomUUID, X509Certificate, type JsonWebKey } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { createSecureContext, type TLSSocket } from 'node:tls';
import forge from 'node-forge';
import type { TestPki } from './pki';
import { HangingRequests, writeHostileAnswer, type HostileAnswer } from './hostile';
import type { TokenRegistry } from './tokens';

/** Key Vault DNS suffixes of the four named clouds, with the authority their challenges name. */
export const CLOUD_SUFFIXES: Readonly<Record<string, { authority: string }>> = {
  'vault.azure.net': { authority: 'https://login.windows.net' },
  'vault.usgovcloudapi.net': { authority: 'https://login.microsoftonline.us' },
  'vault.azure.cn': { authority: 'https://login.chinacloudapi.cn' },
  'vault.microsoftazure.de': { authority: 'https://login.microsoftonline.de' },
};

/** api-versions the service accepts; the SDKs we use send 2025-07-01. */
const API_VERSIONS = new Set(['2016-10-01', '7.0', '7.1', '7.2', '7.3', '7.4', '7.5', '7.6', '2025-07-01']);
const LATEST_API_VERSION = '2025-07-01';
const MAX_PAGE = 25;

export type ObjectKind = 'secret' | 'key' | 'certificate';

export interface KeyVaultOptions {
  pki: TestPki;
  tokens: TokenRegistry;
  /** Default tenant of vaults (challenge authority, token tenant check). */
  tenantId: string;
  /** Largest page a version listing returns (the service's is 25); lower it to force many pages. */
  pageSize?: number;
  /** Delay before every answer, in ms. */
  delayMs?: number;
  /**
   * Order of listed versions. The service promises none; the default (by version id) is deliberately not creation
   * order.
   */
  versionListOrder?: 'byVersionId' | 'creation' | 'newestFirst';
  /** Override the challenge's authorization URL, e.g. to point a client-secret flow at an Entra ID stand-in. */
  challengeAuthority?: (suffix: string, tenantId: string) => string;
}

export interface AddVaultOptions {
  /** Cloud DNS suffix; default vault.azure.net. */
  suffix?: string;
  /** Identity ids (token registry) allowed to read everything in the vault. */
  allow?: string[];
  tenantId?: string;
  /** Which 403 the vault gives: access policies (innererror AccessDenied, the default) or Azure RBAC. */
  accessModel?: 'accessPolicy' | 'rbac';
}

export interface CommonObjectOptions {
  /** Version id to use (32 hex chars); random when omitted. */
  version?: string;
  enabled?: boolean;
  tags?: Record<string, string>;
  /** Attributes `nbf` / `exp`, Unix seconds. */
  notBefore?: number;
  expires?: number;
  /** Creation time, Unix seconds. Default: now, but always after the object's previous version, so order is clear. */
  created?: number;
}

export interface SetSecretOptions extends CommonObjectOptions {
  contentType?: string;
  /** Set on secrets that back a certificate: the key's id (`https://<vault>/keys/<name>/<version>`). */
  kid?: string;
  managed?: boolean;
}

export interface SetKeyOptions extends CommonObjectOptions {
  /** Overrides the JWK's kty, e.g. RSA-HSM / EC-HSM. */
  kty?: string;
  keyOps?: string[];
  managed?: boolean;
}

export interface SetCertificateOptions extends CommonObjectOptions {
  /** The certificate's private key (PEM). When given, the backing secret is created as Key Vault does; without it
   * there is no backing secret (a real vault always has one). */
  privateKeyPem?: string;
  /** Further certificates (PEM) for the backing secret, after the leaf. */
  chainPem?: string[];
  /** Backing secret format; default application/x-pkcs12 (PFX, empty password, RSA keys only). */
  secretContentType?: 'application/x-pkcs12' | 'application/x-pem-file';
  /** Returned as the certificate's `policy`; a plausible self-issued policy when omitted. */
  policy?: Record<string, unknown>;
}

export interface KeyVaultRequestRecord {
  vault: string;
  method: string;
  /** Decoded path without the query, e.g. /secrets/db-password/. */
  path: string;
  query: Record<string, string>;
  status: number;
  kind?: ObjectKind;
  operation?: 'get' | 'list';
  identityId?: string;
  userAgent?: string;
  /** Set when the answer came from injectFaults: the status, or 'reset'. */
  faulted?: string;
  at: number;
}

export type RequestFilter =
  | ((r: KeyVaultRequestRecord) => boolean)
  | (Partial<Pick<KeyVaultRequestRecord, 'vault' | 'method' | 'status' | 'kind' | 'operation' | 'identityId'>> & {
      path?: string | RegExp;
    });

export interface FaultSpec {
  /** An HTTP error to answer with, or a connection reset (socket destroyed before any answer). */
  status?: 429 | 500 | 503;
  reset?: boolean;
  retryAfterSeconds?: number;
  /** How many matching requests fail (default 1 unless `ratio` is given). */
  count?: number;
  /** Fail this share of matching requests (0..1), without a count limit unless `count` is also set. */
  ratio?: number;
  /** Only requests for this vault. */
  vault?: string;
  /** Only these requests. */
  match?: (r: { vault: string; method: string; path: string }) => boolean;
  /** 'authorized' (default): only requests that passed authentication, so the 401 challenge still works. */
  phase?: 'authorized' | 'any';
}

export interface FaultHandle {
  /** How many requests this fault has answered. */
  hits(): number;
  clear(): void;
}

export interface KeyVaultStandIn {
  /** https://127.0.0.1:PORT: where the proxy sends tunnels. */
  url: string;
  host: string;
  port: number;
  requests: KeyVaultRequestRecord[];
  count(filter?: RequestFilter): number;
  clearRequests(): void;
  /** TLS connections accepted so far (keep-alive check: this stays low while requests grow). */
  connectionCount(): number;
  /** Most requests in progress at once. */
  peakInFlight(): number;
  delayMs: number;

  addVault(name: string, options?: AddVaultOptions): { url: string; host: string };
  hasVault(host: string): boolean;
  grant(vault: string, identityId: string): void;
  revoke(vault: string, identityId: string): void;
  setSecret(vault: string, name: string, value: string, options?: SetSecretOptions): string;
  setKey(vault: string, name: string, jwkPublic: JsonWebKey, options?: SetKeyOptions): string;
  setCertificate(vault: string, name: string, certificate: Buffer | string, options?: SetCertificateOptions): string;
  /** Enables or disables one version (latest when version is omitted). */
  setEnabled(vault: string, kind: ObjectKind, name: string, enabled: boolean, version?: string): void;
  /** Version ids of an object, oldest first. */
  versions(vault: string, kind: ObjectKind, name: string): string[];
  /** The stored value of a secret's latest version (or of `version`), as the REST API returns it. */
  secretValue(vault: string, name: string, version?: string): string;
  deleteObject(vault: string, kind: ObjectKind, name: string): void;

  injectFaults(spec: FaultSpec): FaultHandle;
  clearFaults(): void;
  /** Spoils answers to requests that passed authentication (the challenge still works): see hostile.ts. */
  hostile: ((record: KeyVaultRequestRecord) => HostileAnswer | undefined) | undefined;
  close(): Promise<void>;
}

interface VersionBase {
  version: string;
  created: number;
  updated: number;
  enabled: boolean;
  tags?: Record<string, string>;
  nbf?: number;
  exp?: number;
}
interface SecretVersion extends VersionBase {
  value: string;
  contentType?: string;
  kid?: string;
  managed?: boolean;
}
interface KeyVersion extends VersionBase {
  jwk: JsonWebKey;
  keyOps: string[];
  managed?: boolean;
}
interface CertVersion extends VersionBase {
  der: Buffer;
  policy?: Record<string, unknown>;
}
interface Stored<V extends VersionBase> {
  name: string;
  versions: V[];
}
interface Vault {
  name: string;
  suffix: string;
  host: string;
  tenantId: string;
  accessModel: 'accessPolicy' | 'rbac';
  allow: Set<string>;
  secrets: Map<string, Stored<SecretVersion>>;
  keys: Map<string, Stored<KeyVersion>>;
  certificates: Map<string, Stored<CertVersion>>;
}

interface KvError {
  kind: 'error';
  status: number;
  code: string;
  message: string;
  inner?: string;
  headers?: Record<string, string>;
}

const PRIVATE_JWK_FIELDS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k'] as const;
const NAME_RE = /^[0-9a-zA-Z-]{1,127}$/;
const VERSION_RE = /^[0-9a-fA-F]{32}$/;

/**
 * Starts the stand-in. @azure/keyvault-secrets 4.11.2, -keys 4.10.2 and -certificates 4.10.3 send api-version
 * 2025-07-01 and read
 *   GET /secrets/{name}/            (latest; note the trailing slash the SDK sends for an empty version)
 *   GET /secrets/{name}/{version}
 *   GET /secrets/{name}/versions?maxresults=N, then every `nextLink` as given (the SDK adds api-version if missing)
 *   GET /secrets?maxresults=N (the vault's secrets: current version's attributes, tags, contentType and `managed`
 *                              for a certificate's secret, never a value nor a `kid`; disabled ones included), paged
 *                              the same way
 * and the same shapes for /keys and /certificates.
 *
 * Behaviour copied from the service, not from the SDK's expectations:
 *  - challenge authentication: a request without a token gets 401 + WWW-Authenticate; every 401 carries it;
 *  - tokens must be live, for this cloud's Key Vault audience, and (when the issuer records one) this vault's tenant;
 *  - access denied is 403 Forbidden with innererror AccessDenied (access policies) or ForbiddenByRbac;
 *  - the latest version of a secret is the newest one even when it is disabled (403 SecretDisabled, no fallback);
 *  - object names are case-insensitive; version listings are not in creation order; nextLinks carry `:443`.
 */
export async function startKeyVault(options: KeyVaultOptions): Promise<KeyVaultStandIn> {
  const vaults = new Map<string, Vault>();
  const requests: KeyVaultRequestRecord[] = [];
  const faults: Array<{ spec: FaultSpec; left: number; hits: number }> = [];
  const pageSize = Math.min(options.pageSize ?? MAX_PAGE, MAX_PAGE);
  const order = options.versionListOrder ?? 'byVersionId';
  let connections = 0;
  let inFlight = 0;
  let peak = 0;

  const dnsNames = [...Object.keys(CLOUD_SUFFIXES).map((s) => `*.${s}`), 'localhost'];
  const tlsCert = options.pki.issueServerCert(dnsNames);
  const context = createSecureContext({ cert: tlsCert.certPem, key: tlsCert.keyPem });

  const vaultOf = (name: string): Vault => {
    const v = [...vaults.values()].find((x) => x.name === name.toLowerCase());
    if (!v) throw new Error(`no vault named ${name} in the Key Vault stand-in: call addVault first`);
    return v;
  };
  const mapOf = (v: Vault, kind: ObjectKind): Map<string, Stored<VersionBase>> =>
    kind === 'secret' ? v.secrets : kind === 'key' ? v.keys : v.certificates;
  const objectUrl = (v: Vault, kind: ObjectKind, name: string, version?: string): string =>
    `https://${v.host}/${kind === 'secret' ? 'secrets' : kind === 'key' ? 'keys' : 'certificates'}/${name}${version ? `/${version}` : ''}`;

  /** Appends a version; creation times strictly increase within an object so "newest" is never ambiguous. */
  function createVersion<V extends VersionBase>(
    map: Map<string, Stored<V>>,
    name: string,
    common: CommonObjectOptions,
    make: (base: VersionBase) => V,
  ): V {
    if (!NAME_RE.test(name)) throw new Error(`invalid Key Vault object name "${name}": 1-127 of [0-9a-zA-Z-]`);
    let stored = map.get(name.toLowerCase());
    if (!stored) {
      stored = { name, versions: [] };
      map.set(name.toLowerCase(), stored);
    }
    const last = stored.versions[stored.versions.length - 1];
    const created = common.created ?? Math.max(Math.floor(Date.now() / 1000), last ? last.created + 1 : 0);
    const version = (common.version ?? randomBytes(16).toString('hex')).toLowerCase();
    if (!VERSION_RE.test(version)) throw new Error(`invalid version "${version}": 32 hex characters`);
    if (stored.versions.some((x) => x.version === version)) throw new Error(`version ${version} of ${stored.name} exists`);
    const v = make({
      version,
      created,
      updated: created,
      enabled: common.enabled ?? true,
      ...(common.tags ? { tags: common.tags } : {}),
      ...(common.notBefore !== undefined ? { nbf: common.notBefore } : {}),
      ...(common.expires !== undefined ? { exp: common.expires } : {}),
    });
    stored.versions.push(v);
    return v;
  }

  function setSecret(vault: string, name: string, value: string, opts: SetSecretOptions = {}): string {
    const v = vaultOf(vault);
    return createVersion(v.secrets, name, opts, (base) => ({
      ...base,
      value,
      ...(opts.contentType !== undefined ? { contentType: opts.contentType } : {}),
      ...(opts.kid !== undefined ? { kid: opts.kid } : {}),
      ...(opts.managed !== undefined ? { managed: opts.managed } : {}),
    })).version;
  }

  function setKey(vault: string, name: string, jwkPublic: JsonWebKey, opts: SetKeyOptions = {}): string {
    const v = vaultOf(vault);
    const jwk: JsonWebKey = { ...jwkPublic };
    for (const f of PRIVATE_JWK_FIELDS) delete jwk[f];
    if (opts.kty) jwk.kty = opts.kty;
    const isEc = (jwk.kty ?? '').startsWith('EC');
    const keyOps = opts.keyOps ?? (isEc ? ['sign', 'verify'] : ['encrypt', 'decrypt', 'sign', 'verify', 'wrapKey', 'unwrapKey']);
    return createVersion(v.keys, name, opts, (base) => ({
      ...base,
      jwk,
      keyOps,
      ...(opts.managed !== undefined ? { managed: opts.managed } : {}),
    })).version;
  }

  function setCertificate(vault: string, name: string, certificate: Buffer | string, opts: SetCertificateOptions = {}): string {
    const v = vaultOf(vault);
    const x509 = new X509Certificate(certificate);
    const der = x509.raw;
    const nbf = Math.floor(new Date(x509.validFrom).getTime() / 1000);
    const exp = Math.floor(new Date(x509.validTo).getTime() / 1000);
    const common: CommonObjectOptions = { notBefore: nbf, expires: exp, ...opts };
    // Build the backing secret first: if that fails (e.g. PFX for an EC key), nothing has been stored.
    const contentType = opts.secretContentType ?? 'application/x-pkcs12';
    const chain = [x509.toString(), ...(opts.chainPem ?? [])];
    const secretValue = opts.privateKeyPem
      ? contentType === 'application/x-pem-file'
        ? pemBundle(opts.privateKeyPem, chain)
        : pfxBase64(opts.privateKeyPem, chain)
      : undefined;
    const cert = createVersion(v.certificates, name, common, (base) => ({
      ...base,
      der,
      ...(opts.policy ? { policy: opts.policy } : {}),
    }));
    // Key Vault keeps the certificate's key and secret under the same name and version, marked managed.
    const shared: CommonObjectOptions = { ...common, version: cert.version, created: cert.created };
    const jwk = x509.publicKey.export({ format: 'jwk' });
    const keyOps = jwk.kty === 'EC' ? ['sign', 'verify'] : ['sign', 'verify', 'wrapKey', 'unwrapKey', 'encrypt', 'decrypt'];
    createVersion(v.keys, name, shared, (base) => ({ ...base, jwk, keyOps, managed: true }));
    if (secretValue !== undefined) {
      createVersion(v.secrets, name, shared, (base) => ({
        ...base,
        value: secretValue,
        contentType,
        kid: objectUrl(v, 'key', name, cert.version),
        managed: true,
      }));
    }
    return cert.version;
  }

  function stored(v: Vault, kind: ObjectKind, name: string): Stored<VersionBase> {
    const s = mapOf(v, kind).get(name.toLowerCase());
    if (!s) throw new Error(`no ${kind} named ${name} in vault ${v.name}`);
    return s;
  }

  // ---- REST --------------------------------------------------------------------------------------------------

  const attributes = (x: VersionBase): Record<string, unknown> => ({
    enabled: x.enabled,
    ...(x.nbf !== undefined ? { nbf: x.nbf } : {}),
    ...(x.exp !== undefined ? { exp: x.exp } : {}),
    created: x.created,
    updated: x.updated,
    recoveryLevel: 'Recoverable+Purgeable',
    recoverableDays: 90,
  });

  const secretBundle = (v: Vault, s: Stored<SecretVersion>, x: SecretVersion): Record<string, unknown> => ({
    value: x.value,
    ...(x.contentType !== undefined ? { contentType: x.contentType } : {}),
    id: objectUrl(v, 'secret', s.name, x.version),
    attributes: attributes(x),
    tags: x.tags ?? {},
    ...(x.kid !== undefined ? { kid: x.kid } : {}),
    ...(x.managed ? { managed: true } : {}),
  });
  const keyBundle = (v: Vault, s: Stored<KeyVersion>, x: KeyVersion): Record<string, unknown> => ({
    key: { kid: objectUrl(v, 'key', s.name, x.version), ...x.jwk, key_ops: x.keyOps },
    attributes: attributes(x),
    ...(x.tags ? { tags: x.tags } : {}),
    ...(x.managed ? { managed: true } : {}),
  });
  const certBundle = (v: Vault, s: Stored<CertVersion>, x: CertVersion): Record<string, unknown> => ({
    id: objectUrl(v, 'certificate', s.name, x.version),
    kid: objectUrl(v, 'key', s.name, x.version),
    sid: objectUrl(v, 'secret', s.name, x.version),
    x5t: createHash('sha1').update(x.der).digest('base64url'),
    cer: x.der.toString('base64'),
    attributes: attributes(x),
    ...(x.tags ? { tags: x.tags } : {}),
    policy: x.policy ?? defaultPolicy(v, s, x),
  });
  const defaultPolicy = (v: Vault, s: Stored<CertVersion>, x: CertVersion): Record<string, unknown> => {
    const cert = new X509Certificate(x.der);
    return {
      id: `https://${v.host}/certificates/${s.name}/policy`,
      key_props: { exportable: true, kty: cert.publicKey.asymmetricKeyType === 'ec' ? 'EC' : 'RSA', reuse_key: false },
      secret_props: { contentType: 'application/x-pkcs12' },
      x509_props: { subject: cert.subject.replace(/\n/g, ', '), ekus: ['1.3.6.1.5.5.7.3.1'], validity_months: 12 },
      lifetime_actions: [{ trigger: { lifetime_percentage: 80 }, action: { action_type: 'AutoRenew' } }],
      issuer: { name: 'Self' },
      attributes: { enabled: true, created: x.created, updated: x.updated },
    };
  };
  const item = (v: Vault, kind: ObjectKind, s: Stored<VersionBase>, x: VersionBase, withVersion: boolean): Record<string, unknown> => {
    const url = objectUrl(v, kind, s.name, withVersion ? x.version : undefined);
    if (kind === 'secret') {
      const sx = x as SecretVersion;
      return {
        id: url,
        attributes: attributes(x),
        ...(x.tags ? { tags: x.tags } : {}),
        ...(sx.contentType !== undefined ? { contentType: sx.contentType } : {}),
        ...(sx.managed ? { managed: true } : {}),
      };
    }
    if (kind === 'key') {
      return { kid: url, attributes: attributes(x), ...(x.tags ? { tags: x.tags } : {}), ...((x as KeyVersion).managed ? { managed: true } : {}) };
    }
    return {
      id: url,
      x5t: createHash('sha1').update((x as CertVersion).der).digest('base64url'),
      attributes: attributes(x),
      ...(x.tags ? { tags: x.tags } : {}),
    };
  };

  const notFound = (kind: ObjectKind, id: string): KvError =>
    kind === 'certificate'
      ? { kind: 'error', status: 404, code: 'CertificateNotFound', message: `Certificate not found: ${id}` }
      : {
          kind: 'error',
          status: 404,
          code: kind === 'secret' ? 'SecretNotFound' : 'KeyNotFound',
          message:
            `A ${kind} with (name/id) ${id} was not found in this key vault. If you recently deleted this ${kind} you ` +
            'may be able to recover it using the correct recovery command. For help resolving this issue, please see ' +
            'https://go.microsoft.com/fwlink/?linkid=2125182',
        };

  const bad = (message: string): KvError => ({ kind: 'error', status: 400, code: 'BadParameter', message });

  function challenge(v: Vault): string {
    const authority = options.challengeAuthority
      ? options.challengeAuthority(v.suffix, v.tenantId)
      : `${CLOUD_SUFFIXES[v.suffix]?.authority ?? 'https://login.windows.net'}/${v.tenantId}`;
    return `Bearer authorization="${authority}", resource="https://${v.suffix}"`;
  }

  function authenticate(v: Vault, req: IncomingMessage): { identityId: string } | KvError {
    const unauthorized = (message: string): KvError => ({
      kind: 'error',
      status: 401,
      code: 'Unauthorized',
      message,
      headers: { 'WWW-Authenticate': challenge(v) },
    });
    const header = req.headers.authorization;
    const m = header ? /^Bearer\s+(\S+)$/i.exec(header) : null;
    if (!m) return unauthorized('AKV10000: Request is missing a Bearer or PoP token.');
    const checked = options.tokens.check(m[1]!);
    if (!checked.ok) {
      const why = { unknown: 'the token was not issued by a known authority', expired: 'the token has expired', revoked: 'the token has been revoked' };
      return unauthorized(`Error validating token: ${why[checked.reason]}.`);
    }
    const audience = `https://${v.suffix}`;
    if (checked.record.resource.replace(/\/$/, '') !== audience) {
      return unauthorized(`AKV10022: Invalid audience. Expected ${audience}, found: ${checked.record.resource}.`);
    }
    if (checked.record.tenantId !== undefined && checked.record.tenantId.toLowerCase() !== v.tenantId.toLowerCase()) {
      return unauthorized(
        `AKV10032: Invalid issuer. Expected one of https://sts.windows.net/${v.tenantId}/, found https://sts.windows.net/${checked.record.tenantId}/.`,
      );
    }
    return { identityId: checked.record.identityId };
  }

  function forbidden(v: Vault, identityId: string, kind: ObjectKind, operation: 'get' | 'list', name?: string): KvError {
    const plural = kind === 'secret' ? 'secrets' : kind === 'key' ? 'keys' : 'certificates';
    const iss = `https://sts.windows.net/${v.tenantId}/`;
    if (v.accessModel === 'rbac') {
      const action = `Microsoft.KeyVault/vaults/${plural}/${kind === 'certificate' ? 'read' : operation === 'get' ? `get${cap(kind)}/action` : 'readMetadata/action'}`;
      return {
        kind: 'error',
        status: 403,
        code: 'Forbidden',
        inner: 'ForbiddenByRbac',
        message:
          'Caller is not authorized to perform action on resource.\r\nIf role assignments, deny assignments or role ' +
          'definitions were changed recently, please observe propagation time.\r\n' +
          `Caller: appid=${identityId};oid=${identityId};iss=${iss}\r\nAction: '${action}'\r\n` +
          `Resource: '/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/rg/providers/microsoft.keyvault/vaults/${v.name}${name ? `/${plural}/${name.toLowerCase()}` : ''}'\r\n` +
          `Assignment: (not found)\r\nDenyAssignmentId: null\r\nDecisionReason: null \r\nVault: ${v.name};location=eastus\r\n`,
      };
    }
    return {
      kind: 'error',
      status: 403,
      code: 'Forbidden',
      inner: 'AccessDenied',
      message:
        `The user, group or application 'appid=${identityId};oid=${identityId};iss=${iss}' does not have ${plural} ` +
        `${operation} permission on key vault '${v.name};location=eastus'. For help resolving this issue, please see ` +
        'https://go.microsoft.com/fwlink/?linkid=2125287',
    };
  }

  type Routed = { kind: ObjectKind; operation: 'get' | 'list'; name?: string; version?: string };

  function route(path: string): Routed | undefined {
    const m = /^\/(secrets|keys|certificates)(?:\/([^/]+)(?:\/([^/]+))?)?\/?$/.exec(path);
    if (!m) return undefined;
    const kind: ObjectKind = m[1] === 'secrets' ? 'secret' : m[1] === 'keys' ? 'key' : 'certificate';
    if (!m[2]) return { kind, operation: 'list' };
    if (m[3] === 'versions') return { kind, operation: 'list', name: m[2] };
    return { kind, operation: 'get', name: m[2], ...(m[3] ? { version: m[3] } : {}) };
  }

  function serveGet(v: Vault, r: Routed): { body: Record<string, unknown> } | KvError {
    const name = r.name!;
    if (!NAME_RE.test(name)) return bad(`The request URI contains an invalid name: ${name}`);
    const s = mapOf(v, r.kind).get(name.toLowerCase());
    const id = r.version ? `${name}/${r.version}` : name;
    if (!s || s.versions.length === 0) return notFound(r.kind, id);
    const x = r.version ? s.versions.find((y) => y.version === r.version!.toLowerCase()) : s.versions[s.versions.length - 1];
    if (!x) return notFound(r.kind, id);
    if (r.kind === 'secret') {
      if (!x.enabled) return { kind: 'error', status: 403, code: 'Forbidden', inner: 'SecretDisabled', message: 'Operation get is not allowed on a disabled secret.' };
      return { body: secretBundle(v, s as Stored<SecretVersion>, x as SecretVersion) };
    }
    // Reading a disabled key or certificate returns it with enabled: false; only cryptographic use is refused.
    if (r.kind === 'key') return { body: keyBundle(v, s as Stored<KeyVersion>, x as KeyVersion) };
    return { body: certBundle(v, s as Stored<CertVersion>, x as CertVersion) };
  }

  function serveList(v: Vault, r: Routed, query: Record<string, string>, host: string, path: string): { body: Record<string, unknown> } | KvError {
    let maxResults = pageSize;
    if (query['maxresults'] !== undefined) {
      const n = Number(query['maxresults']);
      if (!Number.isInteger(n) || n < 1 || n > MAX_PAGE) return bad(`maxresults must be an integer between 1 and ${MAX_PAGE}`);
      maxResults = Math.min(n, pageSize);
    }
    let offset = 0;
    if (query['$skiptoken'] !== undefined) {
      try {
        const parsed = JSON.parse(Buffer.from(query['$skiptoken'], 'base64url').toString('utf8')) as { NextMarker?: unknown };
        offset = Number(parsed.NextMarker);
        if (!Number.isInteger(offset) || offset < 0) throw new Error('bad offset');
      } catch {
        return bad('The skip token is invalid.');
      }
    }
    let rows: Array<Record<string, unknown>>;
    if (r.name) {
      if (!NAME_RE.test(r.name)) return bad(`The request URI contains an invalid name: ${r.name}`);
      const s = mapOf(v, r.kind).get(r.name.toLowerCase());
      const versions = s ? [...s.versions] : [];
      if (order === 'byVersionId') versions.sort((a, b) => (a.version < b.version ? -1 : 1));
      if (order === 'newestFirst') versions.reverse();
      rows = s ? versions.map((x) => item(v, r.kind, s, x, true)) : [];
    } else {
      rows = [...mapOf(v, r.kind).values()]
        .filter((s) => s.versions.length > 0)
        .map((s) => item(v, r.kind, s, s.versions[s.versions.length - 1]!, false));
    }
    const page = rows.slice(offset, offset + maxResults);
    let nextLink: string | null = null;
    if (offset + maxResults < rows.length) {
      const token = Buffer.from(JSON.stringify({ NextMarker: String(offset + maxResults), TargetLocation: 0 })).toString('base64url');
      // The service writes the default port into nextLinks; clients must follow them as given.
      const hostPort = /:\d+$/.test(host) ? host : `${host}:443`;
      const params = new URLSearchParams({ 'api-version': query['api-version'] ?? LATEST_API_VERSION });
      let link = `https://${hostPort}${path}?${params.toString()}&$skiptoken=${token}`;
      if (query['maxresults'] !== undefined) link += `&maxresults=${maxResults}`;
      nextLink = link;
    }
    return { body: { value: page, nextLink } };
  }

  function pickFault(phase: 'authorized' | 'any', target: { vault: string; method: string; path: string }): FaultSpec | undefined {
    for (const f of faults) {
      if ((f.spec.phase ?? 'authorized') !== phase) continue;
      if (f.left <= 0) continue;
      if (f.spec.vault && f.spec.vault.toLowerCase() !== target.vault) continue;
      if (f.spec.match && !f.spec.match(target)) continue;
      if (f.spec.ratio !== undefined && Math.random() >= f.spec.ratio) continue;
      f.left--;
      f.hits++;
      return f.spec;
    }
    return undefined;
  }

  const handle = (req: IncomingMessage, res: ServerResponse, record: KeyVaultRequestRecord, v: Vault | undefined): void => {
    const send = (status: number, body: unknown, headers: Record<string, string> = {}): void => {
      record.status = status;
      const text = JSON.stringify(body);
      res.writeHead(status, {
        'Cache-Control': 'no-cache',
        Pragma: 'no-cache',
        'Content-Type': 'application/json; charset=utf-8',
        'Content-Length': String(Buffer.byteLength(text)),
        Expires: '-1',
        'x-ms-keyvault-region': 'eastus',
        'x-ms-request-id': randomUUID(),
        'x-ms-keyvault-service-version': '1.9.2000.1',
        ...(typeof req.headers['x-ms-client-request-id'] === 'string' ? { 'x-ms-client-request-id': req.headers['x-ms-client-request-id'] } : {}),
        'X-Content-Type-Options': 'nosniff',
        'Strict-Transport-Security': 'max-age=31536000;includeSubDomains',
        ...headers,
      });
      res.end(text);
    };
    const fail = (e: KvError): void =>
      send(e.status, { error: { code: e.code, message: e.message, ...(e.inner ? { innererror: { code: e.inner } } : {}) } }, e.headers);

    if (!v) {
      fail(bad(`No vault is served at ${record.vault || 'this host'}; use https://<vault>.<suffix>/ and addVault.`));
      return;
    }
    const target = { vault: v.name, method: record.method, path: record.path };
    const applyFault = (spec: FaultSpec): void => {
      if (spec.reset) {
        record.faulted = 'reset';
        record.status = 0;
        resetSocket(req.socket);
        return;
      }
      const status = spec.status ?? 503;
      record.faulted = String(status);
      const bodies: Record<number, KvError> = {
        429: { kind: 'error', status: 429, code: 'Throttled', message: 'Request was not processed because too many requests were received. Reason: VaultRequestTypeLimitReached' },
        500: { kind: 'error', status: 500, code: 'InternalServerError', message: 'The service encountered an internal error. Please retry.' },
        503: { kind: 'error', status: 503, code: 'ServiceUnavailable', message: 'The service is temporarily unavailable. Please retry.' },
      };
      const headers: Record<string, string> = spec.retryAfterSeconds !== undefined ? { 'Retry-After': String(spec.retryAfterSeconds) } : {};
      fail({ ...bodies[status]!, headers });
    };

    const early = pickFault('any', target);
    if (early) return applyFault(early);

    const auth = authenticate(v, req);
    if ('status' in auth) return fail(auth);
    record.identityId = auth.identityId;

    const late = pickFault('authorized', target);
    if (late) return applyFault(late);
    const spoiled = standIn.hostile?.(record);
    if (spoiled) {
      record.faulted = 'hostile';
      record.status = writeHostileAnswer(res, spoiled, hanging);
      return;
    }

    const apiVersion = record.query['api-version'];
    if (!apiVersion || !API_VERSIONS.has(apiVersion)) {
      return fail(bad(`The specified version (${apiVersion ?? ''}) is not recognized. Consider using the latest supported version (${LATEST_API_VERSION}).`));
    }
    const routed = route(record.path);
    if (!routed) return fail({ kind: 'error', status: 404, code: 'NotFound', message: `The stand-in does not serve ${record.method} ${record.path}` });
    record.kind = routed.kind;
    record.operation = routed.operation;
    if (req.method !== 'GET') {
      return fail({ kind: 'error', status: 405, code: 'BadParameter', message: 'The Key Vault stand-in serves reads only; use its store API to write.' });
    }
    if (record.query['outContentType'] !== undefined) {
      return fail(bad('outContentType (service-side PFX to PEM conversion) is not implemented by the Key Vault stand-in.'));
    }
    if (!v.allow.has(auth.identityId)) return fail(forbidden(v, auth.identityId, routed.kind, routed.operation, routed.name));

    const hostHeader = (req.headers.host ?? v.host).toLowerCase();
    const result =
      routed.operation === 'get' ? serveGet(v, routed) : serveList(v, routed, record.query, hostHeader.replace(/:443$/, ''), record.path);
    if ('kind' in result) return fail(result);
    send(200, result.body);
  };

  const server: Server = createServer(
    {
      cert: tlsCert.certPem,
      key: tlsCert.keyPem,
      // Unknown vault names fail the TLS handshake: the product sees a network failure, as with an unknown host.
      SNICallback: (servername, cb) => {
        const lower = servername.toLowerCase();
        const suffix = Object.keys(CLOUD_SUFFIXES).find((s) => lower.endsWith(`.${s}`));
        if (suffix && !vaults.has(lower)) cb(new Error(`no vault ${lower}`));
        else cb(null, context);
      },
    },
    (req, res) => {
      inFlight++;
      peak = Math.max(peak, inFlight);
      res.on('close', () => inFlight--);
      const url = new URL(req.url ?? '/', 'https://kv.invalid');
      const host = (req.headers.host ?? '').toLowerCase().replace(/:\d+$/, '');
      const v = vaults.get(host);
      const record: KeyVaultRequestRecord = {
        vault: v?.name ?? host,
        method: req.method ?? '',
        path: safeDecode(url.pathname),
        query: Object.fromEntries(url.searchParams),
        status: 0,
        ...(typeof req.headers['user-agent'] === 'string' ? { userAgent: req.headers['user-agent'] } : {}),
        at: Date.now(),
      };
      requests.push(record);
      req.resume();
      req.on('end', () => {
        const delay = standIn.delayMs;
        if (delay > 0) {
          const timer = setTimeout(() => {
            delayed.delete(timer);
            handle(req, res, record, v);
          }, delay);
          delayed.add(timer);
        } else handle(req, res, record, v);
      });
    },
  );
  // Delayed responses still pending when the stand-in closes must not keep the test process alive.
  const delayed = new Set<NodeJS.Timeout>();
  const hanging = new HangingRequests();
  // Clients keep connections open between requests; allow a generous idle time so reuse is observable.
  server.keepAliveTimeout = 60_000;
  server.headersTimeout = 65_000;
  server.on('secureConnection', () => connections++);
  // A client that drops a connection mid-handshake is not an error worth crashing a test over.
  server.on('tlsClientError', () => undefined);

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  const standIn: KeyVaultStandIn = {
    url: `https://127.0.0.1:${port}`,
    host: '127.0.0.1',
    port,
    requests,
    count(filter) {
      if (!filter) return requests.length;
      if (typeof filter === 'function') return requests.filter(filter).length;
      return requests.filter((r) => {
        for (const k of ['vault', 'method', 'status', 'kind', 'operation', 'identityId'] as const) {
          if (filter[k] !== undefined && r[k] !== filter[k]) return false;
        }
        if (filter.path instanceof RegExp) return filter.path.test(r.path);
        if (filter.path !== undefined) return r.path === filter.path;
        return true;
      }).length;
    },
    clearRequests: () => void (requests.length = 0),
    connectionCount: () => connections,
    peakInFlight: () => peak,
    delayMs: options.delayMs ?? 0,

    addVault(name, opts = {}) {
      const suffix = (opts.suffix ?? 'vault.azure.net').toLowerCase();
      const lower = name.toLowerCase();
      if (!/^[a-z0-9-]{3,24}$/.test(lower)) throw new Error(`invalid vault name "${name}": 3-24 of [-a-z0-9]`);
      const host = `${lower}.${suffix}`;
      if (vaults.has(host)) throw new Error(`vault ${host} exists`);
      vaults.set(host, {
        name: lower,
        suffix,
        host,
        tenantId: opts.tenantId ?? options.tenantId,
        accessModel: opts.accessModel ?? 'accessPolicy',
        allow: new Set(opts.allow ?? []),
        secrets: new Map(),
        keys: new Map(),
        certificates: new Map(),
      });
      return { url: `https://${host}/`, host };
    },
    hasVault: (host) => vaults.has(host.toLowerCase()),
    grant: (vault, identityId) => void vaultOf(vault).allow.add(identityId),
    revoke: (vault, identityId) => void vaultOf(vault).allow.delete(identityId),
    setSecret,
    setKey,
    setCertificate,
    setEnabled(vault, kind, name, enabled, version) {
      const s = stored(vaultOf(vault), kind, name);
      const x = version ? s.versions.find((y) => y.version === version.toLowerCase()) : s.versions[s.versions.length - 1];
      if (!x) throw new Error(`no version ${version ?? '(latest)'} of ${kind} ${name}`);
      x.enabled = enabled;
      x.updated = Math.max(x.updated + 1, Math.floor(Date.now() / 1000));
    },
    versions: (vault, kind, name) => stored(vaultOf(vault), kind, name).versions.map((x) => x.version),
    secretValue(vault, name, version) {
      const all = (stored(vaultOf(vault), 'secret', name) as Stored<SecretVersion>).versions;
      const x = version ? all.find((y) => y.version === version.toLowerCase()) : all[all.length - 1];
      if (!x) throw new Error(`no version ${version ?? '(latest)'} of secret ${name}`);
      return x.value;
    },
    deleteObject(vault, kind, name) {
      mapOf(vaultOf(vault), kind).delete(name.toLowerCase());
    },

    injectFaults(spec) {
      const entry = { spec, left: spec.count ?? (spec.ratio !== undefined ? Infinity : 1), hits: 0 };
      faults.push(entry);
      return {
        hits: () => entry.hits,
        clear: () => {
          const i = faults.indexOf(entry);
          if (i >= 0) faults.splice(i, 1);
        },
      };
    },
    clearFaults: () => void (faults.length = 0),
    hostile: undefined,
    close: () => {
      hanging.releaseAll();
      for (const timer of delayed) clearTimeout(timer);
      delayed.clear();
      return new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
  return standIn;
}

/** RST rather than FIN where the platform allows, so clients see ECONNRESET as with a dropped connection. */
function resetSocket(socket: Socket): void {
  const tls = socket as TLSSocket & { _parent?: Socket };
  const raw = tls._parent ?? socket;
  try {
    if (typeof raw.resetAndDestroy === 'function') raw.resetAndDestroy();
    else raw.destroy();
  } catch {
    raw.destroy();
  }
  socket.destroy();
}

function safeDecode(path: string): string {
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}

function cap(s: string): string {
  return s[0]!.toUpperCase() + s.slice(1);
}

/** The PEM form Key Vault stores for application/x-pem-file: the PKCS#8 private key, then the certificates. */
function pemBundle(privateKeyPem: string, certsPem: string[]): string {
  return [toPkcs8(privateKeyPem), ...certsPem.map((c) => c.trim() + '\n')].join('');
}

/** Any PEM private key (PKCS#1, SEC1, PKCS#8) as PKCS#8, the form Key Vault returns. */
function toPkcs8(privateKeyPem: string): string {
  return createPrivateKey(privateKeyPem).export({ type: 'pkcs8', format: 'pem' }).toString();
}

/** A PFX with an empty password, base64-encoded, as Key Vault stores application/x-pkcs12 secrets. RSA keys only. */
function pfxBase64(privateKeyPem: string, certsPem: string[]): string {
  const key = toPkcs8(privateKeyPem);
  if (createPublicKey(key).asymmetricKeyType !== 'rsa') {
    throw new Error('the stand-in builds PFX only for RSA keys (node-forge limit); use secretContentType application/x-pem-file');
  }
  const forgeKey = forge.pki.privateKeyFromPem(key);
  const certs = certsPem.map((c) => forge.pki.certificateFromPem(c));
  const asn1 = forge.pkcs12.toPkcs12Asn1(forgeKey, certs, '', { algorithm: '3des' });
  return Buffer.from(forge.asn1.toDer(asn1).getBytes(), 'binary').toString('base64');
}
