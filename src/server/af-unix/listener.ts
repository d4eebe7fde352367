/**
 * Listening, serving gRPC and dialling over the addon: where Node cannot listen on AF_UNIX (Windows: libuv turns
 * "unix socket" paths into named pipes, but the Secrets Store CSI driver dials a real AF_UNIX socket), the addon
 * accepts in native threads and every connection is injected into grpc-js, so the service code is the same everywhere.
 */
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { ConnectionTracker } from '../connection-tracker';
import { withAcceptedAuthority } from '../h2-authority';
import { type AfUnixAddon, asError, loadAddon, type NativeConnection, type NativeListener } from './addon';
import { AddonSocket } from './socket';

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
