/**
 * A minimal HTTPS forward proxy (HTTP CONNECT), the standard way a process reaches the outside world through
 * HTTPS_PROXY. The tests use it to send `<vault>.vault.azure.net:443` to the local Key Vault stand-in while the
 * product keeps real host names, real TLS name checks and no test switches.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';

export interface ProxyTarget {
  host: string;
  port: number;
}

export interface ConnectProxyOptions {
  /** Where to send a tunnel for host:port; undefined refuses it (403). */
  route: (host: string, port: number) => ProxyTarget | undefined;
}

export interface ConnectProxy {
  /** http://127.0.0.1:PORT, for HTTPS_PROXY. */
  url: string;
  port: number;
  /** host:port of every tunnel opened (refused ones are not listed), oldest first. */
  tunnels: string[];
  /** host:port of refused CONNECTs. */
  refused: string[];
  /** Tunnels currently open. */
  openTunnels(): number;
  close(): Promise<void>;
}

export async function startConnectProxy(options: ConnectProxyOptions): Promise<ConnectProxy> {
  const tunnels: string[] = [];
  const refused: string[] = [];
  const sockets = new Set<Socket>();
  let open = 0;

  const track = (s: Socket): void => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  };

  const server: Server = createServer((req, res) => {
    // A forward proxy for plain http is out of scope: the product must never send Key Vault traffic unencrypted.
    req.resume();
    res.writeHead(405, { 'Content-Type': 'text/plain', Allow: 'CONNECT', Connection: 'close' });
    res.end('only CONNECT is supported by this proxy\n');
  });

  server.on('connect', (req: IncomingMessage, client: Socket, head: Buffer) => {
    track(client);
    const authority = req.url ?? '';
    const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(authority);
    const target = m ? options.route(m[1]!.toLowerCase(), Number(m[2])) : undefined;
    if (!m || !target) {
      refused.push(authority);
      client.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
      return;
    }
    const upstream = connect(target.port, target.host);
    track(upstream);
    let established = false;
    upstream.once('connect', () => {
      established = true;
      tunnels.push(`${m[1]!.toLowerCase()}:${m[2]}`);
      open++;
      upstream.once('close', () => open--);
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length > 0) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    upstream.on('error', (err: NodeJS.ErrnoException) => {
      if (!client.writable) return;
      // Before the tunnel exists, answer as a proxy does; after, pass a reset on as a reset.
      if (!established) client.end('HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
      else if (err.code === 'ECONNRESET' && typeof client.resetAndDestroy === 'function') client.resetAndDestroy();
      else client.destroy();
    });
    upstream.on('end', () => client.end());
    client.on('error', () => upstream.destroy());
    client.on('end', () => upstream.end());
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    tunnels,
    refused,
    openTunnels: () => open,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
        for (const s of sockets) s.destroy();
      }),
  };
}
