/** Prometheus /metrics on --prometheus-port, as the reference serves it; every other path answers 404. */
import type { Logger } from '../observability/logger';
import type { PrometheusMetrics } from '../observability/prometheus';
import { startHttpEndpoint, type RunningHttpEndpoint } from './http-endpoint';

export const METRICS_PATH = '/metrics';

export async function startMetricsServer(
  port: number,
  metrics: PrometheusMetrics,
  logger: Logger,
  address = '',
): Promise<RunningHttpEndpoint> {
  const endpoint = await startHttpEndpoint({
    name: 'metrics',
    portFlag: '--prometheus-port',
    port,
    ...(address ? { host: address, hostFlag: '--prometheus-address' } : {}),
    routes: {
      [METRICS_PATH]: async () => {
        const { contentType, body } = await metrics.expose();
        return { status: 200, contentType, body };
      },
    },
  });
  logger.info({ port: endpoint.port, address: address || '(all)', path: METRICS_PATH }, 'serving Prometheus metrics');
  return endpoint;
}
