import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RestError } from '@azure/core-rest-pipeline';
import { ProviderError } from '../../../src/errors';
import { classify, providerConfigOf, providerFlagsOf } from '../../../src/cli/probe';

describe('the running provider\'s flags for check --probe', () => {
  let dir: string;
  beforeAll(() => (dir = mkdtempSync(join(tmpdir(), 'probe-flags-'))));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const cmdline = (argv: string[]): string => {
    const file = join(dir, `cmdline-${Math.random()}`);
    writeFileSync(file, `${argv.join('\0')}\0`);
    return file;
  };

  it('reads them from the provider process of the container (after the heap cap re-exec too)', () => {
    const file = cmdline(['/nodejs/bin/node', '--max-old-space-size=96', '/app/bin/csi-provider-azure.js', '--endpoint=unix:///provider/azure.sock', '--cloud-name', 'AzureChinaCloud', '--custom-user-agent=', '-v=2']);
    const flags = providerFlagsOf(file)!;
    expect(flags).toEqual(['--endpoint=unix:///provider/azure.sock', '--cloud-name', 'AzureChinaCloud', '--custom-user-agent=', '-v=2']);
    const config = providerConfigOf(flags);
    expect(typeof config === 'string' ? config : config.cloudName).toBe('AzureChinaCloud');
  });

  it('finds none when PID 1 is something else, or is a check itself, or cannot be read', () => {
    expect(providerFlagsOf(cmdline(['/pause']))).toBeUndefined();
    expect(providerFlagsOf(cmdline(['node', '/app/bin/csi-provider-azure.js', 'check', '--probe']))).toBeUndefined();
    expect(providerFlagsOf(join(dir, 'absent'))).toBeUndefined();
  });

  it('says so when the flags do not parse', () => {
    expect(providerConfigOf(['--no-such-flag'])).toMatch(/^the provider flags do not parse: unknown flag --no-such-flag$/);
  });
});

describe('failure classes of a probed read', () => {
  const rest = (statusCode: number | undefined, code?: string): RestError => new RestError('service text', { ...(statusCode ? { statusCode } : {}), ...(code ? { code } : {}) });
  const failed = (status: ConstructorParameters<typeof ProviderError>[0], cause?: unknown): ProviderError => new ProviderError(status, 'm', { cause });

  it.each([
    ['404', () => failed('NotFound', rest(404)), 'not found'],
    ['403 of a role or access policy', () => failed('PermissionDenied', rest(403)), 'permission'],
    ['403 of the vault firewall', () => failed('PermissionDenied', new RestError('Client address is not authorized and caller is not a trusted service.', { statusCode: 403 })), 'network'],
    ['401 of the vault', () => failed('Unauthenticated', rest(401)), 'token'],
    ['429 after retries', () => failed('ResourceExhausted', rest(429)), 'vault outage'],
    ['503 after retries', () => failed('Unavailable', rest(503)), 'vault outage'],
    ['connection reset', () => failed('Unavailable', rest(undefined, 'ECONNRESET')), 'network'],
    ['still throttled at the deadline', () => failed('Cancelled', rest(429)), 'vault outage'],
    ['still timing out at the deadline', () => failed('Cancelled', rest(undefined, 'ETIMEDOUT')), 'network'],
    ['a disabled version', () => failed('FailedPrecondition'), 'unusable'],
    ['not our error', () => new Error('x'), 'error'],
  ])('%s', (_name, err, outcome) => {
    expect(classify(err())).toBe(outcome);
  });
});
