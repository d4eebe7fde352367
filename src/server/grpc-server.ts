import { unlink } from 'node:fs/promises';
import * as grpc from '@grpc/grpc-js';
import type { Endpoint } from '../cli/flags';
import { PROTOCOL_VERSION, providerVersion, RUNTIME_NAME } from '../cli/version';
import { ProviderError } from '../errors';
import type { MountResult } from '../mount/mount-service';
import type { RawMountRequest } from '../mount/request';
import type { Logger } from '../observability/logger';
import { noopMetrics, type ProviderMetrics } from '../observability/metrics';
import { loadServices } from './protos';
import { boundStatusMessage } from './status-message';
import { listenOnUnixSocket } from './unix-socket';
import { serveOverAddon } from './windows-socket';

/** What the gRPC layer needs from the rest of the provider. */
export interface MountHandler {
  mount(request: RawMountRequest, signal: AbortSignal): Promise<MountResult>;
}

interface MountResponseMessage {
  objectVersion: Array<{ id: string; version: string }>;
  files: Array<{ path: string; mode: number; contents: Buffer }>;
}

export interface RunningServer {
  /** Human-readable address, e.g. unix:///provider/azure.sock. */
  address: string;
  /** Mounts being served right now. */
  inFlight(): number;
  /** Stop accepting, let in-flight calls finish for up to `timeoutMs`, then cancel the rest and remove the socket. */
  shutdown(timeoutMs: number): Promise<{ drained: boolean }>;
}

/**
 * How a unix:// endpoint is served. 'grpc': a node:net listener (Linux). 'af-unix-addon': the native addon
 * listens on AF_UNIX and injects each connection into the server (Windows, where libuv would turn the path into a
 * named pipe, which the driver cannot dial).
 */
export type UnixTransport = 'grpc' | 'af-unix-addon';

export interface GrpcServerOptions {
  /** Records each Mount's duration and final gRPC code, and the mounts in flight. */
  metrics?: ProviderMetrics;
  /** Default 'grpc'. */
  unixTransport?: UnixTransport;
  /** The addon had to stop accepting connections: the process should exit so that Kubernetes restarts it. */
  onFatal?: (error: Error) => void;
}

/** Without a deadline from the driver, a mount still ends: long enough for IMDS and Key Vault retries, no longer. */
const DEFAULT_MOUNT_DEADLINE_MS = 120_000;

const STATUS: Record<ProviderError['status'], grpc.status> = {
  Cancelled: grpc.status.CANCELLED,
  InvalidArgument: grpc.status.INVALID_ARGUMENT,
  DeadlineExceeded: grpc.status.DEADLINE_EXCEEDED,
  NotFound: grpc.status.NOT_FOUND,
  PermissionDenied: grpc.status.PERMISSION_DENIED,
  ResourceExhausted: grpc.status.RESOURCE_EXHAUSTED,
  FailedPrecondition: grpc.status.FAILED_PRECONDITION,
  Internal: grpc.status.INTERNAL,
  Unimplemented: grpc.status.UNIMPLEMENTED,
  Unavailable: grpc.status.UNAVAILABLE,
  Unauthenticated: grpc.status.UNAUTHENTICATED,
};

/**
 * Serves v1alpha1.CSIDriverProvider and grpc.health.v1.Health on the endpoint. This is the only place that turns a
 * ProviderError into a gRPC status.
 */
