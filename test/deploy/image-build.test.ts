/**
 * The container image, without a container engine: the Dockerfile's own steps (install, compile, prune, copy into
 * the runtime stage) run in a temporary directory by support/dockerfile.ts, and the result is started exactly as the
 * image's ENTRYPOINT would start it, then used as the driver uses it. The base images themselves are not exercised:
 * the steps run with this machine's Node.js and npm.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startAzureStandIns, type AzureStandIns } from '../support/azure-standins';
import { createDriverClient, repoRoot } from '../support/driver-client';
import { parseDockerfile, runDockerfile, type BuildResult } from './support/dockerfile';

// npm ci, tsc and npm prune on a 2-core machine.
jest.setTimeout(300_000);

const ROOT = repoRoot();
const PACKAGE = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  version: string;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};

let root: string;
let build: BuildResult;
let appDir: string;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'csi-image-'));
  build = await runDockerfile({
    dockerfile: join(ROOT, 'Dockerfile'),
    context: ROOT,
    root,
    // The machine's npm cache serves the install when it can (CI has just filled it with npm ci).
    env: { npm_config_prefer_offline: 'true', npm_config_update_notifier: 'false' },
  });
  appDir = build.workdirs[parseDockerfile(readFileSync(join(ROOT, 'Dockerfile'), 'utf8')).at(-1)!.name]!;
});

afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('the Dockerfile', () => {
  it('builds on a Node.js LTS and runs on distroless Node.js of the same major, without a shell, not as root', () => {
    const stages = parseDockerfile(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'));
    expect(stages).toHaveLength(2);
    const buildMajor = /^node:(\d+)-/.exec(stages[0]!.image)?.[1];
    const runMajor = /^gcr\.io\/distroless\/nodejs(\d+)-debian\d+:nonroot$/.exec(stages[1]!.image)?.[1];
    expect(buildMajor).toBeDefined();
    expect(runMajor).toBe(buildMajor);
    // Even majors are the LTS lines; 22 is the oldest the image may use (ECOSYSTEM-NOTES: Azure SDK engines).
    expect(Number(buildMajor) % 2).toBe(0);
    expect(Number(buildMajor)).toBeGreaterThanOrEqual(22);
    // Exec form: the runtime image has no shell to run a shell-form command.
    expect(build.entrypoint).toEqual(['/nodejs/bin/node', '/app/bin/csi-provider-azure.js']);
    expect(build.user).toBe('65532:65532');
    expect(build.env).toMatchObject({ NODE_ENV: 'production', NODE_OPTIONS: '--max-old-space-size=96' });
  });

  it('puts only the compiled provider, its protos and its production dependencies into the image', () => {
    expect(readdirSync(appDir).sort()).toEqual(['bin', 'dist', 'node_modules', 'package.json', 'proto']);
    expect(readdirSync(join(appDir, 'dist'))).toEqual(['src']);
    expect(existsSync(join(appDir, 'dist', 'src', 'main.js'))).toBe(true);
    expect(readdirSync(join(appDir, 'proto')).sort()).toEqual(['health.proto', 'provider.proto']);
    for (const name of Object.keys(PACKAGE.dependencies)) expect(existsSync(join(appDir, 'node_modules', name, 'package.json'))).toBe(true);
    // Whatever the lockfile marks as needed only for development is gone (typescript, jest, helm, ...).
    const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> };
    const devOnly = Object.entries(lock.packages).filter(([path, p]) => path.startsWith('node_modules/') && p.dev === true);
    expect(devOnly.length).toBeGreaterThan(100);
    const leftOver = devOnly.map(([path]) => path).filter((path) => existsSync(join(appDir, path)));
    expect(leftOver).toEqual([]);
    for (const name of ['typescript', 'jest', '@aws-cdk/asset-kubectl-v20']) expect(Object.keys(PACKAGE.devDependencies)).toContain(name);
  });

  describe('its result, started as the ENTRYPOINT starts it', () => {
    let azure: AzureStandIns;
    beforeAll(async () => {
      azure = await startAzureStandIns({ identities: { systemAssigned: { id: 'node' } } });
      azure.keyVault.addVault('image-kv', { allow: ['node'] });
      azure.keyVault.setSecret('image-kv', 'greeting', 'hello from the image');
    });
    afterAll(async () => {
      await azure?.close();
    });

    it('prints its version', async () => {
      const { stdout, code } = await runToExit(['--version']);
      expect(code).toBe(0);
      expect(JSON.parse(stdout)).toMatchObject({ version: PACKAGE.version, runtime: 'secrets-store-csi-driver-provider-azure' });
    });

    it('serves the driver, mounts from Key Vault, answers /healthz and /metrics, and stops on SIGTERM', async () => {
      const socketDir = mkdtempSync(join(tmpdir(), 'csi-image-sock-'));
      const socketPath = join(socketDir, 'azure.sock');
      const [healthzPort, metricsPort] = [await freePort(), await freePort()];
      const child = start(['--endpoint', `unix://${socketPath}`, `--healthz-port=${healthzPort}`, `--prometheus-port=${metricsPort}`], azure.providerEnv());
      let output = '';
      child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
      child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      const client = createDriverClient(socketPath);
      try {
        await waitFor(() => existsSync(socketPath), 15_000, () => output);
        expect((await client.version({ deadlineMs: 5000 })).runtimeVersion).toBe(PACKAGE.version);
        const result = await client.mount({
          attributes: {
            'csi.storage.k8s.io/pod.name': 'p',
            'csi.storage.k8s.io/pod.namespace': 'ns',
            useVMManagedIdentity: 'true',
            keyvaultName: 'image-kv',
            tenantID: azure.tenantId,
            objects: 'array:\n  - |\n    objectName: greeting\n    objectType: secret\n',
          },
        });
        expect(result.files.map((f) => [f.path, f.contents.toString()])).toEqual([['greeting', 'hello from the image']]);
        expect(await (await fetch(`http://127.0.0.1:${healthzPort}/healthz`)).text()).toBe('ok');
        expect(await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text()).toContain('grpc_request_count{');
      } finally {
        client.close();
        child.kill('SIGTERM');
      }
      expect(await exited).toBe(0);
      expect(existsSync(socketPath)).toBe(false);
      rmSync(socketDir, { recursive: true, force: true });
    });
  });
});

/** The ENTRYPOINT with the image's paths mapped here: the distroless node is this node, /app is the built stage. */
function start(args: string[], env: Record<string, string> = {}): ChildProcess {
  const [node, script] = build.entrypoint as [string, string];
  expect(node).toBe('/nodejs/bin/node');
  return spawn(process.execPath, [join(appDir, script.replace(/^\/app\//, '')), ...args], {
    cwd: appDir,
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', ...build.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

function runToExit(args: string[]): Promise<{ code: number | null; stdout: string }> {
  return new Promise((resolve) => {
    const child = start(args);
    let stdout = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.once('exit', (code) => resolve({ code, stdout }));
  });
}

async function waitFor(condition: () => boolean, timeoutMs: number, logs: () => string): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > until) throw new Error(`timed out; output:\n${logs()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
