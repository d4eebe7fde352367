/**
 * The Windows build of the addon inside the official Windows node.exe under Wine (Debian's wine 8.0). Wine has no
 * AF_UNIX: the product build must fail there with a clear error, and the loopback-TCP test build (the same C source,
 * only the address family differs) carries the echo and gRPC tests. Clients run natively on Linux and reach node.exe
 * through loopback TCP at the address the addon writes at the socket path.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestClient } from '../support/grpc-client';
import { dial, eventually, grpcTarget, patternBytes, readAll, sha256 } from '../support/peers';
import { mountFileContents } from '../support/test-services';
import { driveC, prepareWine, runNodeExe, stopWine, winPath, type Wine, type WineProcess } from '../support/wine';
import { buildStage, type Stage } from '../support/wine-stage';

const MiB = 1024 * 1024;

let wine: Wine;
let stage: Stage;
const running: WineProcess[] = [];

beforeAll(() => {
  wine = prepareWine();
  stage = buildStage();
});

afterEach(async () => {
  for (const p of running.splice(0)) await p.kill();
});

afterAll(() => {
  if (wine) stopWine(wine);
  if (stage) rmSync(stage.root, { recursive: true, force: true });
});

function fixture(name: string): string {
  return winPath(join(stage.root, 'dist', 'test', 'windows', 'fixtures', `${name}.js`));
}

/** Runs the probe in node.exe; returns its JSON line. */
async function probe(addon: string, socketPath: string): Promise<Record<string, unknown>> {
  const dir = mkdtempSync(join(tmpdir(), 'wine-probe-'));
  const p = runNodeExe(wine, [fixture('wine-listen-probe'), winPath(addon), socketPath], join(dir, 'out.txt'));
  const exit = await p.exited;
  const output = p.output();
  expect({ exit, output }).toMatchObject({ exit: { code: 0, signal: null } });
  return JSON.parse(output.trim().split('\n').pop()!) as Record<string, unknown>;
}

interface WineServer {
  socketPath: string;
  /** Asks the fixture to shut down; resolves with the addon's counts afterwards. */
  stop(): Promise<{ listeners: number; connections: number; threads: number }>;
}

async function startServer(mode: 'echo' | 'grpc'): Promise<WineServer> {
  const control = mkdtempSync(join(tmpdir(), `wine-${mode}-`));
  const socketPath = join(control, 'azure.sock');
  const p = runNodeExe(wine, [fixture('wine-server'), mode, winPath(stage.addons.tcp), winPath(socketPath), winPath(control)], join(control, 'out.txt'));
  running.push(p);
  await eventually(() => existsSync(socketPath) || p.child.exitCode !== null, Boolean, 60_000);
  if (!existsSync(socketPath)) throw new Error(`the ${mode} server did not start:\n${p.output()}`);
  return {
    socketPath,
    async stop() {
      writeFileSync(join(control, 'stop'), '');
      const exit = await p.exited;
      expect({ exit, output: p.output() }).toMatchObject({ exit: { code: 0 } });
      return (JSON.parse(readFileSync(join(control, 'result.json'), 'utf8')) as { stats: { listeners: number; connections: number; threads: number } }).stats;
    },
  };
}

describe('the product (AF_UNIX) build under Wine', () => {
  it('loads in node.exe and fails to listen with WSAEAFNOSUPPORT and a clear message, not a crash', async () => {
    const socketFile = driveC(wine, 'provider', 'azure.sock');
    rmSync(socketFile, { force: true });
    const result = await probe(stage.addons.unix, 'C:\\provider\\azure.sock');
    expect(result).toMatchObject({
      platform: 'win32',
      family: 'unix',
      ok: false,
      code: 'WSAEAFNOSUPPORT',
      errno: 10047,
      syscall: 'socket',
      message: expect.stringContaining('no AF_UNIX sockets'),
    });
    // It failed at socket(), before touching the file system.
    expect(existsSync(socketFile)).toBe(false);
  });
});

describe('the loopback-TCP test build under Wine', () => {
  it('listens, publishes its address at the path, and removes it on close', async () => {
    expect(await probe(stage.addons.tcp, winPath(join(mkdtempSync(join(tmpdir(), 'wine-tcp-')), 'azure.sock')))).toMatchObject({
      platform: 'win32',
      family: 'tcp-loopback',
      ok: true,
    });
  });

  it('echoes, half-closes, carries 8 MiB each way and 50 concurrent connections, and shuts down clean', async () => {
    const server = await startServer('echo');
    const echo = async (payload: Buffer) => {
      const peer = await dial('tcp-loopback', server.socketPath);
      const received = readAll(peer);
      peer.end(payload);
      return received;
    };
    expect((await echo(Buffer.from('hello from Linux'))).toString()).toBe('hello from Linux');
    const big = patternBytes(8 * MiB, 5);
    expect(sha256(await echo(big))).toBe(sha256(big));
    const many = await Promise.all(Array.from({ length: 50 }, (_, i) => echo(patternBytes(5000 + i, i))));
    expect(many.every((received, i) => received.equals(patternBytes(5000 + i, i)))).toBe(true);
    expect(await server.stop()).toEqual({ listeners: 0, connections: 0, threads: 0 });
  });

  it('serves gRPC through injected connections: Version, Health, a 3 MiB Mount, 50 concurrent clients', async () => {
    const server = await startServer('grpc');
    const target = grpcTarget('tcp-loopback', server.socketPath);
    const client = createTestClient(target);
    try {
      expect(await client.version()).toMatchObject({ version: 'v1alpha1' });
      expect(await client.health()).toBe('SERVING');
      const mount = await client.mount({ size: String(3 * MiB) });
      expect(sha256(Buffer.from(mount.files[0]!.contents))).toBe(sha256(mountFileContents(3 * MiB)));
    } finally {
      client.close();
    }
    const clients = Array.from({ length: 50 }, () => createTestClient(target));
    try {
      const answers = await Promise.all(clients.map((c) => c.mount({ size: '4096' })));
      expect(answers.every((a) => a.files[0]!.contents.length === 4096)).toBe(true);
    } finally {
      for (const c of clients) c.close();
    }
    expect(await server.stop()).toEqual({ listeners: 0, connections: 0, threads: 0 });
  });
});

