/**
 * A stand-in for aad-pod-identity's NMI, the node agent that answers token requests for pods. It listens where NMI
 * does (localhost:2579 on every node; tests bind 127.0.0.1:2579, so only one test file may use it) and answers like
 * NMI 1.8's host token handler:
 *   GET /host/token/?resource=<resource> with headers podname and podns
 *   → 200 {"token": {access_token, refresh_token, expires_in, expires_on, not_before, resource, token_type},
 *   "clientid"}
 *     (ADAL's token: numbers as strings)
 *   → 400 "missing 'podname' and 'podns' from request header" / "parameter resource cannot be empty"
 *   → 404 "getting assigned identities for pod <ns>/<name> in CREATED state failed after 16 attempts, …" (no binding)
 *   → 403 when the identity cannot get a token (e.g. an unknown resource)
 * Error bodies are plain text (Go's http.Error).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { TokenRegistry } from './tokens';

export const NMI_PORT = 2579;

export interface PodIdentityAssignment {
  namespace: string;
  pod: string;
  /** Token registry id of the identity assigned to the pod. */
  identityId: string;
  clientId: string;
}

export interface NmiRequestRecord {
  path: string;
  podname?: string;
  podns?: string;
  resource?: string;
  status: number;
  identityId?: string;
}

export interface NmiStandIn {
  url: string;
  requests: NmiRequestRecord[];
  tokenRequestCount(filter?: { podns?: string; podname?: string; status?: number }): number;
  /** Live list of assignments: tests may add or remove. */
  assignments: PodIdentityAssignment[];
  /** Delay before every answer, in ms (NMI waits for identity assignment). */
  delayMs: number;
  close(): Promise<void>;
}

export interface NmiOptions {
  tokens: TokenRegistry;
  tenantId?: string;
  assignments?: PodIdentityAssignment[];
  tokenLifetimeSeconds?: number;
  /** Resources NMI can get tokens for; default Key Vault in the four clouds. */
  knownResources?: string[];
  port?: number;
}

const DEFAULT_RESOURCES = ['https://vault.azure.net', 'https://vault.usgovcloudapi.net', 'https://vault.azure.cn', 'https://vault.microsoftazure.de'];

export async function startNmi(options: NmiOptions): Promise<NmiStandIn> {
  const lifetime = options.tokenLifetimeSeconds ?? 3599;
  const known = new Set((options.knownResources ?? DEFAULT_RESOURCES).map((r) => r.replace(/\/$/, '')));
  const requests: NmiRequestRecord[] = [];
  const standIn: NmiStandIn = {
    url: `http://localhost:${options.port ?? NMI_PORT}`,
    requests,
    tokenRequestCount: (filter = {}) =>
      requests.filter(
        (r) =>
          r.path.startsWith('/host/token') &&
          (filter.podns === undefined || r.podns === filter.podns) &&
          (filter.podname === undefined || r.podname === filter.podname) &&
          (filter.status === undefined || r.status === filter.status),
      ).length,
    assignments: options.assignments ?? [],
    delayMs: 0,
    close: async () => undefined,
  };

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const header = (name: string): string | undefined => {
      const v = req.headers[name];
      return Array.isArray(v) ? v[0] : v;
    };
    const record: NmiRequestRecord = { path: url.pathname, status: 0 };
    const podname = header('podname');
    const podns = header('podns');
    const resource = url.searchParams.get('resource') ?? undefined;
    if (podname !== undefined) record.podname = podname;
    if (podns !== undefined) record.podns = podns;
    if (resource !== undefined) record.resource = resource;
    requests.push(record);
    const text = (status: number, body: string): void => {
      record.status = status;
      res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff' });
      res.end(`${body}\n`);
    };
    if (url.pathname !== '/host/token/' && url.pathname !== '/host/token') return text(404, '404 page not found');
    if (!podname || !podns) return text(400, "missing 'podname' and 'podns' from request header");
    if (!resource) return text(400, 'parameter resource cannot be empty');
    const assignment = standIn.assignments.find((a) => a.namespace === podns && a.pod === podname);
    if (!assignment) {
      return text(
        404,
        `getting assigned identities for pod ${podns}/${podname} in CREATED state failed after 16 attempts, retry ` +
          'duration [5]s, error: <nil>. Check MIC pod logs for identity assignment errors',
      );
    }
    if (!known.has(resource.replace(/\/$/, ''))) {
      return text(
        403,
        `failed to refresh token, error: adal: Refresh request failed. Status Code = '400'. Response body: ` +
          `{"error":"invalid_resource","error_description":"AADSTS500011: The resource principal named ${resource} was not found"}`,
      );
    }
    const { token, record: issued } = options.tokens.issue({
      identityId: assignment.identityId,
      resource,
      lifetimeSeconds: lifetime,
      issuer: 'nmi',
      ...(options.tenantId !== undefined ? { tenantId: options.tenantId } : {}),
    });
    record.identityId = assignment.identityId;
    record.status = 200;
    const body = JSON.stringify({
      token: {
        access_token: token,
        refresh_token: '',
        expires_in: String(lifetime),
        expires_on: String(issued.expiresOn),
        not_before: String(issued.issuedAt - 300),
        resource,
        token_type: 'Bearer',
      },
      clientid: assignment.clientId,
    });
    res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' });
    res.end(body);
  };

  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      if (standIn.delayMs > 0) setTimeout(() => handle(req, res), standIn.delayMs);
      else handle(req, res);
    });
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? NMI_PORT, '127.0.0.1', () => resolve());
  });
  standIn.close = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
      for (const s of sockets) s.destroy();
    });
  return standIn;
}
