import { DEFAULT_CONFIG, parseCommandLine } from '../../../src/cli/flags';
import { parseDuration } from '../../../src/util/duration';

function run(argv: string[]) {
  const parsed = parseCommandLine(argv);
  if (parsed.kind !== 'run') throw new Error(`expected run, got ${JSON.stringify(parsed)}`);
  return parsed;
}

describe('parseCommandLine', () => {
  it('has the reference defaults', () => {
    expect(run([]).config).toEqual(DEFAULT_CONFIG);
    expect(DEFAULT_CONFIG.endpoint).toEqual({ kind: 'unix', path: '/tmp/azure.sock' });
  });

  it('takes the reference DaemonSet arguments', () => {
    const { config } = run([
      '--endpoint=unix:///provider/azure.sock',
      '--construct-pem-chain=false',
      '--write-cert-and-key-in-separate-files',
      '--healthz-port=8989',
      '--healthz-path=/healthz',
      '--healthz-timeout=5s',
      '-v=2',
      '--log-format-json',
    ]);
    expect(config.endpoint).toEqual({ kind: 'unix', path: '/provider/azure.sock' });
    expect(config.constructPemChain).toBe(false);
    expect(config.writeCertAndKeyInSeparateFiles).toBe(true);
    expect(config.healthz).toEqual({ port: 8989, path: '/healthz', timeoutMs: 5000, address: '' });
    expect(config.verbosity).toBe(2);
    expect(config.logFormatJson).toBe(true);
  });

  it('takes values after a space, and true/false after a boolean', () => {
    const { config } = run(['--endpoint', 'tcp://127.0.0.1:9000', '--v', '5', '--construct-pem-chain', 'false', '--log-format-json']);
    expect(config.endpoint).toEqual({ kind: 'tcp', host: '127.0.0.1', port: 9000 });
    expect(config.verbosity).toBe(5);
    expect(config.constructPemChain).toBe(false);
    expect(config.logFormatJson).toBe(true);
  });

  it('accepts and reports klog flags the reference manifests may pass', () => {
    expect(run(['--logtostderr=true', '-v=1']).ignoredFlags).toEqual(['logtostderr']);
  });

  it('takes the load flags, and 0 for the credential cache (build every credential per mount, like the reference)', () => {
    const { config } = run(['--max-fetches-per-mount=1', '--max-requests-per-vault', '8', '--credential-cache-size=0']);
    expect(config).toMatchObject({ maxFetchesPerMount: 1, maxRequestsPerVault: 8, credentialCacheSize: 0 });
    expect(DEFAULT_CONFIG).toMatchObject({ maxFetchesPerMount: 32, maxRequestsPerVault: 64, credentialCacheSize: 1000 });
  });

  it('takes listen addresses for /healthz and /metrics (default: every address) and the cloud file directory', () => {
    expect(DEFAULT_CONFIG).toMatchObject({ healthz: { address: '' }, prometheusAddress: '', cloudEnvFileDir: '/etc/kubernetes' });
    const { config } = run(['--healthz-address=127.0.0.1', '--prometheus-address', '[::1]', '--cloud-env-file-dir=/etc/cloud/']);
    expect(config).toMatchObject({ healthz: { address: '127.0.0.1' }, prometheusAddress: '::1', cloudEnvFileDir: '/etc/cloud' });
  });

  it('prints the version', () => {
    expect(parseCommandLine(['--version'])).toEqual({ kind: 'version' });
  });

  it.each([
    [['--no-such-flag'], 'unknown flag --no-such-flag'],
    [['--endpoint=http://x'], 'invalid value "http://x" for flag --endpoint'],
    [['--healthz-timeout=soon'], 'flag --healthz-timeout'],
    [['--prometheus-port=70000'], 'flag --prometheus-port'],
    [['--endpoint'], 'needs a value'],
    [['stray'], 'unexpected argument "stray"'],
    [['--max-fetches-per-mount=0'], 'invalid value "0" for flag --max-fetches-per-mount: expected a whole number of at least 1'],
    [['--max-requests-per-vault=-2'], 'flag --max-requests-per-vault'],
    [['--healthz-address=localhost'], 'flag --healthz-address: expected an IP address'],
    [['--prometheus-address=1.2.3'], 'flag --prometheus-address'],
    [['--cloud-env-file-dir=etc'], 'expected an absolute directory path'],
    [['--cloud-env-file-dir=/'], 'the root directory would allow every file'],
  ])('rejects %p', (argv, message) => {
    const parsed = parseCommandLine(argv);
    expect(parsed.kind).toBe('error');
    expect(parsed.kind === 'error' && parsed.message).toContain(message);
  });

  it('parses Go durations', () => {
    expect(parseDuration('1m30s')).toBe(90000);
    expect(parseDuration('250ms')).toBe(250);
    expect(parseDuration('1.5s')).toBe(1500);
    expect(() => parseDuration('5')).toThrow();
  });
});
