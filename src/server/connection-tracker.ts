import type { Duplex } from 'node:stream';

/**
 * The connections a listener accepted that are still open. grpc-js's tryShutdown counts a session the client has
 * already closed (the GOAWAY a driver sends when it closes its channel) as done while its last mount still runs;
 * grpc-js's own listener hid that by waiting for its connections to end, and the listeners that inject connections
 * (ours on Linux, the addon's on Windows) do the same through this: a connection closes once its last response is out.
 */
export class ConnectionTracker {
  private readonly open = new Set<Duplex>();
  private readonly waiters: Array<() => void> = [];

  add(connection: Duplex): void {
    this.open.add(connection);
    connection.once('close', () => {
      this.open.delete(connection);
      if (this.open.size === 0) for (const wake of this.waiters.splice(0)) wake();
    });
  }

  /** Resolves once every tracked connection has closed (callers bound the wait). */
  allClosed(): Promise<void> {
    return new Promise<void>((resolve) => (this.open.size === 0 ? resolve() : this.waiters.push(resolve)));
  }
}
