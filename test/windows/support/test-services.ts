/**
 * A gRPC server with the provider's real service definitions (proto/ through src/server/protos) and small handlers
 * that exercise the transport: Version as the provider answers it, Mount returning a file of the requested size
 * (attributes {"size": "<bytes>"}), and health Check. Used natively and, compiled, inside node.exe under Wine.
 */
import * as grpc from '@grpc/grpc-js';
import { loadServices } from '../../../src/server/protos';

/** The channel options the provider's server uses (grpc-server.ts). */
export const PROVIDER_SERVER_OPTIONS: grpc.ServerOptions = {
  'grpc.max_send_message_length': -1,
  'grpc.max_receive_message_length': 4 * 1024 * 1024,
};

export function mountFileContents(size: number): Buffer {
  const buffer = Buffer.alloc(size);
  for (let i = 0; i < size; i++) buffer[i] = (i * 131 + (i >> 11)) & 0xff;
  return buffer;
}

export function createTestServer(): grpc.Server {
  const services = loadServices();
  const server = new grpc.Server(PROVIDER_SERVER_OPTIONS);
  server.addService(services.provider, {
    Version: (_call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
      callback(null, { version: 'v1alpha1', runtimeName: 'secrets-store-csi-driver-provider-azure', runtimeVersion: 'test' });
    },
    Mount: (call: grpc.ServerUnaryCall<{ attributes: string }, unknown>, callback: grpc.sendUnaryData<unknown>) => {
      let size = 0;
      try {
        size = Number((JSON.parse(call.request.attributes) as { size?: string }).size ?? '0');
      } catch {
        callback({ code: grpc.status.INVALID_ARGUMENT, details: 'attributes are not JSON' });
        return;
      }
      callback(null, {
        objectVersion: [{ id: 'secret/blob', version: String(size) }],
        files: size > 0 ? [{ path: 'blob', mode: 0o644, contents: mountFileContents(size) }] : [],
      });
    },
  });
  server.addService(services.health, {
    Check: (_call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
      callback(null, { status: 'SERVING' });
    },
  });
  return server;
}