export async function startGrpcServer(
  endpoint: Endpoint,
  handler: MountHandler,
  logger: Logger,
  options: GrpcServerOptions = {},
): Promise<RunningServer> {
  const metrics = options.metrics ?? noopMetrics;
  const services = loadServices();
  const server = new grpc.Server({
    // A mount response may carry many certificates; the driver decides its own receive limit.
    'grpc.max_send_message_length': -1,
    'grpc.max_receive_message_length': 4 * 1024 * 1024,
  });
  let inFlight = 0;
  let serving = true;

  /** grpc_request for the quick RPCs, as the reference records every method. */
  const timedCallback = <T>(method: string, callback: grpc.sendUnaryData<T>): grpc.sendUnaryData<T> => {
    const started = process.hrtime.bigint();
    return (err, value) => {
      callback(err, value);
      const code = err ? ((err as Partial<grpc.ServiceError>).code ?? grpc.status.UNKNOWN) : grpc.status.OK;
      metrics.observeGrpcRequest(method, Number(process.hrtime.bigint() - started) / 1e9, GO_CODE_NAMES[code] ?? 'Unknown');
    };
  };

  server.addService(services.provider, {
    Version: (_call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
      timedCallback('/v1alpha1.CSIDriverProvider/Version', callback)(null, {
        version: PROTOCOL_VERSION,
        runtimeName: RUNTIME_NAME,
        runtimeVersion: providerVersion(),
      });
    },
    Mount: (call: grpc.ServerUnaryCall<RawMountRequest, MountResponseMessage>, callback: grpc.sendUnaryData<MountResponseMessage>) => {
      inFlight++;
      metrics.mountStarted();
      const started = process.hrtime.bigint();
      const { signal, dispose } = callSignal(call);
      // The code the driver receives is what the metric records, so the histogram and `kubectl describe` agree.
      let code: grpc.status = grpc.status.OK;
      handler
        .mount(call.request, signal)
        .then(
          (result) => callback(null, { objectVersion: result.objectVersions, files: result.files }),
          (err: unknown) => {
            const serviceError = toServiceError(err);
            code = serviceError.code ?? grpc.status.UNKNOWN;
            callback(serviceError);
          },
        )
        .finally(() => {
          dispose();
          inFlight--;
          metrics.mountFinished();
          metrics.observeGrpcRequest('/v1alpha1.CSIDriverProvider/Mount', Number(process.hrtime.bigint() - started) / 1e9, GO_CODE_NAMES[code] ?? 'Unknown');
        });
    },
  });

  server.addService(services.health, {
    Check: (call: grpc.ServerUnaryCall<{ service: string }, unknown>, done: grpc.sendUnaryData<unknown>) => {
      const callback = timedCallback('/grpc.health.v1.Health/Check', done);
      const service = call.request.service;
      if (service !== '' && service !== 'v1alpha1.CSIDriverProvider') {
        callback({ code: grpc.status.NOT_FOUND, details: `unknown service "${service.slice(0, 100)}"` });
        return;
      }
      callback(null, { status: serving ? 'SERVING' : 'NOT_SERVING' });
    },
    Watch: (call: grpc.ServerWritableStream<unknown, unknown>) => {
      call.emit('error', { code: grpc.status.UNIMPLEMENTED, details: 'Watch is not supported; use Check' });
    },
  });

  const bound = await bind(server, endpoint, options, logger);
  logger.info({ endpoint: bound.address }, 'serving the CSI driver');

  return {
    address: bound.address,
    inFlight: () => inFlight,
    async shutdown(timeoutMs) {
      serving = false;
      const drained = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => {
          logger.warn({ inFlight }, 'drain timeout reached: cancelling the mounts still in flight');
          server.forceShutdown();
          resolve(false);
        }, timeoutMs);
        // Stop accepting first, so that the drain is not fed new connections; inside the drain bound, like the rest.
        void bound.stopAccepting().then(() =>
          server.tryShutdown(() => {
            // Drained when the connections are gone too: see ConnectionTracker.
            void bound.connectionsClosed().then(() => {
              clearTimeout(timer);
              resolve(true);
            });
          }),
        );
      });
      if (endpoint.kind === 'unix') await unlink(endpoint.path).catch(() => undefined);
      return { drained };
    },
  };
}

interface Bound {
  address: string;
  stopAccepting(): Promise<void>;
  /** Resolves when every accepted connection has closed (the drain timer bounds the wait). */
  connectionsClosed(): Promise<void>;
}

