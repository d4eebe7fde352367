/**
 * Serving the driver over AF_UNIX where Node cannot listen on it: Windows. libuv turns "unix socket" paths into named
 * pipes there, but the Secrets Store CSI driver dials a real AF_UNIX socket. The af_unix_listener addon
 * (native/af_unix_listener.c) listens and accepts in native threads; each accepted connection becomes an AddonSocket
 * (a stream.Duplex) that grpc-js serves through a connection injector, so the service code is the same on every
 * platform. On Linux the provider keeps grpc-js's own bindAsync('unix://…'); the addon is loaded only when asked for.
 */
import { mkdir } from 'node:fs/promises';
import { connect as http2Connect, constants as http2Constants } from 'node:http2';
import { dirname, join } from 'node:path';
import { Duplex } from 'node:stream';
import { types } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { ConnectionTracker } from './connection-tracker';
import { withAcceptedAuthority } from './h2-authority';

declare const nativeHandle: unique symbol;
/** Opaque objects owned by the addon; it checks their type tags, so they cannot be forged or mixed up. */
export interface NativeListener {
  readonly [nativeHandle]: 'listener';
}
export interface NativeConnection {
  readonly [nativeHandle]: 'connection';
}

export type ConnectionEvent = 'data' | 'end' | 'error' | 'written' | 'close';
export type ListenerEvent = 'connection' | 'error' | 'close';
type ConnectionEventHandler = (kind: ConnectionEvent, arg: unknown) => void;
type ListenerEventHandler = (kind: ListenerEvent, arg: unknown) => ConnectionEventHandler | undefined;

export interface AddonStats {
  listeners: number;
  /** Accepted sockets not yet closed. */
  connections: number;
  /** Accept and I/O threads still running. */
  threads: number;
}

/** What native/af_unix_listener.c exports. */
export interface AfUnixAddon {
  /** 'unix' for the product; 'tcp-loopback' for the test build that runs under Wine (which has no AF_UNIX). */
  readonly family: 'unix' | 'tcp-loopback';
  /** Replaces a stale socket file, binds, listens, starts accepting. Throws an Error with code/errno/syscall. */
  listen(path: string, onEvent: ListenerEventHandler): NativeListener;
  /** Stops accepting (or cancels a connect in progress); 'close' follows. Accepted connections stay open. */
  closeListener(listener: NativeListener): void;
  /**
   * Dials the socket at `path`: one 'connection' (or none), then 'close' with the failure if there was one. Throws
   * at once when the connect fails at once (e.g. ENOENT, ECONNREFUSED).
   */
  connect(path: string, onEvent: ListenerEventHandler): NativeListener;
  /** Asks for one more chunk: the addon reads nothing until asked (that is the backpressure). */
  read(connection: NativeConnection): void;
  /** Hands the Buffer to the writer thread ('written' follows); false if the connection is already closed. */
  write(connection: NativeConnection, data: Buffer): boolean;
  /** Shuts down the sending side. */
  end(connection: NativeConnection): Error | undefined;
  /** Closes the connection; 'close' is its last event. */
  destroy(connection: NativeConnection): void;
  /** Process-wide counts, for tests that prove nothing leaks. */
  stats(): AddonStats;
}

const ADDON_FILE = 'af_unix_listener.node';
const ADDON_FUNCTIONS = ['listen', 'closeListener', 'connect', 'read', 'write', 'end', 'destroy', 'stats'] as const;

/** The package root, from src/server (ts-jest) or dist/src/server (compiled, and in the image). */
function packageRoot(): string {
  return __dirname.includes(join('dist', 'src')) ? join(__dirname, '..', '..', '..') : join(__dirname, '..', '..');
}

/** Where native/build.sh puts the addon for this platform, and where the Windows image ships it. */
export function defaultAddonPath(platform: string = process.platform, arch: string = process.arch): string {
  return join(packageRoot(), 'native', 'build', `${platform}-${arch}`, ADDON_FILE);
}

const loaded = new Map<string, AfUnixAddon>();

/** Loads the addon once per path; nothing native is touched until the first call. */
export function loadAddon(path: string = defaultAddonPath()): AfUnixAddon {
  const cached = loaded.get(path);
  if (cached) return cached;
  let exports: unknown;
  try {
    exports = require(path) as unknown;
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new Error(
      `cannot load the AF_UNIX socket addon ${path}: ${reason}. It is built by native/build.sh (target win32-x64 for ` +
        'Windows) and shipped in the Windows image.',
    );
  }
  const addon = asAddon(exports, path);
  loaded.set(path, addon);
  return addon;
}

