/**
 * The process: flags → wiring → servers → signals. The only module that reads process.argv, process.env or exits.
 */
import { createAzureAccess } from './cli/azure-access';
import { parseCommandLine, parseEndpoint, type ProviderConfig } from './cli/flags';
import { providerVersion, versionJson } from './cli/version';
import { canonicalCloudName, CLOUD_NAMES } from './spec/clouds';
import { CachingVaultAccess } from './keyvault/cached-vault-access';
import { createKubeFeatures, type KubeFeatures } from './kube/features';
import { combineHooks } from './mount/hooks';
import { MountService } from './mount/mount-service';
import { createLogger, type Logger } from './observability/logger';
import { PrometheusMetrics } from './observability/prometheus';
import { startGrpcServer, type RunningServer, type UnixTransport } from './server/grpc-server';
import { startHealthz } from './server/healthz';
import type { RunningHttpEndpoint } from './server/http-endpoint';
import { startMetricsServer } from './server/metrics-http';
import { createSocketProbe } from './server/socket-probe';
import { preloadInBackground } from './util/preload';
import { restPipeline } from './util/rest-pipeline';

export function main(argv: string[]): void {
  if (argv[0] === 'check') {
    // The operator's check of SecretProviderClasses, not the server: loaded only when asked for.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { runCheck } = require('./cli/check') as typeof import('./cli/check');
    runCheck(argv.slice(1), {
      out: (line) => process.stdout.write(`${line}\n`),
      err: (line) => process.stderr.write(`${line}\n`),
      env: process.env,
    }).then(
      (code) => process.exit(code),
      (err: unknown) => {
        process.stderr.write(`check: ${err instanceof Error ? err.message : String(err)}\n`);
        process.exit(2);
      },
    );
    return;
  }
  const parsed = parseCommandLine(argv);
  if (parsed.kind === 'error') {
    process.stderr.write(`${parsed.message}\n`);
    process.exit(2);
  }
  if (parsed.kind === 'version') {
    process.stdout.write(`${versionJson()}\n`);
    process.exit(0);
  }
  const { config, ignoredFlags } = parsed;
  const logger = createLogger({ json: config.logFormatJson, verbosity: config.verbosity });
  if (ignoredFlags.length > 0) logger.info({ flags: ignoredFlags }, 'ignoring flags that have no meaning in this provider');

  run(config, logger).catch((err: unknown) => {
    // One line an operator reads in `kubectl logs` of a crash-looping pod: what failed, not where in our code. The
    // messages of start-up failures name the flag and the fix; a stack trace would only bury them.
    const message = err instanceof Error ? err.message : String(err);
    logger.fatal(`provider failed to start: ${message.replace(/\s*\n\s*/g, ' ').slice(0, 2000)}`);
    process.exit(1);
  });
}

