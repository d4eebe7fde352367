/**
 * The other end of the addon's sockets in tests: raw stream clients and gRPC targets for both builds. The AF_UNIX build
 * listens at the path; the loopback-TCP test build writes "127.0.0.1:<port>" into the file at the path instead.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import type { AddonStats, AfUnixAddon } from '../../../src/server/windows-socket';

export type Family = AfUnixAddon['family'];

/** host:port from the TCP test build's port file. */
export function tcpAddress(path: string): { host: string; port: number } {
  const match = /^([\d.]+):(\d+)\s*$/.exec(readFileSync(path, 'utf8'));
  if (!match) throw new Error(`${path} does not hold a host:port`);
  return { host: match[1]!, port: Number(match[2]) };
}

/** A raw stream to the listener at `path`. */
export function dial(family: Family, path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = family === 'unix' ? connect(path) : connect(tcpAddress(path).port, tcpAddress(path).host);
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

/** A gRPC target for grpc-js clients. */
export function grpcTarget(family: Family, path: string): string {
  if (family === 'unix') return `unix:${path}`;
  const { host, port } = tcpAddress(path);
  return `${host}:${port}`;
}

/** Everything the socket sends until it ends. */
export function readAll(socket: Socket): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.once('end', () => resolve(Buffer.concat(chunks)));
    socket.once('error', reject);
  });
}

/** Deterministic bytes that differ per `seed`, so a reordered or lost chunk shows. */
export function patternBytes(length: number, seed = 0): Buffer {
  const buffer = Buffer.alloc(length);
  for (let i = 0; i < length; i++) buffer[i] = (i * 31 + seed * 7 + (i >> 13)) & 0xff;
  return buffer;
}

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Polls until `predicate` holds, or fails with what it saw last. */
export async function eventually<T>(probe: () => T, predicate: (value: T) => boolean, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (predicate(value)) return value;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms; last value: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Waits until the addon holds exactly these sockets and threads (e.g. nothing after a test cleaned up). */
export function settled(addon: AfUnixAddon, expected: Partial<AddonStats>, timeoutMs = 5000): Promise<AddonStats> {
  return eventually(
    () => addon.stats(),
    (stats) => Object.entries(expected).every(([key, value]) => stats[key as keyof AddonStats] === value),
    timeoutMs,
  );
}
