/**
 * The addon's client side, which the provider's /healthz probe needs on Windows (grpc-js cannot dial AF_UNIX there):
 * connectOverAddon, and healthCheckOverAddon's gRPC Health/Check over HTTP/2 on the addon's socket. Native builds.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import {
  connectOverAddon,
  healthCheckOverAddon,
  listenOverAddon,
  loadAddon,
  serveOverAddon,
  type AfUnixAddon,
} from '../../src/server/windows-socket';
import { loadServices } from '../../src/server/protos';
import { buildAddon, removeAddonBuilds, type AddonTarget } from './support/addon-build';
import { patternBytes, settled, sha256 } from './support/peers';
import { createTestServer } from './support/test-services';

afterAll(removeAddonBuilds);

function shutdown(server: grpc.Server): Promise<void> {
  return new Promise((resolve) => server.tryShutdown(() => resolve()));
}

describe.each<[AddonTarget, AfUnixAddon['family']]>([
  ['native', 'unix'],
  ['native-tcptest', 'tcp-loopback'],
])('the client side of the addon built as %s', (target, family) => {
  let addonPath: string;
  let addon: AfUnixAddon;
  let dir: string;
  let path: string;

  beforeAll(() => {
    addonPath = buildAddon(target);
    addon = loadAddon(addonPath);
  });

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'af-unix-client-'));
    path = join(dir, 'azure.sock');
  });

  afterEach(async () => {
    await settled(addon, { listeners: 0, connections: 0, threads: 0 });
    rmSync(dir, { recursive: true, force: true });
  });

  it('connects to an addon listener and carries 4 MiB both ways', async () => {
    const listener = await listenOverAddon(path, (socket) => socket.pipe(socket), { addonPath });
    const socket = await connectOverAddon(path, { addonPath, timeoutMs: 5000 });
    const payload = patternBytes(4 * 1024 * 1024, 9);
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    const ended = new Promise((resolve) => socket.once('end', resolve));
    socket.end(payload);
    await ended;
    expect(sha256(Buffer.concat(chunks))).toBe(sha256(payload));
    await listener.close();
  });

  if (family === 'unix') {
    it('connects to a plain Node unix socket server too', async () => {
      const server: Server = createServer((peer: Socket) => peer.end('hello from net'));
      await new Promise<void>((resolve) => server.listen(path, resolve));
      const socket = await connectOverAddon(path, { addonPath });
      const chunks: Buffer[] = [];
      socket.on('data', (chunk: Buffer) => chunks.push(chunk));
      await new Promise((resolve) => socket.once('close', resolve));
      expect(Buffer.concat(chunks).toString()).toBe('hello from net');
      await new Promise((resolve) => server.close(resolve));
    });
  }

  it('fails at once, with a Node-style error, when nothing is there', async () => {
    await expect(connectOverAddon(path, { addonPath })).rejects.toMatchObject({
      code: family === 'unix' ? 'ENOENT' : 'EIO',
      syscall: family === 'unix' ? 'connect' : 'fopen',
    });
  });

  it('checks health over a fresh connection: SERVING, then UNAVAILABLE once the listener is gone', async () => {
    const server = createTestServer();
    const serving = await serveOverAddon(server, path, { addonPath });
    expect(await healthCheckOverAddon(path, 5000, { addonPath })).toBe('SERVING');
    await serving.close();
    await expect(healthCheckOverAddon(path, 5000, { addonPath })).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
    await shutdown(server);
  });

  it('reports NOT_SERVING as the status, and a server error as its gRPC code', async () => {
    const services = loadServices();
    let answer: 'not-serving' | 'error' = 'not-serving';
    const server = new grpc.Server();
    server.addService(services.health, {
      Check: (_call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
        if (answer === 'error') callback({ code: grpc.status.PERMISSION_DENIED, details: 'no' });
        else callback(null, { status: 'NOT_SERVING' });
      },
    });
    const serving = await serveOverAddon(server, path, { addonPath });
    expect(await healthCheckOverAddon(path, 5000, { addonPath })).toBe('NOT_SERVING');
    answer = 'error';
    await expect(healthCheckOverAddon(path, 5000, { addonPath })).rejects.toMatchObject({
      code: grpc.status.PERMISSION_DENIED,
      message: expect.stringContaining('no'),
    });
    await serving.close();
    await shutdown(server);
  });

  it('decodes the response with the proto: a status the proto does not name stays visible as a number', async () => {
    const services = loadServices();
    let status: number | undefined = 7;
    const server = new grpc.Server();
    server.addService(services.health, {
      Check: (_call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
        callback(null, status === undefined ? {} : { status });
      },
    });
    const serving = await serveOverAddon(server, path, { addonPath });
    expect(await healthCheckOverAddon(path, 5000, { addonPath })).toBe('UNKNOWN(7)');
    status = undefined; // proto3 sends nothing for the default: UNKNOWN
    expect(await healthCheckOverAddon(path, 5000, { addonPath })).toBe('UNKNOWN');
    await serving.close();
    await shutdown(server);
  });

  it('gives up with DEADLINE_EXCEEDED when the other end accepts but never answers', async () => {
    const silent = await listenOverAddon(path, (socket) => socket.on('data', () => undefined), { addonPath });
    const started = Date.now();
    await expect(healthCheckOverAddon(path, 500, { addonPath })).rejects.toMatchObject({ code: grpc.status.DEADLINE_EXCEEDED });
    expect(Date.now() - started).toBeLessThan(3000);
    await silent.close();
  });
});