async function run(config: ProviderConfig, logger: Logger): Promise<void> {
  const defaultCloud = canonicalCloudName(config.cloudName);
  if (!defaultCloud) {
    throw new Error(
      `--cloud-name "${config.cloudName.slice(0, 100)}" is not a known cloud: use one of ${CLOUD_NAMES.join(', ')} ` +
        '(any case; AzureCloud and AzureUSGovernment are accepted too)',
    );
  }
  const metrics = createMetrics(config);
  const { userAgentPrefix, vaults: azureVaults } = createAzureAccess(config, process.env, { metrics });
  // The value cache only when the operator turned it on: off, mounts take exactly the path they take without it.
  const cache = config.keyVaultCache;
  const caching = cache.maxTtlMs > 0 ? new CachingVaultAccess(azureVaults, { ...cache, metrics, logger }) : undefined;
  const kube = kubeFeatures(config, logger, metrics, userAgentPrefix);
  const mounts = new MountService(
    caching ?? azureVaults,
    {
      defaultCloudName: defaultCloud,
      constructPemChain: config.constructPemChain,
      writeCertAndKeyInSeparateFiles: config.writeCertAndKeyInSeparateFiles,
      maxParallelFetches: config.maxFetchesPerMount,
      ...(cache.maxTtlMs > 0 ? { maxCacheTtlMs: cache.maxTtlMs } : {}),
      // The cache learns from each successful mount which pods it may answer from memory.
      hooks: caching ? combineHooks(kube.hooks, caching) : kube.hooks,
    },
    logger,
    metrics,
  );

  logger.info(
    {
      version: providerVersion(),
      node: process.version,
      constructPemChain: config.constructPemChain,
      writeCertAndKeyInSeparateFiles: config.writeCertAndKeyInSeparateFiles,
      cloudName: defaultCloud,
      maxFetchesPerMount: config.maxFetchesPerMount,
      maxRequestsPerVault: config.maxRequestsPerVault,
      credentialCacheSize: config.credentialCacheSize,
      cloudEnvFileDir: config.cloudEnvFileDir,
      ...(cache.maxTtlMs > 0 ? { keyVaultCache: cache } : {}),
      rotationFailureEvents: config.rotationFailureEvents,
      workloadIdentityFromServiceAccount: config.workloadIdentityFromServiceAccount,
      nodeIdentityPolicy: config.nodeIdentityPolicy,
    },
    'starting Azure Key Vault provider',
  );
  // The HTTP ports first: a port conflict fails start-up before the socket exists for the driver to find.
  const metricsServer = await startMetricsServer(config.prometheusPort, metrics, logger, config.prometheusAddress);
  let healthz: RunningHttpEndpoint | undefined;
  let server: RunningServer;
  // On Windows, libuv serves unix:// paths as named pipes, but the driver dials AF_UNIX: the addon provides it.
  const unixTransport: UnixTransport = process.platform === 'win32' ? 'af-unix-addon' : 'grpc';
  try {
    let probe = createSocketProbe(config.endpoint, unixTransport);
    healthz = await startHealthz({ ...config.healthz, probe: (timeoutMs) => probe(timeoutMs), logger });
    server = await startGrpcServer(config.endpoint, mounts, logger, {
      metrics,
      unixTransport,
      onFatal: (err) => {
        logger.fatal({ err }, 'stopped accepting driver connections');
        process.exit(1);
      },
    });
    // Probe the address actually bound (a tcp:// endpoint may ask for port 0).
    probe = createSocketProbe(parseEndpoint(server.address), unixTransport);
  } catch (err) {
    await Promise.all([metricsServer.close(), healthz?.close()]);
    throw err;
  }
  handleSignals(server, [healthz, metricsServer], config, logger, () => kube.close());
  // What every mount needs, whatever its identity: the objects parser, the SDK pipeline, the secrets client (most
  // classes read only secrets). Not Entra ID's library, nor the key and certificate clients: several MiB resident
  // each, on every node, for modes and kinds many nodes never mount.
  preloadInBackground(
    [
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      () => require('yaml'),
      () => restPipeline(),
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      () => require('@azure/keyvault-secrets'),
    ],
    // A second after the socket serves, 100 ms between libraries: under a 50m quota the whole list is loaded within
    // about four seconds of start, and no exchange with the driver or the kubelet waits for more than one library.
    { startAfterMs: 1000, gapMs: 100 },
    (err) => logger.debug({ err }, 'preloading a library failed; the first mount that needs it loads it'),
  );
}

/**
 * The Kubernetes-aware features. With all of them off (the default) no API client is configured and no call is made:
 * what remains is the node identity policy's "allow", which only logs once per class that uses a node identity.
 */
function kubeFeatures(config: ProviderConfig, logger: Logger, metrics: PrometheusMetrics, userAgent: string): KubeFeatures {
  return createKubeFeatures(
    {
      kubeconfig: config.kubeconfig,
      rotationFailureEvents: config.rotationFailureEvents,
      workloadIdentityFromServiceAccount: config.workloadIdentityFromServiceAccount,
      nodeIdentityPolicy: config.nodeIdentityPolicy,
      nodeIdentityAllowedNamespaceLabel: config.nodeIdentityAllowedNamespaceLabel,
    },
    { logger, registry: metrics.registry, userAgent, env: process.env },
  );
}

/** The reference supports only Prometheus; any other backend is a configuration mistake worth failing on. */
function createMetrics(config: ProviderConfig): PrometheusMetrics {
  if (config.metricsBackend.toLowerCase() !== 'prometheus') {
    throw new Error(`--metrics-backend "${config.metricsBackend}" is not supported: the only metrics backend is Prometheus`);
  }
  return new PrometheusMetrics({ valueCache: config.keyVaultCache.maxTtlMs > 0 });
}

function handleSignals(
  server: RunningServer,
  httpEndpoints: RunningHttpEndpoint[],
  config: ProviderConfig,
  logger: Logger,
  /** Last: events of the final mounts still being posted. */
  closeKube: () => Promise<void>,
): void {
  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal, inFlight: server.inFlight(), drainTimeoutMs: config.drainTimeoutMs }, 'shutting down');
    server
      .shutdown(config.drainTimeoutMs)
      .then(async ({ drained }) => {
        // /healthz answers 503 while the mounts drain; the HTTP ports close only once the socket is gone.
        await Promise.all(httpEndpoints.map((endpoint) => endpoint.close()));
        await closeKube();
        logger.info({ drained }, 'stopped');
        process.exit(0);
      })
      .catch((err: unknown) => {
        logger.error({ err }, 'error while shutting down');
        process.exit(1);
      });
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
