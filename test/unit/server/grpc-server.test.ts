/**
 * The gRPC server through its public seam: startGrpcServer on a real unix socket, called the way the driver calls it
 * (test/support/driver-client.ts), in front of a MountHandler stand-in. What it owns: the wire shape of the
 * responses, the one ProviderError → gRPC status mapping, the call's deadline as the handler's abort signal, the
 * health service and the metrics it records.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { PROTOCOL_VERSION, RUNTIME_NAME } from '../../../src/cli/version';
import { ProviderError } from '../../../src/errors';
import type { MountResult } from '../../../src/mount/mount-service';
import type { RawMountRequest } from '../../../src/mount/request';
import { createLogger } from '../../../src/observability/logger';
import { noopMetrics, type ProviderMetrics } from '../../../src/observability/metrics';
import { type MountHandler, type RunningServer, startGrpcServer } from '../../../src/server/grpc-server';
import { createDriverClient, type DriverClient } from '../../support/driver-client';

type Mount = (request: RawMountRequest, signal: AbortSignal) => Promise<MountResult>;

describe('startGrpcServer', () => {
  let dir: string;
  let server: RunningServer;
  let client: DriverClient;
  let mount: Mount;
  const grpcRequests: Array<{ method: string; code: string }> = [];
  const logs: string[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'grpc-server-'));
    const socket = join(dir, 'azure.sock');
    const handler: MountHandler = { mount: (request, signal) => mount(request, signal) };
    const metrics: ProviderMetrics = { ...noopMetrics, observeGrpcRequest: (method, _s, code) => void grpcRequests.push({ method, code }) };
    const logger = createLogger({ json: true, verbosity: 0, destination: { write: (line: string) => void logs.push(line) } });
    server = await startGrpcServer({ kind: 'unix', path: socket }, handler, logger, { metrics });
    client = createDriverClient(socket);
  });

  afterAll(async () => {
    client.close();
    await server.shutdown(5000);
    rmSync(dir, { recursive: true, force: true });
  });

  beforeEach(() => {
    grpcRequests.length = 0;
  });

  it('answers Version with the protocol version and runtime name the driver checks', async () => {
    const version = await client.version();
    expect(version).toMatchObject({ version: PROTOCOL_VERSION, runtimeName: RUNTIME_NAME });
    expect(grpcRequests).toEqual([{ method: '/v1alpha1.CSIDriverProvider/Version', code: 'OK' }]);
  });

  it('hands the request to the handler and returns its files and versions', async () => {
    let received: RawMountRequest | undefined;
    mount = async (request) => {
      received = request;
      return {
        files: [{ path: 'db-password', mode: 0o640, contents: Buffer.from('s3cr3t') }],
        objectVersions: [{ id: 'secret/db-password', version: 'v1' }],
      };
    };

    const result = await client.mount({ attributes: { keyvaultName: 'kv' }, permission: '420' });

    expect(received).toMatchObject({ attributes: '{"keyvaultName":"kv"}', secrets: 'null', permission: '420' });
    expect(result.files).toEqual([{ path: 'db-password', mode: 0o640, contents: Buffer.from('s3cr3t') }]);
    expect(result.objectVersion).toEqual([{ id: 'secret/db-password', version: 'v1' }]);
    expect(grpcRequests).toEqual([{ method: '/v1alpha1.CSIDriverProvider/Mount', code: 'OK' }]);
    expect(server.inFlight()).toBe(0);
  });

  it.each([
    ['InvalidArgument', grpc.status.INVALID_ARGUMENT, 'InvalidArgument'],
    ['NotFound', grpc.status.NOT_FOUND, 'NotFound'],
    ['PermissionDenied', grpc.status.PERMISSION_DENIED, 'PermissionDenied'],
    ['Unavailable', grpc.status.UNAVAILABLE, 'Unavailable'],
    ['Cancelled', grpc.status.CANCELLED, 'Canceled'],
  ] as const)('fails a %s ProviderError with its gRPC code and message, recorded as grpc-go names it', async (status, code, goName) => {
    mount = () => Promise.reject(new ProviderError(status, `secret "x" in Key Vault "kv": ${status}`));

    await expect(client.mount({ attributes: {} })).rejects.toMatchObject({ code, details: `secret "x" in Key Vault "kv": ${status}` });
    expect(grpcRequests).toEqual([{ method: '/v1alpha1.CSIDriverProvider/Mount', code: goName }]);
  });

  it('fails any other error as INTERNAL without its text', async () => {
    mount = () => Promise.reject(new Error('TypeError at 0xdeadbeef'));

    await expect(client.mount({ attributes: {} })).rejects.toMatchObject({
      code: grpc.status.INTERNAL,
      details: 'internal error in the provider: see the provider logs',
    });
  });

  it("aborts the handler's signal before the driver's deadline, with a DeadlineExceeded reason", async () => {
    let reason: unknown;
    mount = (_request, signal) =>
      new Promise((_, reject) => {
        signal.addEventListener('abort', () => {
          reason = signal.reason;
          reject(signal.reason);
        });
      });

    await expect(client.mount({ attributes: {} }, { deadlineMs: 1500 })).rejects.toMatchObject({
      code: grpc.status.DEADLINE_EXCEEDED,
      details: expect.stringMatching(/^the mount did not complete within its deadline of [\d.]+s$/),
    });
    expect(reason).toBeInstanceOf(ProviderError);
    expect(reason).toMatchObject({ status: 'DeadlineExceeded' });
  });

  it('serves the health check for the server and the provider service, NOT_FOUND for others', async () => {
    expect(await client.healthCheck('')).toBe('SERVING');
    expect(await client.healthCheck('v1alpha1.CSIDriverProvider')).toBe('SERVING');
    await expect(client.healthCheck('other.Service')).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
    expect(grpcRequests.map((r) => r.code)).toEqual(['OK', 'OK', 'NotFound']);
  });
});

describe('RunningServer.shutdown', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'grpc-shutdown-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  async function serve(mount: Mount): Promise<{ server: RunningServer; client: DriverClient; socket: string }> {
    const socket = join(dir, 'azure.sock');
    const logger = createLogger({ json: true, verbosity: 0, destination: { write: () => undefined } });
    const server = await startGrpcServer({ kind: 'unix', path: socket }, { mount }, logger);
    return { server, client: createDriverClient(socket), socket };
  }

  it('lets a mount in flight finish, then reports the drain complete and removes the socket', async () => {
    let release!: () => void;
    let markStarted!: () => void;
    const started = new Promise<void>((resolve) => (markStarted = resolve));
    const { server, client, socket } = await serve(
      () =>
        new Promise<MountResult>((resolve) => {
          release = () => resolve({ files: [], objectVersions: [{ id: 'secret/a', version: 'v1' }] });
          markStarted();
        }),
    );
    const call = client.mount({ attributes: {} });
    await started;
    expect(server.inFlight()).toBe(1);

    const shutdown = server.shutdown(10_000);
    release();

    await expect(call).resolves.toMatchObject({ objectVersion: [{ id: 'secret/a', version: 'v1' }] });
    client.close();
    await expect(shutdown).resolves.toEqual({ drained: true });
    expect(existsSync(socket)).toBe(false);
  });

  it('cancels what is still in flight when the drain bound passes', async () => {
    let markAborted!: (reason: unknown) => void;
    const aborted = new Promise<unknown>((resolve) => (markAborted = resolve));
    const { server, client } = await serve(
      (_request, signal) =>
        new Promise<MountResult>((_, reject) => {
          signal.addEventListener('abort', () => {
            markAborted(signal.reason);
            reject(signal.reason);
          });
        }),
    );
    const call = client.mount({ attributes: {} }).catch((err: unknown) => err);
    while (server.inFlight() === 0) await new Promise((resolve) => setImmediate(resolve));

    await expect(server.shutdown(200)).resolves.toEqual({ drained: false });
    expect(await aborted).toMatchObject({ status: 'Cancelled' });
    expect(await call).toMatchObject({ code: expect.any(Number) });
    client.close();
  });
});
