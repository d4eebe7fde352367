/**
 * The af_unix_listener addon and its Duplex, built natively (the same C source as the Windows build): real AF_UNIX
 * sockets, and the loopback-TCP test build that Wine runs. Raw byte streams here; gRPC in grpc-over-addon.test.ts.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type Socket } from 'node:net';
import {
  listenOverAddon,
  loadAddon,
  type AddonListener,
  type AddonSocket,
  type AfUnixAddon,
} from '../../src/server/windows-socket';
import { buildAddon, removeAddonBuilds, type AddonTarget } from './support/addon-build';
import { dial, eventually, patternBytes, readAll, settled, sha256, tcpAddress } from './support/peers';

afterAll(removeAddonBuilds);

const MiB = 1024 * 1024;

/** Echoes what it reads, and ends once the peer has ended (pipe does both, with backpressure). */
function echo(socket: AddonSocket): void {
  socket.pipe(socket);
  socket.on('error', () => undefined);
}

describe.each<[AddonTarget, AfUnixAddon['family']]>([
  ['native', 'unix'],
  ['native-tcptest', 'tcp-loopback'],
])('the addon built as %s', (target, family) => {
  let addonPath: string;
  let addon: AfUnixAddon;
  let dir: string;
  let path: string;
  let listener: AddonListener | undefined;
  const peers: Socket[] = [];

  beforeAll(() => {
    addonPath = buildAddon(target);
    addon = loadAddon(addonPath);
  });

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'af-unix-'));
    path = join(dir, 'azure.sock');
  });

  afterEach(async () => {
    for (const peer of peers.splice(0)) peer.destroy();
    await listener?.close();
    listener = undefined;
    // Every socket closed and every thread gone: nothing leaks from one test into the next.
    await settled(addon, { listeners: 0, connections: 0, threads: 0 });
    rmSync(dir, { recursive: true, force: true });
  });

  async function connectPeer(): Promise<Socket> {
    const peer = await dial(family, path);
    peers.push(peer);
    return peer;
  }

  it('reports its address family', () => {
    expect(addon.family).toBe(family);
  });

  it('echoes bytes and ends after the peer half-closes', async () => {
    listener = await listenOverAddon(path, echo, { addonPath });
    const peer = await connectPeer();
    const received = readAll(peer);
    peer.write('hello ');
    peer.end('world');
    expect((await received).toString()).toBe('hello world');
  });

  it('keeps sending after the peer shut down its side (half-close)', async () => {
    let server: AddonSocket | undefined;
    let markEnded!: () => void;
    const ended = new Promise<void>((resolve) => (markEnded = resolve));
    listener = await listenOverAddon(
      path,
      (socket) => {
        server = socket;
        socket.resume();
        socket.on('end', markEnded);
      },
      { addonPath, allowHalfOpen: true },
    );
    const peer = await connectPeer();
    const received = readAll(peer);
    peer.end('request');
    await ended;
    // Our side is still open for writing after the peer's end.
    server!.write('response after your end');
    server!.end();
    expect((await received).toString()).toBe('response after your end');
  });

  it('sends a 3 MiB response through the Duplex in one write', async () => {
    const payload = patternBytes(3 * MiB, 1);
    listener = await listenOverAddon(path, (socket) => socket.end(payload), { addonPath });
    const peer = await connectPeer();
    const received = await readAll(peer);
    expect(received.length).toBe(payload.length);
    expect(sha256(received)).toBe(sha256(payload));
  });

  it('echoes 16 MiB in both directions at once without losing or reordering a byte', async () => {
    const payload = patternBytes(16 * MiB, 2);
    listener = await listenOverAddon(path, echo, { addonPath });
    const peer = await connectPeer();
    const received = readAll(peer);
    peer.end(payload);
    const echoed = await received;
    expect(echoed.length).toBe(payload.length);
    expect(sha256(echoed)).toBe(sha256(payload));
  });

  it('stops reading while the consumer does not keep up (backpressure), then delivers everything', async () => {
    const payload = patternBytes(16 * MiB, 3);
    let server: AddonSocket | undefined;
    listener = await listenOverAddon(path, (socket) => (server = socket), { addonPath });
    const peer = await connectPeer();
    const written = new Promise<void>((resolve) => peer.end(payload, resolve));
    await eventually(() => server, (s) => s !== undefined);

    // Nobody reads on our side: beyond one chunk over the high-water mark the addon must not read either, so the
    // peer's data stays queued at the peer.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(server!.readableLength).toBeLessThanOrEqual(server!.readableHighWaterMark + 64 * 1024);
    expect(peer.writableLength).toBeGreaterThan(8 * MiB);

    // A slow consumer: our buffer never grows much beyond the high-water mark plus the one chunk in flight.
    const chunks: Buffer[] = [];
    let maxBuffered = 0;
    for await (const chunk of server!) {
      chunks.push(chunk as Buffer);
      maxBuffered = Math.max(maxBuffered, server!.readableLength);
      if (chunks.length % 64 === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await written;
    const received = Buffer.concat(chunks);
    expect(sha256(received)).toBe(sha256(payload));
    expect(maxBuffered).toBeLessThanOrEqual(server!.readableHighWaterMark + 64 * 1024);
    server!.end();
  });

  it('serves 100 concurrent connections', async () => {
    listener = await listenOverAddon(path, echo, { addonPath });
    const results = await Promise.all(
      Array.from({ length: 100 }, async (_, i) => {
        const peer = await connectPeer();
        const received = readAll(peer);
        const message = patternBytes(10_000 + i, i);
        peer.end(message);
        return (await received).equals(message);
      }),
    );
    expect(results.every(Boolean)).toBe(true);
  });

  it('holds 100 connections open at once, each with its two threads', async () => {
    listener = await listenOverAddon(path, (socket) => socket.resume(), { addonPath });
    await Promise.all(Array.from({ length: 100 }, () => connectPeer()));
    await settled(addon, { listeners: 1, connections: 100, threads: 1 + 200 });
  });

  it('closes our side when the peer goes away abruptly', async () => {
    let markClosed!: () => void;
    const closed = new Promise<void>((resolve) => (markClosed = resolve));
    listener = await listenOverAddon(
      path,
      (socket) => {
        socket.on('error', () => undefined);
        socket.on('close', markClosed);
        echo(socket);
      },
      { addonPath },
    );
    const peer = await connectPeer();
    peer.write(patternBytes(MiB, 4));
    peer.destroy();
    await closed;
    await settled(addon, { connections: 0, threads: 1 });
  });

  it('lets the peer see the end when we destroy the connection', async () => {
    listener = await listenOverAddon(path, (socket) => socket.destroy(), { addonPath });
    const peer = await connectPeer();
    const outcome = await new Promise<string>((resolve) => {
      peer.on('data', () => undefined);
      peer.once('end', () => resolve('end'));
      peer.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
    });
    expect(['end', 'ECONNRESET']).toContain(outcome);
  });

  it('fails a write on a destroyed connection instead of hanging', async () => {
    let server: AddonSocket | undefined;
    listener = await listenOverAddon(path, (socket) => (server = socket), { addonPath });
    await connectPeer();
    await eventually(() => server, (s) => s !== undefined);
    server!.on('error', () => undefined);
    server!.destroy();
    const error = await new Promise<Error | null | undefined>((resolve) => server!.write('late', resolve));
    expect(error).toMatchObject({ code: 'ERR_STREAM_DESTROYED' });
  });

  it('stops accepting on close, removes its file, and keeps accepted connections working', async () => {
    let accepted = 0;
    listener = await listenOverAddon(
      path,
      (socket) => {
        accepted++;
        echo(socket);
      },
      { addonPath },
    );
    const peer = await connectPeer();
    const address = family === 'tcp-loopback' ? tcpAddress(path) : undefined;
    // A connection still in the kernel's backlog is reset by the close (as with net.Server): wait until it is ours.
    await eventually(() => accepted, (n) => n === 1);
    await listener.close();
    listener = undefined;
    expect(existsSync(path)).toBe(false);

    const received = readAll(peer);
    peer.end('still here');
    expect((await received).toString()).toBe('still here');

    const refused = new Promise<string>((resolve) => {
      const attempt = family === 'unix' ? connect(path) : connect(address!.port, address!.host);
      attempt.once('connect', () => {
        attempt.destroy();
        resolve('connected');
      });
      attempt.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
    });
    expect(['ENOENT', 'ECONNREFUSED']).toContain(await refused);
  });

  it('removes the socket file when closed before any connection', async () => {
    listener = await listenOverAddon(path, echo, { addonPath });
    expect(existsSync(path)).toBe(true);
    await listener.close();
    listener = undefined;
    expect(existsSync(path)).toBe(false);
  });

  it('creates the socket directory when it is missing', async () => {
    path = join(dir, 'nested', 'providers', 'azure.sock');
    listener = await listenOverAddon(path, echo, { addonPath });
    const peer = await connectPeer();
    const received = readAll(peer);
    peer.end('x');
    expect((await received).toString()).toBe('x');
  });

  it('rejects a path it cannot bind with a Node-style error', async () => {
    const missingParent = join(dir, 'file-not-dir');
    writeFileSync(missingParent, 'x');
    await expect(listenOverAddon(join(missingParent, 'azure.sock'), echo, { addonPath })).rejects.toMatchObject({
      code: expect.stringMatching(/^E/),
    });
  });
});