function asAddon(exports: unknown, path: string): AfUnixAddon {
  if (typeof exports !== 'object' || exports === null) throw new Error(`${path} is not the af_unix_listener addon`);
  const record = exports as Record<string, unknown>;
  const family = record['family'];
  if (ADDON_FUNCTIONS.some((name) => typeof record[name] !== 'function') || (family !== 'unix' && family !== 'tcp-loopback')) {
    throw new Error(`${path} is not the af_unix_listener addon`);
  }
  return exports as AfUnixAddon;
}

type Callback = (error?: Error | null) => void;

/** The addon's errors come from the main realm: isNativeError, unlike instanceof, also holds inside a vm (jest). */
function asError(value: unknown): Error {
  return types.isNativeError(value) ? value : new Error(String(value));
}

function closedError(): Error {
  return Object.assign(new Error('the connection is closed'), { code: 'ERR_STREAM_DESTROYED' });
}

/**
 * One accepted connection as a Duplex. Reads: `_read` asks the addon for one chunk, which arrives as 'data' and is
 * pushed; Readable calls `_read` again only while push() keeps returning true, so a slow consumer stops the reading
 * thread and the peer feels TCP-style backpressure. Writes: one at a time (Writable guarantees it); the addon's writer
 * thread sends the Buffer and reports 'written', which completes the write callback.
 */
export class AddonSocket extends Duplex {
  private pendingWrite: Callback | undefined;

  constructor(
    private readonly addon: AfUnixAddon,
    private readonly connection: NativeConnection,
    allowHalfOpen = false,
  ) {
    // As net.Socket: without allowHalfOpen, the peer's end ends our side too; the stream is destroyed once both
    // sides have ended. (gRPC does not care: its HTTP/2 session destroys the socket when the peer goes.)
    super({ allowHalfOpen });
    // Like net.Socket: start reading at once (up to the high-water mark), so the peer's end is noticed even by a
    // consumer that never reads.
    this.read(0);
  }

  /** Receives the addon's events for this connection, on the main thread. */
  readonly onNativeEvent: ConnectionEventHandler = (kind, arg) => {
    switch (kind) {
      case 'data':
        if (Buffer.isBuffer(arg)) this.push(arg);
        return;
      case 'end':
        this.push(null);
        // Emits 'end' now if nothing is buffered, as net.Socket does, even when nobody is reading.
        this.read(0);
        return;
      case 'error':
        this.destroy(asError(arg));
        return;
      case 'written': {
        const callback = this.pendingWrite;
        this.pendingWrite = undefined;
        callback?.(arg === undefined ? null : asError(arg));
        return;
      }
      case 'close':
        // The socket is closed natively (after our destroy, or because its threads could not run).
        if (!this.destroyed) this.destroy();
        return;
    }
  };

  override _read(): void {
    this.addon.read(this.connection);
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: Callback): void {
    this.send(chunk, callback);
  }

  override _writev(chunks: Array<{ chunk: Buffer; encoding: BufferEncoding }>, callback: Callback): void {
    // gRPC writes many small frames at once: one send for all of them.
    this.send(chunks.length === 1 ? chunks[0]!.chunk : Buffer.concat(chunks.map((c) => c.chunk)), callback);
  }

  override _final(callback: Callback): void {
    callback(this.addon.end(this.connection) ?? null);
  }

  override _destroy(error: Error | null, callback: Callback): void {
    this.addon.destroy(this.connection);
    callback(error);
  }

  private send(data: Buffer, callback: Callback): void {
    if (data.length === 0) {
      callback(null);
      return;
    }
    this.pendingWrite = callback;
    if (!this.addon.write(this.connection, data)) {
      this.pendingWrite = undefined;
      callback(closedError());
    }
  }
}

export interface AddonListenOptions {
  /** The addon to load; default: defaultAddonPath(). Tests pass the Linux or the loopback-TCP build. */
  addonPath?: string;
  /** Keep our sending side open after the peer ended its side (as net.createServer's option); default false. */
  allowHalfOpen?: boolean;
  /**
   * Accept errors: `fatal` false when the listener goes on (e.g. out of file handles for a moment), true when it had
   * to stop accepting (the provider should then exit so that Kubernetes restarts it).
   */
  onError?: (error: Error, fatal: boolean) => void;
}

