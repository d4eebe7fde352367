/**
 * The provider's own health probe on Windows: grpc-js clients cannot dial AF_UNIX there (the same libuv limitation),
 * so one grpc.health.v1 Check is spoken over Node's HTTP/2 on a connection from the addon, its messages encoded and
 * decoded by protobufjs (through proto-loader) from the proto files the server serves.
 */
import { connect as http2Connect, constants as http2Constants } from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import { loadServices } from '../protos';
import { asError } from './addon';
import { connectOverAddon } from './listener';
import type { AddonSocket } from './socket';

/** grpc.health.v1.Health/Check's (de)serializers, from the same proto files the server loads, once. */
let checkMethod: grpc.MethodDefinition<object, object> | undefined;
function healthCheckMethod(): grpc.MethodDefinition<object, object> {
  checkMethod ??= loadServices().health['Check'] as grpc.MethodDefinition<object, object>;
  return checkMethod;
}

function grpcError(code: grpc.status, message: string): Error & { code: grpc.status } {
  return Object.assign(new Error(message), { code });
}

/** A HealthCheckRequest for the server as a whole (service ""), in gRPC's length-prefixed message framing. */
function healthCheckRequestFrame(): Buffer {
  const message = healthCheckMethod().requestSerialize({ service: '' });
  const header = Buffer.alloc(5);
  header.writeUInt32BE(message.length, 1);
  return Buffer.concat([header, message]);
}

/** The status name out of one uncompressed gRPC message frame holding a HealthCheckResponse. */
function decodeHealthStatus(frame: Buffer): string {
  if (frame.length < 5 || frame[0] !== 0 || frame.readUInt32BE(1) !== frame.length - 5) {
    throw grpcError(grpc.status.INTERNAL, 'health check: malformed response frame');
  }
  let response: { status?: unknown };
  try {
    response = healthCheckMethod().responseDeserialize(frame.subarray(5)) as { status?: unknown };
  } catch {
    throw grpcError(grpc.status.INTERNAL, 'health check: malformed response');
  }
  // Enums decode as names (PROTO_OPTIONS); a value this proto does not name stays a number.
  const status = response.status ?? 'UNKNOWN'; // proto3: an absent field is its default, UNKNOWN
  return typeof status === 'string' ? status : `UNKNOWN(${String(status)})`;
}

/**
 * One grpc.health.v1.Health/Check over a fresh connection through the addon, within `timeoutMs`: grpc-js clients
 * cannot dial AF_UNIX on Windows (the same libuv limitation), so this speaks gRPC over Node's HTTP/2 on the addon's
 * socket. Resolves with the status name ('SERVING', 'NOT_SERVING', …); rejects with an Error whose `code` is a gRPC
 * status as a grpc-js client would give: UNAVAILABLE (no connection), DEADLINE_EXCEEDED, or the server's code.
 */
export async function healthCheckOverAddon(path: string, timeoutMs: number, options: { addonPath?: string } = {}): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let socket: AddonSocket;
  try {
    socket = await connectOverAddon(path, { ...options, timeoutMs });
  } catch (err) {
    const timedOut = (err as { code?: unknown }).code === 'ETIMEDOUT';
    throw grpcError(timedOut ? grpc.status.DEADLINE_EXCEEDED : grpc.status.UNAVAILABLE, asError(err).message);
  }
  const session = http2Connect('http://localhost', { createConnection: () => socket });
  try {
    return await new Promise<string>((resolve, reject) => {
      const remaining = Math.max(0, deadline - Date.now());
      const timer = setTimeout(() => reject(grpcError(grpc.status.DEADLINE_EXCEEDED, 'health check: no answer in time')), remaining);
      const fail = (error: Error) => {
        clearTimeout(timer);
        reject(grpcError(grpc.status.UNAVAILABLE, error.message));
      };
      session.once('error', fail);
      const request = session.request({
        [http2Constants.HTTP2_HEADER_METHOD]: 'POST',
        [http2Constants.HTTP2_HEADER_PATH]: '/grpc.health.v1.Health/Check',
        'content-type': 'application/grpc',
        te: 'trailers',
        'grpc-timeout': `${remaining}m`,
      });
      const chunks: Buffer[] = [];
      let grpcStatus: string | undefined;
      let grpcMessage = '';
      const noteStatus = (headers: Record<string, unknown>) => {
        if (headers['grpc-status'] !== undefined) grpcStatus = String(headers['grpc-status']);
        if (headers['grpc-message'] !== undefined) grpcMessage = decodeURIComponent(String(headers['grpc-message']));
      };
      request.on('response', noteStatus); // a trailers-only answer carries the status in the headers
      request.on('trailers', noteStatus);
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.once('error', fail);
      request.once('end', () => {
        clearTimeout(timer);
        if (grpcStatus !== '0') {
          const code = Number(grpcStatus ?? grpc.status.UNKNOWN) as grpc.status;
          reject(grpcError(code, `health check failed: ${grpcMessage || `grpc-status ${grpcStatus ?? 'missing'}`}`));
          return;
        }
        try {
          resolve(decodeHealthStatus(Buffer.concat(chunks)));
        } catch (err) {
          reject(asError(err));
        }
      });
      request.end(healthCheckRequestFrame());
    });
  } finally {
    session.destroy();
    socket.destroy();
  }
}
