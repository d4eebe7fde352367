/**
 * A minimal HTTP listener for the operational endpoints (/healthz, /metrics): exact paths, GET and HEAD only, nothing
 * else answered. The pods run with hostNetwork, so these ports are on the node's interfaces: they must not offer more
 * than they are for, and slow or idle clients must not hold sockets open.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface HttpAnswer {
  status: number;
  contentType: string;
  body: string;
}

export type RouteHandler = () => Promise<HttpAnswer>;

export interface HttpEndpointOptions {
  /** What the endpoint is, for error messages ("healthz", "metrics"). */
  name: string;
  /** The flag that sets the port, for error messages. */
  portFlag: string;
  port: number;
  /** The address to listen on; every address when empty or absent. */
  host?: string;
  /** The flag that sets the address, for error messages. */
  hostFlag?: string;
  /** Exact request paths (query strings ignored) and their handlers. */
  routes: Record<string, RouteHandler>;
}

export interface RunningHttpEndpoint {
  /** The bound port (differs from the requested one when that was 0). */
  port: number;
  close(): Promise<void>;
}

/** Limits taken from the reference's 5 s header timeout; a probe or a scrape is one small request. */
const HEADERS_TIMEOUT_MS = 5_000;
const REQUEST_TIMEOUT_MS = 30_000;

const TEXT = 'text/plain; charset=utf-8';

export async function startHttpEndpoint(options: HttpEndpointOptions): Promise<RunningHttpEndpoint> {
  const routes = new Map(Object.entries(options.routes));
  const server = createServer((req, res) => void answer(routes, req, res));
  server.headersTimeout = HEADERS_TIMEOUT_MS;
  server.requestTimeout = REQUEST_TIMEOUT_MS;
  server.keepAliveTimeout = 5_000;
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });

  await listen(server, options);
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      }),
  };
}

async function answer(routes: Map<string, RouteHandler>, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = (req.url ?? '').split('?', 1)[0] ?? '';
  const handler = routes.get(path);
  let result: HttpAnswer;
  if (!handler) result = { status: 404, contentType: TEXT, body: 'not found\n' };
  else if (req.method !== 'GET' && req.method !== 'HEAD') result = { status: 405, contentType: TEXT, body: 'method not allowed\n' };
  else {
    try {
      result = await handler();
    } catch {
      // Handlers turn their own failures into answers; whatever still escapes is not described to the network.
      result = { status: 500, contentType: TEXT, body: 'internal error\n' };
    }
  }
  const headers: Record<string, string | number> = {
    'Content-Type': result.contentType,
    'Content-Length': Buffer.byteLength(result.body),
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
  };
  if (result.status === 405) headers['Allow'] = 'GET, HEAD';
  res.writeHead(result.status, headers);
  res.end(req.method === 'HEAD' ? undefined : result.body);
}

function listen(server: Server, options: HttpEndpointOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      const why =
        err.code === 'EADDRINUSE'
          ? `is already in use on this node (another process, or a second provider pod with hostNetwork): stop it or set ${options.portFlag} to a free port`
          : `cannot be opened (${err.code ?? 'error'})`;
      const where = options.host ? ` on ${options.hostFlag ?? 'address'} ${options.host}` : '';
      reject(new Error(`${options.portFlag} ${options.port}${where} for the ${options.name} endpoint ${why}`));
    };
    server.once('error', onError);
    const listening = (): void => {
      server.removeListener('error', onError);
      resolve();
    };
    // No host: every interface, IPv6 and IPv4, as the reference binds ":port" (kubelet probes the pod IP, the node's).
    if (options.host) server.listen(options.port, options.host, listening);
    else server.listen(options.port, listening);
  });
}