async function bind(server: grpc.Server, endpoint: Endpoint, options: GrpcServerOptions, logger: Logger): Promise<Bound> {
  if (endpoint.kind === 'tcp') {
    // grpc-js stops accepting in tryShutdown/forceShutdown itself.
    const host = endpoint.host.includes(':') ? `[${endpoint.host}]` : endpoint.host;
    const port = await bindAsync(server, `${host}:${endpoint.port}`);
    return { address: `tcp://${host}:${port}`, stopAccepting: async () => undefined, connectionsClosed: async () => undefined };
  }
  const onRewrite = (authority: string): void =>
    logger.debug(
      { authority: authority.slice(0, 256) },
      'a driver older than v1.6 sent the socket path as the HTTP/2 authority; serving that connection as localhost',
    );
  if (options.unixTransport === 'af-unix-addon') {
    const serving = await serveOverAddon(server, endpoint.path, {
      onError: (err, fatal) => {
        if (fatal) options.onFatal?.(err);
        else logger.warn({ err }, 'accepting a driver connection failed; accepting again shortly');
      },
      onRewrite,
    });
    return { address: serving.address, stopAccepting: () => serving.close(), connectionsClosed: () => serving.connectionsClosed() };
  }
  const listener = await listenOnUnixSocket(server, endpoint.path, onRewrite);
  return { address: listener.address, stopAccepting: () => listener.close(), connectionsClosed: () => listener.connectionsClosed() };
}

function bindAsync(server: grpc.Server, address: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port)));
  });
}

/**
 * An AbortSignal that fires when the driver cancels the call or its deadline passes. The abort reason is the
 * ProviderError the mount fails with, so the pod sees why.
 */
function callSignal(call: grpc.ServerUnaryCall<unknown, unknown>): { signal: AbortSignal; dispose: () => void } {
  const controller = new AbortController();
  const deadline = call.getDeadline();
  const deadlineMs = deadline instanceof Date ? deadline.getTime() : deadline;
  const untilDeadline = Number.isFinite(deadlineMs) ? Math.max(0, deadlineMs - Date.now()) : DEFAULT_MOUNT_DEADLINE_MS;
  // Give up a little before the driver does, so our message (what we were waiting on) reaches it, not its own timeout.
  const remaining = Math.max(0, untilDeadline - Math.min(1000, untilDeadline * 0.05));
  const timer = setTimeout(() => {
    controller.abort(
      new ProviderError('DeadlineExceeded', `the mount did not complete within its deadline of ${Math.round(remaining / 100) / 10}s`),
    );
  }, remaining);
  const onCancelled = (): void => controller.abort(new ProviderError('Cancelled', 'the driver cancelled the mount'));
  call.once('cancelled', onCancelled);
  return {
    signal: controller.signal,
    dispose: () => {
      clearTimeout(timer);
      call.removeListener('cancelled', onCancelled);
    },
  };
}

/** gRPC status names as grpc-go spells them (the reference's metric label values), by code number. */
const GO_CODE_NAMES: Record<number, string> = {
  [grpc.status.OK]: 'OK',
  [grpc.status.CANCELLED]: 'Canceled',
  [grpc.status.UNKNOWN]: 'Unknown',
  [grpc.status.INVALID_ARGUMENT]: 'InvalidArgument',
  [grpc.status.DEADLINE_EXCEEDED]: 'DeadlineExceeded',
  [grpc.status.NOT_FOUND]: 'NotFound',
  [grpc.status.ALREADY_EXISTS]: 'AlreadyExists',
  [grpc.status.PERMISSION_DENIED]: 'PermissionDenied',
  [grpc.status.RESOURCE_EXHAUSTED]: 'ResourceExhausted',
  [grpc.status.FAILED_PRECONDITION]: 'FailedPrecondition',
  [grpc.status.ABORTED]: 'Aborted',
  [grpc.status.OUT_OF_RANGE]: 'OutOfRange',
  [grpc.status.UNIMPLEMENTED]: 'Unimplemented',
  [grpc.status.INTERNAL]: 'Internal',
  [grpc.status.UNAVAILABLE]: 'Unavailable',
  [grpc.status.DATA_LOSS]: 'DataLoss',
  [grpc.status.UNAUTHENTICATED]: 'Unauthenticated',
};

function toServiceError(err: unknown): Partial<grpc.ServiceError> {
  if (err instanceof ProviderError) return { code: STATUS[err.status], details: boundStatusMessage(err.message) };
  return { code: grpc.status.INTERNAL, details: 'internal error in the provider: see the provider logs' };
}