describe('the AF_UNIX build specifically', () => {
  let addonPath: string;
  let addon: AfUnixAddon;
  let dir: string;
  let path: string;
  let listener: AddonListener | undefined;

  beforeAll(() => {
    addonPath = buildAddon('native');
    addon = loadAddon(addonPath);
  });

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'af-unix-'));
    path = join(dir, 'azure.sock');
  });

  afterEach(async () => {
    await listener?.close();
    listener = undefined;
    await settled(addon, { listeners: 0, connections: 0, threads: 0 });
    rmSync(dir, { recursive: true, force: true });
  });

  it('replaces a stale socket file left by a killed process', async () => {
    const killed = spawnSync(process.execPath, [
      '-e',
      `require('node:net').createServer().listen(${JSON.stringify(path)}, () => process.kill(process.pid, 'SIGKILL'))`,
    ]);
    expect(killed.signal).toBe('SIGKILL');
    expect(lstatSync(path).isSocket()).toBe(true);

    listener = await listenOverAddon(path, echo, { addonPath });
    const peer = await dial('unix', path);
    const received = readAll(peer);
    peer.end('fresh');
    expect((await received).toString()).toBe('fresh');
  });

  it('refuses to replace a file that is not a socket, and leaves it alone', async () => {
    writeFileSync(path, 'precious');
    await expect(listenOverAddon(path, echo, { addonPath })).rejects.toMatchObject({
      code: 'EEXIST',
      message: expect.stringContaining('is not a socket'),
    });
    expect(readFileSync(path, 'utf8')).toBe('precious');
  });

  it('creates the socket with mode 0600', async () => {
    listener = await listenOverAddon(path, echo, { addonPath });
    expect(statSync(path).mode & 0o777).toBe(0o600);
  });

  it('rejects a path longer than sun_path', async () => {
    await expect(listenOverAddon(join(dir, 'x'.repeat(120)), echo, { addonPath })).rejects.toMatchObject({
      code: 'ENAMETOOLONG',
    });
  });

  it('rejects a forged handle instead of crashing', () => {
    expect(() => addon.read({} as never)).toThrow('expected a connection');
    expect(() => addon.closeListener({} as never)).toThrow('expected a listener');
  });
});

describe('the loopback-TCP test build specifically', () => {
  it('publishes 127.0.0.1:<port> at the path and replaces a stale port file', async () => {
    const addonPath = buildAddon('native-tcptest');
    const dir = mkdtempSync(join(tmpdir(), 'af-unix-'));
    const path = join(dir, 'azure.sock');
    writeFileSync(path, '127.0.0.1:1\n');
    const listener = await listenOverAddon(path, echo, { addonPath });
    const { host, port } = tcpAddress(path);
    expect(host).toBe('127.0.0.1');
    expect(port).toBeGreaterThan(1);
    await listener.close();
    expect(existsSync(path)).toBe(false);
    rmSync(dir, { recursive: true, force: true });
  });
});
