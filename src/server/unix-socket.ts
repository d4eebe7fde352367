/**
 * The Linux unix socket, served by our own listener rather than grpc-js's bind: each accepted connection passes
 * through withAcceptedAuthority (drivers before v1.6 send the socket path as the HTTP/2 authority, which Node refuses)
 * and is then injected into the gRPC server.
 */
import { chmod, lstat, mkdir, unlink } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { dirname } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { ConnectionTracker } from './connection-tracker';
import { withAcceptedAuthority } from './h2-authority';

export interface UnixListener {
  address: string;
  /** Stops accepting at once; connections already accepted are the gRPC server's to drain or cancel. */
  close(): Promise<void>;
  /** Resolves once every accepted connection has closed (see ConnectionTracker). */
  connectionsClosed(): Promise<void>;
}

export async function listenOnUnixSocket(
  server: grpc.Server,
  path: string,
  onRewrite: (authority: string) => void,
): Promise<UnixListener> {
  const injector = server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
  const connections = new ConnectionTracker();
  const listener: Server = createServer((socket) => {
    connections.add(socket);
    injector.injectConnection(withAcceptedAuthority(socket, onRewrite));
  });
  await mkdir(dirname(path), { recursive: true });
  await removeStaleSocket(path);
  // The socket is created with mode 0600: only the driver (root) may speak to us. Setting the umask around listen
  // closes the window between creating the socket and chmod-ing it.
  const previousUmask = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) => {
      listener.once('error', reject);
      listener.listen(path, () => {
        listener.off('error', reject);
        resolve();
      });
    });
  } finally {
    process.umask(previousUmask);
  }
  await chmod(path, 0o600);
  return {
    address: `unix://${path}`,
    // net.Server.close() calls back only once every accepted connection has ended; that is the drain's business.
    close: async () => void listener.close(),
    connectionsClosed: () => connections.allClosed(),
  };
}

async function removeStaleSocket(path: string): Promise<void> {
  const stat = await lstat(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  if (!stat) return;
  if (!stat.isSocket()) {
    throw new Error(`${path} exists and is not a socket: refusing to replace it; remove it or choose another --endpoint`);
  }
  await unlink(path);
}
