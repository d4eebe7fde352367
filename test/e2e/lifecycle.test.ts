/** The provider process's life: start-up flags, the socket file, and SIGTERM with a mount in flight. */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startAzureStandIns, type AzureStandIns } from '../support/azure-standins';
import { repoRoot } from '../support/driver-client';
import { registerProviderCleanup, startProvider } from '../support/provider-process';

registerProviderCleanup();
const run = promisify(execFile);
const bin = join(repoRoot(), 'bin', 'csi-provider-azure.js');

let azure: AzureStandIns;

beforeAll(async () => {
  azure = await startAzureStandIns({ identities: { systemAssigned: { id: 'node' } } });
  azure.keyVault.addVault('life-kv', { allow: ['node'] });
  azure.keyVault.setSecret('life-kv', 'slow', 'value');
});

afterAll(async () => {
  await azure?.close();
});

const attributes = () => ({
  'csi.storage.k8s.io/pod.name': 'p',
  'csi.storage.k8s.io/pod.namespace': 'ns',
  useVMManagedIdentity: 'true',
  keyvaultName: 'life-kv',
  tenantID: azure.tenantId,
  objects: 'array:\n  - |\n    objectName: slow\n    objectType: secret\n',
});

describe('the provider process', () => {
  it('prints its version as JSON and exits 0', async () => {
    const { stdout } = await run(process.execPath, [bin, '--version']);
    expect(JSON.parse(stdout)).toMatchObject({ version: expect.any(String), runtime: 'secrets-store-csi-driver-provider-azure' });
  });

  it('exits 2 with usage on an unknown flag', async () => {
    await expect(run(process.execPath, [bin, '--no-such-flag'])).rejects.toMatchObject({
      code: 2,
      stderr: expect.stringContaining('unknown flag --no-such-flag'),
    });
  });

  it('replaces a stale socket left by a killed provider', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'csi-stale-'));
    const first = await startProvider({ env: azure.providerEnv(), socketDir: dir });
    await first.stop('SIGKILL');
    expect(statSync(join(dir, 'azure.sock')).isSocket()).toBe(true);
    const second = await startProvider({ env: azure.providerEnv(), socketDir: dir });
    expect((await second.client.version()).version).toBe('v1alpha1');
    await second.stop();
  });

  it('refuses to replace a file that is not a socket', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'csi-notsock-'));
    writeFileSync(join(dir, 'azure.sock'), 'precious');
    await expect(startProvider({ env: azure.providerEnv(), socketDir: dir, startTimeoutMs: 5000 })).rejects.toThrow(
      /is not a socket/,
    );
    expect(existsSync(join(dir, 'azure.sock'))).toBe(true);
  });

  it('fails a mount at the driver deadline with what it was waiting on, before the driver gives up', async () => {
    const provider = await startProvider({ env: azure.providerEnv() });
    await provider.client.mount({ attributes: attributes() }); // warm
    azure.keyVault.delayMs = 5000;
    try {
      const err = await provider.client.mount({ attributes: attributes() }, { deadlineMs: 2000 }).then(
        () => undefined,
        (e: { code?: number; details?: string }) => e,
      );
      expect(err?.code).toBe(4); // DEADLINE_EXCEEDED
      expect(err?.details).toMatch(/did not complete within its deadline of 1\.\ds: reading secret "slow" from Key Vault "life-kv"/);
    } finally {
      azure.keyVault.delayMs = 0;
      await provider.stop();
    }
  });

  it('on SIGTERM finishes the mount in flight, removes the socket and exits 0', async () => {
    const provider = await startProvider({ env: azure.providerEnv() });
    await provider.client.mount({ attributes: attributes() }); // warm: token and challenge done
    azure.keyVault.delayMs = 1500;
    try {
      const inFlight = provider.client.mount({ attributes: attributes() });
      await new Promise((r) => setTimeout(r, 300));
      const exited = provider.stop('SIGTERM');
      const result = await inFlight;
      expect(result.files.map((f) => f.contents.toString())).toEqual(['value']);
      expect(await exited).toEqual({ code: 0, signal: null });
      expect(existsSync(provider.socketPath)).toBe(false);
      expect(provider.logs()).toContain('shutting down');
    } finally {
      azure.keyVault.delayMs = 0;
    }
  });

  it('cancels mounts still in flight when the drain timeout passes, and still exits 0', async () => {
    const provider = await startProvider({ env: azure.providerEnv(), args: ['--drain-timeout=200ms'] });
    azure.keyVault.delayMs = 5000;
    try {
      const inFlight = provider.client.mount({ attributes: attributes() }).then(
        () => 'completed',
        (err: { code?: number }) => `failed ${err.code}`,
      );
      await new Promise((r) => setTimeout(r, 300));
      expect(await provider.stop('SIGTERM')).toEqual({ code: 0, signal: null });
      expect(await inFlight).toMatch(/^failed/);
      expect(existsSync(provider.socketPath)).toBe(false);
    } finally {
      azure.keyVault.delayMs = 0;
    }
  });
});
