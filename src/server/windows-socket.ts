/**
 * Serving the driver over AF_UNIX where Node cannot listen on it (Windows), through the af_unix_listener addon: the
 * public face of af-unix/ — addon loading (addon.ts), the connection as a Duplex (socket.ts), listen/serve/connect
 * (listener.ts) and the health client (health-client.ts).
 */
export {
  type AddonStats,
  type AfUnixAddon,
  type ConnectionEvent,
  defaultAddonPath,
  type ListenerEvent,
  loadAddon,
  type NativeConnection,
  type NativeListener,
} from './af-unix/addon';
export { healthCheckOverAddon } from './af-unix/health-client';
export {
  type AddonConnectOptions,
  type AddonListener,
  type AddonListenOptions,
  type AddonServer,
  connectOverAddon,
  listenOverAddon,
  serveOverAddon,
} from './af-unix/listener';
export { AddonSocket } from './af-unix/socket';
