/**
 * /healthz for the kubelet's liveness probe: each request runs a real health check over the provider's
 * socket within --healthz-timeout and answers 200 "ok" or 503 with a short reason; nothing else is served.
 *
 * Concurrent requests share the check already running instead of starting their own, so a provider that has stopped
 * answering is probed once per timeout, however many probes (or curious clients on the node network) arrive.
 */
import type { Logger } from '../observability/logger';
import { startHttpEndpoint, type RunningHttpEndpoint } from './http-endpoint';
import type { ProbeResult, SocketProbe } from './socket-probe';

export interface HealthzOptions {
  port: number;
  /** '' = every address. */
  address?: string;
  path: string;
  timeoutMs: number;
  probe: SocketProbe;
  logger: Logger;
}

const TEXT = 'text/plain; charset=utf-8';

export async function startHealthz(options: HealthzOptions): Promise<RunningHttpEndpoint> {
  let running: Promise<ProbeResult> | undefined;
  let lastOk = true;

  const check = (): Promise<ProbeResult> => {
    running ??= options
      .probe(options.timeoutMs)
      .catch((): ProbeResult => ({ ok: false, reason: 'the health check could not run' }))
      .finally(() => {
        running = undefined;
      });
    return running;
  };

  const endpoint = await startHttpEndpoint({
    name: 'healthz',
    portFlag: '--healthz-port',
    port: options.port,
    ...(options.address ? { host: options.address, hostFlag: '--healthz-address' } : {}),
    routes: {
      [options.path]: async () => {
        const result = await check();
        // Log changes, not every probe: the kubelet asks every few seconds.
        if (result.ok !== lastOk) {
          if (result.ok) options.logger.info('health check passes again');
          else options.logger.warn({ reason: result.reason }, 'health check failed');
          lastOk = result.ok;
        }
        return result.ok
          ? { status: 200, contentType: TEXT, body: 'ok' }
          : { status: 503, contentType: TEXT, body: `${result.reason}\n` };
      },
    },
  });
  options.logger.info({ port: endpoint.port, address: options.address || '(all)', path: options.path }, 'serving health checks');
  return endpoint;
}