export interface AddonListener {
  readonly path: string;
  readonly family: AfUnixAddon['family'];
  /** Stops accepting and removes the socket file; accepted connections stay open (the gRPC server drains them). */
  close(): Promise<void>;
}

/** Listens on `path` through the addon and hands each accepted connection to `onConnection` as a Duplex. */
export async function listenOverAddon(
  path: string,
  onConnection: (socket: AddonSocket) => void,
  options: AddonListenOptions = {},
): Promise<AddonListener> {
  const addon = loadAddon(options.addonPath);
  await mkdir(dirname(path), { recursive: true });

  let closeRequested = false;
  let markClosed!: () => void;
  const closed = new Promise<void>((resolve) => (markClosed = resolve));

  const native = addon.listen(path, (kind, arg) => {
    switch (kind) {
      case 'connection': {
        const socket = new AddonSocket(addon, arg as NativeConnection, options.allowHalfOpen ?? false);
        try {
          onConnection(socket);
        } catch (err) {
          socket.destroy(asError(err));
        }
        return socket.onNativeEvent;
      }
      case 'error':
        options.onError?.(asError(arg), false);
        return undefined;
      case 'close':
        if (arg !== undefined && !closeRequested) options.onError?.(asError(arg), true);
        markClosed();
        return undefined;
    }
  });

  return {
    path,
    family: addon.family,
    close() {
      if (!closeRequested) {
        closeRequested = true;
        addon.closeListener(native);
      }
      return closed;
    },
  };
}

export interface AddonServer {
  /** Human-readable address, e.g. unix://C:\provider\azure.sock. */
  readonly address: string;
  /** Stops accepting and removes the socket file. Call it before server.tryShutdown()/forceShutdown(). */
  close(): Promise<void>;
  /** Resolves once every accepted connection has closed (see ConnectionTracker). */
  connectionsClosed(): Promise<void>;
}

/**
 * Serves `server` on the AF_UNIX socket at `socketPath` through the addon: every accepted connection is injected into
 * the server as if grpc-js had accepted it (insecure credentials, as the driver dials). The server needs no bindAsync.
 */
export async function serveOverAddon(
  server: grpc.Server,
  socketPath: string,
  options: AddonListenOptions & { onRewrite?: (authority: string) => void } = {},
): Promise<AddonServer> {
  const injector = server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
  const connections = new ConnectionTracker();
  // Drivers before v1.6 send the socket path as the HTTP/2 authority on Windows too (see h2-authority.ts).
  const listener = await listenOverAddon(
    socketPath,
    (socket) => {
      connections.add(socket);
      injector.injectConnection(withAcceptedAuthority(socket, options.onRewrite));
    },
    options,
  );
  return {
    address: `unix://${socketPath}`,
    close: () => listener.close(),
    connectionsClosed: () => connections.allClosed(),
  };
}

export interface AddonConnectOptions {
  /** The addon to load; default: defaultAddonPath(). */
  addonPath?: string;
  /** Give up (and cancel the connect) after this long; default: no limit. */
  timeoutMs?: number;
}

/** Dials the socket at `path` through the addon: the client side, for the provider's own health probe on Windows. */
export function connectOverAddon(path: string, options: AddonConnectOptions = {}): Promise<AddonSocket> {
  const addon = loadAddon(options.addonPath);
  return new Promise((resolve, reject) => {
    let done = false;
    let timer: NodeJS.Timeout | undefined;
    const settle = (error: Error | undefined, socket?: AddonSocket): void => {
      if (done) {
        socket?.destroy(); // a connection that completed after the timeout
        return;
      }
      done = true;
      clearTimeout(timer);
      if (socket) resolve(socket);
      else reject(error ?? new Error(`connect ${path}: closed without a connection`));
    };
    let dialler: NativeListener;
    try {
      dialler = addon.connect(path, (kind, arg) => {
        if (kind === 'connection') {
          const socket = new AddonSocket(addon, arg as NativeConnection);
          settle(undefined, socket);
          return socket.onNativeEvent;
        }
        if (kind === 'close') settle(arg === undefined ? undefined : asError(arg));
        return undefined;
      });
    } catch (err) {
      reject(asError(err));
      return;
    }
    if (options.timeoutMs !== undefined) {
      timer = setTimeout(() => {
        addon.closeListener(dialler);
        settle(Object.assign(new Error(`connect ${path}: no connection within ${options.timeoutMs}ms`), { code: 'ETIMEDOUT' }));
      }, options.timeoutMs);
    }
  });
}

