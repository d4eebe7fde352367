/**
 * The process: flags → wiring → servers → signals. The only module that reads process.argv, process.env or exits.
 */
import { parseCommandLine, type ProviderConfig } from './cli/flags';
import { providerVersion, versionJson } from './cli/version';
import { CredentialCache } from './identity/credentials';
import { canonicalCloudName, CLOUD_NAMES } from './keyvault/clouds';
import { AzureVaultAccess } from './keyvault/vault-access';
import { MountService } from './mount/mount-service';
import { createLogger, type Logger } from './observability/logger';
import { startGrpcServer, type RunningServer } from './server/grpc-server';

/** Objects fetched at once within one mount (issue #5 makes this a flag with a per-vault bound). */
const MAX_PARALLEL_FETCHES = 8;

export function main(argv: string[]): void {
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
    logger.fatal({ err }, 'provider failed to start');
    process.exit(1);
  });
}

async function run(config: ProviderConfig, logger: Logger): Promise<void> {
  const defaultCloud = canonicalCloudName(config.cloudName);
  if (!defaultCloud) throw new Error(`--cloud-name "${config.cloudName}" is not a known cloud: use one of ${CLOUD_NAMES.join(', ')}`);
  const userAgentPrefix = ['csi-provider-azure/' + providerVersion(), config.customUserAgent].filter(Boolean).join(' ');

  const credentials = new CredentialCache({ userAgentPrefix });
  const vaults = new AzureVaultAccess(credentials, { userAgentPrefix });
  const mounts = new MountService(
    vaults,
    {
      defaultCloudName: defaultCloud,
      constructPemChain: config.constructPemChain,
      writeCertAndKeyInSeparateFiles: config.writeCertAndKeyInSeparateFiles,
      maxParallelFetches: MAX_PARALLEL_FETCHES,
    },
    logger,
  );

  logger.info(
    {
      version: providerVersion(),
      node: process.version,
      constructPemChain: config.constructPemChain,
      writeCertAndKeyInSeparateFiles: config.writeCertAndKeyInSeparateFiles,
      cloudName: defaultCloud,
    },
    'starting Azure Key Vault provider',
  );
  const server = await startGrpcServer(config.endpoint, mounts, logger);
  handleSignals(server, config, logger);
}

function handleSignals(server: RunningServer, config: ProviderConfig, logger: Logger): void {
  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal, inFlight: server.inFlight(), drainTimeoutMs: config.drainTimeoutMs }, 'shutting down');
    server
      .shutdown(config.drainTimeoutMs)
      .then(({ drained }) => {
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
