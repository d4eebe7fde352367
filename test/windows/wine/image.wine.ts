/**
 * windows.Dockerfile without a container engine: its steps run through test/deploy/support/dockerfile.ts (the Linux
 * build stage with this machine's Node.js, npm and mingw-w64; the Windows stage's copies), then the resulting C:\app
 * is started under Wine as its ENTRYPOINT starts it. Not exercised: the base images themselves (node:22-bookworm-slim,
 * Nano Server), and AF_UNIX (Wine has none: the loopback-TCP build is swapped in for the run).
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseDockerfile, runDockerfile, type BuildResult, type Stage } from '../../deploy/support/dockerfile';
import { repoRoot } from '../../support/driver-client';
import { buildAddon, removeAddonBuilds } from '../support/addon-build';
import { createTestClient } from '../support/grpc-client';
import { eventually, grpcTarget } from '../support/peers';
import { driveC, prepareWine, runNodeExe, stopWine, winPath, type Wine, type WineProcess } from '../support/wine';

afterAll(removeAddonBuilds);

// npm ci, tsc, mingw and npm prune on a 2-core machine.
jest.setTimeout(600_000);

const ROOT = repoRoot();
const APP = 'C:\\app\\';

let wine: Wine;
let root: string;
let build: BuildResult;
let stages: Stage[];
let app: string;
const running: WineProcess[] = [];

beforeAll(async () => {
  wine = prepareWine();
  root = mkdtempSync(join(tmpdir(), 'csi-windows-image-'));
  const passThrough = ['NODE_API_HEADERS_DIR'].filter((name) => process.env[name] !== undefined);
  build = await runDockerfile({
    dockerfile: join(ROOT, 'windows.Dockerfile'),
    context: ROOT,
    root,
    // The machine's npm cache serves the install when it can (CI has just filled it with npm ci).
    env: {
      npm_config_prefer_offline: 'true',
      npm_config_update_notifier: 'false',
      ...Object.fromEntries(passThrough.map((name) => [name, process.env[name]!])),
    },
  });
  stages = parseDockerfile(readFileSync(join(ROOT, 'windows.Dockerfile'), 'utf8'));
  app = build.workdirs[stages.at(-1)!.name]!;
});

afterEach(async () => {
  for (const p of running.splice(0)) await p.kill();
});

afterAll(() => {
  if (wine) stopWine(wine);
  if (wine) rmSync(driveC(wine, 'provider', 'azure.sock'), { force: true }); // left by the killed provider
  if (root) rmSync(root, { recursive: true, force: true });
});

/** A path of the image (C:\app\…) on this machine. */
function inApp(windowsPath: string): string {
  if (!windowsPath.startsWith(APP)) throw new Error(`${windowsPath} is not under ${APP}`);
  return join(app, ...windowsPath.slice(APP.length).split('\\'));
}