/** An empty HealthCheckRequest (service "" = the server as a whole) in gRPC's length-prefixed framing. */
const EMPTY_HEALTH_CHECK_REQUEST = Buffer.alloc(5);
const HEALTH_STATUS_NAMES = ['UNKNOWN', 'SERVING', 'NOT_SERVING', 'SERVICE_UNKNOWN'];

function grpcError(code: grpc.status, message: string): Error & { code: grpc.status } {
  return Object.assign(new Error(message), { code });
}

/** HealthCheckResponse { status = 1 (enum) } out of one gRPC message frame. */
function decodeHealthStatus(frame: Buffer): string {
  if (frame.length < 5 || frame[0] !== 0 || frame.readUInt32BE(1) !== frame.length - 5) {
    throw grpcError(grpc.status.INTERNAL, 'health check: malformed response frame');
  }
  let status = 0; // proto3: an absent field is its default, UNKNOWN
  for (let i = 5; i < frame.length; ) {
    const tag = frame[i++]!;
    if (tag !== 0x08) throw grpcError(grpc.status.INTERNAL, 'health check: unexpected field in the response');
    let value = 0;
    for (let shift = 0; ; shift += 7) {
      if (i >= frame.length || shift > 28) throw grpcError(grpc.status.INTERNAL, 'health check: truncated response');
      const byte = frame[i++]!;
      value |= (byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) break;
    }
    status = value;
  }
  return HEALTH_STATUS_NAMES[status] ?? `UNKNOWN(${status})`;
}

/**
 * One grpc.health.v1.Health/Check over a fresh connection through the addon, within `timeoutMs`: grpc-js clients
 * cannot dial AF_UNIX on Windows (the same libuv limitation), so this speaks gRPC over Node's HTTP/2 on the addon's
 * socket. Resolves with the status name ('SERVING', 'NOT_SERVING', …); rejects with an Error whose `code` is a gRPC
 * status as a grpc-js client would give: UNAVAILABLE (no connection), DEADLINE_EXCEEDED, or the server's code.
 */
export async function healthCheckOverAddon(path: string, timeoutMs: number, options: { addonPath?: string } = {}): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let socket: AddonSocket;
  try {
    socket = await connectOverAddon(path, { ...options, timeoutMs });
  } catch (err) {
    const timedOut = (err as { code?: unknown }).code === 'ETIMEDOUT';
    throw grpcError(timedOut ? grpc.status.DEADLINE_EXCEEDED : grpc.status.UNAVAILABLE, asError(err).message);
  }
  const session = http2Connect('http://localhost', { createConnection: () => socket });
  try {
    return await new Promise<string>((resolve, reject) => {
      const remaining = Math.max(0, deadline - Date.now());
      const timer = setTimeout(() => reject(grpcError(grpc.status.DEADLINE_EXCEEDED, 'health check: no answer in time')), remaining);
      const fail = (error: Error) => {
        clearTimeout(timer);
        reject(grpcError(grpc.status.UNAVAILABLE, error.message));
      };
      session.once('error', fail);
      const request = session.request({
        [http2Constants.HTTP2_HEADER_METHOD]: 'POST',
        [http2Constants.HTTP2_HEADER_PATH]: '/grpc.health.v1.Health/Check',
        'content-type': 'application/grpc',
        te: 'trailers',
        'grpc-timeout': `${remaining}m`,
      });
      const chunks: Buffer[] = [];
      let grpcStatus: string | undefined;
      let grpcMessage = '';
      const noteStatus = (headers: Record<string, unknown>) => {
        if (headers['grpc-status'] !== undefined) grpcStatus = String(headers['grpc-status']);
        if (headers['grpc-message'] !== undefined) grpcMessage = decodeURIComponent(String(headers['grpc-message']));
      };
      request.on('response', noteStatus); // a trailers-only answer carries the status in the headers
      request.on('trailers', noteStatus);
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.once('error', fail);
      request.once('end', () => {
        clearTimeout(timer);
        if (grpcStatus !== '0') {
          const code = Number(grpcStatus ?? grpc.status.UNKNOWN) as grpc.status;
          reject(grpcError(code, `health check failed: ${grpcMessage || `grpc-status ${grpcStatus ?? 'missing'}`}`));
          return;
        }
        try {
          resolve(decodeHealthStatus(Buffer.concat(chunks)));
        } catch (err) {
          reject(asError(err));
        }
      });
      request.end(EMPTY_HEALTH_CHECK_REQUEST);
    });
  } finally {
    session.destroy();
    socket.destroy();
  }
}
