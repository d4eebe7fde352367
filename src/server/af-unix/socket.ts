/**
 * One AF_UNIX connection from the addon as a stream.Duplex, which grpc-js serves (through a connection injector) and
 * Node's HTTP/2 client speaks over, exactly as over a net.Socket.
 */
import { Duplex } from 'node:stream';
import { type AfUnixAddon, asError, type ConnectionEventHandler, type NativeConnection } from './addon';

type Callback = (error?: Error | null) => void;

function closedError(): Error {
  return Object.assign(new Error('the connection is closed'), { code: 'ERR_STREAM_DESTROYED' });
}

/**
 * One accepted connection as a Duplex. Reads: `_read` asks the addon for one chunk, which arrives as 'data' and is
 * pushed; Readable calls `_read` again only while push() keeps returning true, so a slow consumer stops the reading
 * thread and the peer feels TCP-style backpressure. Writes: one at a time (Writable guarantees it); the addon's writer
 * thread sends the Buffer and reports 'written', which completes the write callback.
 */
export class AddonSocket extends Duplex {
  private pendingWrite: Callback | undefined;

  constructor(
    private readonly addon: AfUnixAddon,
    private readonly connection: NativeConnection,
    allowHalfOpen = false,
  ) {
    // As net.Socket: without allowHalfOpen, the peer's end ends our side too; the stream is destroyed once both
    // sides have ended. (gRPC does not care: its HTTP/2 session destroys the socket when the peer goes.)
    super({ allowHalfOpen });
    // Like net.Socket: start reading at once (up to the high-water mark), so the peer's end is noticed even by a
    // consumer that never reads.
    this.read(0);
  }

  /** Receives the addon's events for this connection, on the main thread. */
  readonly onNativeEvent: ConnectionEventHandler = (kind, arg) => {
    switch (kind) {
      case 'data':
        if (Buffer.isBuffer(arg)) this.push(arg);
        return;
      case 'end':
        this.push(null);
        // Emits 'end' now if nothing is buffered, as net.Socket does, even when nobody is reading.
        this.read(0);
        return;
      case 'error':
        this.destroy(asError(arg));
        return;
      case 'written': {
        const callback = this.pendingWrite;
        this.pendingWrite = undefined;
        callback?.(arg === undefined ? null : asError(arg));
        return;
      }
      case 'close':
        // The socket is closed natively (after our destroy, or because its threads could not run).
        if (!this.destroyed) this.destroy();
        return;
    }
  };

  override _read(): void {
    this.addon.read(this.connection);
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: Callback): void {
    this.send(chunk, callback);
  }

  override _writev(chunks: Array<{ chunk: Buffer; encoding: BufferEncoding }>, callback: Callback): void {
    // gRPC writes many small frames at once: one send for all of them.
    this.send(chunks.length === 1 ? chunks[0]!.chunk : Buffer.concat(chunks.map((c) => c.chunk)), callback);
  }

  override _final(callback: Callback): void {
    callback(this.addon.end(this.connection) ?? null);
  }

  override _destroy(error: Error | null, callback: Callback): void {
    this.addon.destroy(this.connection);
    callback(error);
  }

  private send(data: Buffer, callback: Callback): void {
    if (data.length === 0) {
      callback(null);
      return;
    }
    this.pendingWrite = callback;
    if (!this.addon.write(this.connection, data)) {
      this.pendingWrite = undefined;
      callback(closedError());
    }
  }
}