function linuxNodeMajor(): string {
  const linux = parseDockerfile(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'));
  return /^node:(\d+)-/.exec(linux[0]!.image)![1]!;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('windows.Dockerfile', () => {
  it('builds in a Linux stage on the Linux image’s Node major; the Nano Server stage only copies files', () => {
    expect(stages).toHaveLength(2);
    expect(stages[0]!.image).toBe(`node:${linuxNodeMajor()}-bookworm-slim`);
    expect(stages[1]!.image).toMatch(/^mcr\.microsoft\.com\/windows\/nanoserver:ltsc20(19|22)$/);
    // No RUN in the Windows stage: BuildKit on Linux can build it (docker buildx --platform windows/amd64).
    expect(new Set(stages[1]!.instructions.map((i) => i.op))).toEqual(new Set(['WORKDIR', 'COPY', 'ENV', 'USER', 'ENTRYPOINT']));
    expect(build.entrypoint).toEqual(['C:\\app\\node\\node.exe', 'C:\\app\\bin\\csi-provider-azure.js']);
    expect(build.user).toBe('ContainerAdministrator');
    // No baked heap cap: the entry point derives it from the limit the chart passes (CSI_PROVIDER_AZURE_MEMORY_LIMIT).
    expect(build.env).toEqual({ NODE_ENV: 'production' });
  });

  it('ships node.exe of that major, the Windows addon, and the production dependencies only', async () => {
    const log = join(root, 'version.log');
    const p = runNodeExe(wine, ['--version'], log, { exe: inApp(build.entrypoint[0]!) });
    expect((await p.exited).code).toBe(0);
    expect(p.output().trim()).toMatch(new RegExp(`^v${linuxNodeMajor()}\\.`));

    const addon = join(app, 'native', 'build', 'win32-x64', 'af_unix_listener.node');
    const imports = execFileSync('x86_64-w64-mingw32-objdump', ['-p', addon], { encoding: 'utf8' });
    expect([...imports.matchAll(/DLL Name:\s*(\S+)/g)].map((m) => m[1]!.toUpperCase()).sort()).toEqual([
      'KERNEL32.DLL',
      'MSVCRT.DLL',
      'NODE.EXE',
      'WS2_32.DLL',
    ]);

    expect(existsSync(join(app, 'node_modules', '@grpc', 'grpc-js'))).toBe(true);
    for (const dev of ['jest', 'typescript', 'node-api-headers']) expect(existsSync(join(app, 'node_modules', dev))).toBe(false);
    // Nor what a DaemonSet never loads (scripts/prune-production.js, as in the Linux image).
    for (const unused of ['@azure/msal-browser', 'open', '@types/node']) expect(existsSync(join(app, 'node_modules', unused))).toBe(false);
    expect(existsSync(join(app, 'node_modules', '@azure', 'identity', 'dist', 'commonjs', 'index.d.ts'))).toBe(false);
    expect(existsSync(join(app, 'dist', 'src', 'server', 'windows-socket.js'))).toBe(true);
  });

  it('starts as its ENTRYPOINT starts it, with the chart’s flags and memory limit, and serves the driver and /healthz', async () => {
    // Wine has no AF_UNIX: put the loopback-TCP build where the image has the AF_UNIX one.
    copyFileSync(buildAddon('win32-x64-tcptest'), join(app, 'native', 'build', 'win32-x64', 'af_unix_listener.node'));
    const socketFile = driveC(wine, 'provider', 'azure.sock');
    mkdirSync(dirname(socketFile), { recursive: true });
    rmSync(socketFile, { force: true });
    const healthzPort = await freePort();
    const [exe, script] = build.entrypoint as [string, string];
    const p = runNodeExe(
      wine,
      [winPath(inApp(script)), '--endpoint=unix://C:\\provider\\azure.sock', `--healthz-port=${healthzPort}`, `--prometheus-port=${await freePort()}`],
      join(root, 'provider.log'),
      // The memory limit as the chart's resourceFieldRef passes it: the entry point runs the provider as its child with
      // the heap cap (node.exe has no execve), so this start goes the way a Windows node's does.
      { exe: inApp(exe), env: { ...build.env, CSI_PROVIDER_AZURE_MEMORY_LIMIT: String(256 * 1024 * 1024) } },
    );
    running.push(p);
    await eventually(() => existsSync(socketFile) || p.child.exitCode !== null, Boolean, 60_000);
    if (!existsSync(socketFile)) throw new Error(`the image's provider did not start:\n${p.output()}`);

    const client = createTestClient(grpcTarget('tcp-loopback', socketFile));
    try {
      expect(await client.version()).toMatchObject({ version: 'v1alpha1', runtimeName: 'secrets-store-csi-driver-provider-azure' });
    } finally {
      client.close();
    }
    let healthz: { status: number; body: string } | undefined;
    for (const deadline = Date.now() + 10_000; Date.now() < deadline && healthz?.status !== 200; await new Promise((r) => setTimeout(r, 200))) {
      healthz = await fetch(`http://127.0.0.1:${healthzPort}/healthz`).then(async (r) => ({ status: r.status, body: await r.text() }), () => undefined);
    }
    expect(healthz).toEqual({ status: 200, body: 'ok' });
  });
});
