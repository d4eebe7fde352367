/**
 * The af_unix_listener addon (native/af_unix_listener.c): what it exports, where it lives, and loading it once. On
 * Linux the provider keeps grpc-js's own bindAsync('unix://…'); the addon is loaded only when asked for.
 */
import { join } from 'node:path';
import { types } from 'node:util';
import { packageRoot } from '../../util/package-root';

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
export type ConnectionEventHandler = (kind: ConnectionEvent, arg: unknown) => void;
export type ListenerEventHandler = (kind: ListenerEvent, arg: unknown) => ConnectionEventHandler | undefined;

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

/** The addon's errors come from the main realm: isNativeError, unlike instanceof, also holds inside a vm (jest). */
export function asError(value: unknown): Error {
  return types.isNativeError(value) ? value : new Error(String(value));
}
