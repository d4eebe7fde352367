/** Prometheus /metrics on --prometheus-port (CONTRACT §6); every other path answers 404. */
import type { Logger } from '../observability/logger';
import type { PrometheusMetrics } from '../observability/prometheus';
import { startHttpEndpoint, type RunningHttpEndpoint } from './http-endpoint';

export const METRICS_PATH = '/metrics';

export async function startMetricsServer(port: number, metrics: PrometheusMetrics, logger: Logger): Promise<RunningHttpEndpoint> {
  const endpoint = await startHttpEndpoint({
    name: 'metrics',
    portFlag: '--prometheus-port',
    port,
    routes: {
      [METRICS_PATH]: async () => {
        const { contentType, body } = await metrics.expose();
        return { status: 200, contentType, body };
      },
    },
  });
  logger.info({ port: endpoint.port, path: METRICS_PATH }, 'serving Prometheus metrics');
  return endpoint;
}
