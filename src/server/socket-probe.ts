/**
 * One real health check over the provider's own endpoint, as a client: a fresh connection (not a shared channel, which
 * would keep working after the socket file is gone) and a grpc.health.v1 Check within the timeout. The reason it gives
 * on failure is a fixed phrase: it goes out over HTTP on the node's network, so it carries no path or error text.
 */
import * as grpc from '@grpc/grpc-js';
import type { Endpoint } from '../cli/flags';
import type { UnixTransport } from './grpc-server';
import { loadServices } from './protos';
import { healthCheckOverAddon } from './windows-socket';

export type ProbeResult = { ok: true } | { ok: false; reason: string };

export type SocketProbe = (timeoutMs: number) => Promise<ProbeResult>;

export function createSocketProbe(endpoint: Endpoint, unixTransport: UnixTransport = 'grpc'): SocketProbe {
  if (endpoint.kind === 'unix' && unixTransport === 'af-unix-addon') {
    // grpc-js cannot dial AF_UNIX on Windows either: the same Check, over HTTP/2 on a connection from the addon.
    const path = endpoint.path;
    return (timeoutMs) =>
      healthCheckOverAddon(path, timeoutMs).then(
        (status): ProbeResult => (status === 'SERVING' ? { ok: true } : { ok: false, reason: 'the provider is not serving (shutting down)' }),
        (err: { code?: grpc.status }): ProbeResult => ({ ok: false, reason: reasonFor(err.code ?? grpc.status.UNKNOWN, timeoutMs) }),
      );
  }
  const Health = grpc.makeGenericClientConstructor(loadServices().health, 'Health');
  const target = targetOf(endpoint);
  return (timeoutMs) =>
    new Promise<ProbeResult>((resolve) => {
      const client = new Health(target, grpc.credentials.createInsecure(), {
        // What the driver sends; and a connection of our own, so a vanished socket cannot hide behind a live one.
        'grpc.default_authority': 'localhost',
        'grpc.use_local_subchannel_pool': 1,
        'grpc.enable_retries': 0,
      });
      const check = (client as unknown as Record<string, CheckMethod>)['Check']!.bind(client);
      check({ service: '' }, { deadline: Date.now() + timeoutMs }, (err, response) => {
        client.close();
        if (err) resolve({ ok: false, reason: reasonFor(err.code, timeoutMs) });
        else if (response?.status === 'SERVING') resolve({ ok: true });
        else resolve({ ok: false, reason: 'the provider is not serving (shutting down)' });
      });
    });
}

type CheckMethod = (
  request: { service: string },
  options: grpc.CallOptions,
  callback: (err: grpc.ServiceError | null, response?: { status?: string }) => void,
) => grpc.ClientUnaryCall;

function targetOf(endpoint: Endpoint): string {
  if (endpoint.kind === 'unix') return `unix:${endpoint.path}`;
  // A server bound to every interface is reached on loopback.
  const host = endpoint.host === '0.0.0.0' || endpoint.host === '::' || endpoint.host === '' ? '127.0.0.1' : endpoint.host;
  return `${host.includes(':') ? `[${host}]` : host}:${endpoint.port}`;
}

function reasonFor(code: grpc.status, timeoutMs: number): string {
  switch (code) {
    case grpc.status.DEADLINE_EXCEEDED:
      return `the provider did not answer a health check on its socket within ${timeoutMs}ms`;
    case grpc.status.UNAVAILABLE:
      return 'the provider socket does not accept connections';
    default:
      return `the health check on the provider socket failed with gRPC code ${grpc.status[code] ?? code}`;
  }
}
