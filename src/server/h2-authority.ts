/**
 * The Secrets Store CSI Driver before v1.6 dials the provider with grpc-go's `grpc.Dial(<socket path>)`, so every
 * request carries the socket path as its HTTP/2 `:authority`. Node's HTTP/2 (nghttp2) refuses an authority with `/`
 * in it and resets each stream with PROTOCOL_ERROR: every mount from such a driver would fail. On a unix socket the
 * authority means nothing, so this transform sits between the socket and the gRPC server and, for a connection whose
 * first request has an authority nghttp2 would refuse, rewrites the request headers to `localhost`.
 *
 * HPACK state is per connection and direction: once one header block is rewritten, the client's later blocks may
 * refer to entries only the client's table has. So a rewritten connection keeps a decoder of the client's blocks
 * (hpack.js) and re-encodes every block without indexing, which leaves Node's decoder table untouched. A connection
 * whose first authority is valid (driver v1.6 sends `localhost`) is passed through untouched from then on.
 */
import { Duplex } from 'node:stream';
import hpack from 'hpack.js';

export const UNIX_SOCKET_AUTHORITY = 'localhost';

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const FRAME_HEADER_LENGTH = 9;
const HEADERS = 0x1;
const CONTINUATION = 0x9;
const END_STREAM = 0x1;
const END_HEADERS = 0x4;
const PADDED = 0x8;
const PRIORITY = 0x20;
/** The largest frame Node accepts unless told otherwise (SETTINGS_MAX_FRAME_SIZE's initial value). */
const MAX_FRAME_PAYLOAD = 16_384;
/** A header block larger than this is not ours to repair: it is passed on for Node to judge. */
const MAX_HEADER_BLOCK = 256 * 1024;
/** HPACK's initial dynamic table size, which the client's encoder starts from (RFC 7541 §4.2). */
const INITIAL_TABLE_SIZE = 4096;

/** The characters nghttp2 accepts in an authority (RFC 3986 reg-name and IP-literal, plus `:` and `@`). */
const ACCEPTED_AUTHORITY = /^[A-Za-z0-9\-._~!$&'()*+,;=:@[\]%]*$/;

export function isAcceptedAuthority(authority: string): boolean {
  return ACCEPTED_AUTHORITY.test(authority);
}

type Mode = 'preface' | 'first-request' | 'rewrite' | 'pass-through';

/** Wraps one accepted connection; `onRewrite` is called once if the connection's authority gets rewritten. */
export function withAcceptedAuthority(socket: Duplex, onRewrite?: (authority: string) => void): Duplex {
  return new AuthorityRewriter(socket, onRewrite);
}

class AuthorityRewriter extends Duplex {
  private mode: Mode = 'preface';
  private pending: Buffer = Buffer.alloc(0);
  /** The HEADERS frame (and CONTINUATIONs) of a header block still being received. */
  private block: { streamId: number; flags: number; fragments: Buffer[]; raw: Buffer[]; size: number } | undefined;
  private decoder: HpackDecompressor | undefined;
  private decodeError: Error | undefined;

  constructor(
    private readonly socket: Duplex,
    private readonly onRewrite: ((authority: string) => void) | undefined,
  ) {
    super({ allowHalfOpen: false });
    socket.on('data', (chunk: Buffer) => {
      const out = this.mode === 'pass-through' ? [chunk] : this.fromClient(chunk);
      for (const piece of out) if (!this.push(piece)) socket.pause();
    });
    socket.on('end', () => this.push(null));
    socket.on('error', (err) => this.destroy(err));
    socket.on('close', () => this.destroy());
  }

  override _read(): void {
    this.socket.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    this.socket.write(chunk, callback);
  }

  override _final(callback: (err?: Error | null) => void): void {
    this.socket.end(callback);
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    this.socket.destroy(err ?? undefined);
    callback(err);
  }

  /** Consumes bytes from the client; returns what Node should see, in order. */
  private fromClient(chunk: Buffer): Buffer[] {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const out: Buffer[] = [];
    if (this.mode === 'preface') {
      if (this.pending.length < PREFACE.length) return out;
      if (!this.pending.subarray(0, PREFACE.length).equals(PREFACE)) return this.passThroughFrom(out);
      out.push(this.pending.subarray(0, PREFACE.length));
      this.pending = this.pending.subarray(PREFACE.length);
      this.mode = 'first-request';
    }
    while (this.mode !== 'pass-through' && this.pending.length >= FRAME_HEADER_LENGTH) {
      const length = this.pending.readUIntBE(0, 3);
      if (length > MAX_HEADER_BLOCK) return this.passThroughFrom(out);
      if (this.pending.length < FRAME_HEADER_LENGTH + length) break;
      const frame = this.pending.subarray(0, FRAME_HEADER_LENGTH + length);
      this.pending = this.pending.subarray(frame.length);
      this.frame(frame, out);
    }
    if (this.mode === 'pass-through') return this.passThroughFrom(out);
    return out;
  }

  private frame(frame: Buffer, out: Buffer[]): void {
    const type = frame[3]!;
    const flags = frame[4]!;
    const streamId = frame.readUInt32BE(5) & 0x7fffffff;
    const payload = frame.subarray(FRAME_HEADER_LENGTH);
    if (type === HEADERS && !this.block) {
      const fragment = headerBlockFragment(payload, flags);
      if (!fragment) return this.abandon(out, [frame]);
      this.block = { streamId, flags, fragments: [fragment], raw: [frame], size: fragment.length };
    } else if (type === CONTINUATION && this.block && streamId === this.block.streamId) {
      this.block.fragments.push(payload);
      this.block.raw.push(frame);
      this.block.size += payload.length;
      if (this.block.size > MAX_HEADER_BLOCK) return this.abandon(out, this.block.raw);
    } else if (this.block) {
      // A frame inside a header block is a protocol error: let Node see it as sent.
      return this.abandon(out, [frame]);
    } else {
      out.push(frame);
      return;
    }
    if ((flags & END_HEADERS) === 0) return;
    const block = this.block;
    this.block = undefined;
    this.headerBlock(block, out);
  }

  private headerBlock(block: NonNullable<AuthorityRewriter['block']>, out: Buffer[]): void {
    let headers: HpackHeader[];
    try {
      headers = this.decode(Buffer.concat(block.fragments));
    } catch {
      return this.abandon(out, block.raw);
    }
    const authority = headers.find((h) => h.name === ':authority');
    if (this.mode === 'first-request') {
      if (!authority || isAcceptedAuthority(authority.value)) {
        out.push(...block.raw);
        this.mode = 'pass-through';
        return;
      }
      this.mode = 'rewrite';
      this.onRewrite?.(authority.value);
    }
    for (const h of headers) if (h.name === ':authority' && !isAcceptedAuthority(h.value)) h.value = UNIX_SOCKET_AUTHORITY;
    out.push(...headerFrames(block.streamId, block.flags & END_STREAM, encodeWithoutIndexing(headers)));
  }

  /** Decodes with the connection's decoder, which mirrors the client's dynamic table across blocks. */
  private decode(block: Buffer): HpackHeader[] {
    if (!this.decoder) {
      const decoder = hpack.decompressor.create({ table: { maxSize: 64 * 1024 } });
      decoder.updateTableSize(INITIAL_TABLE_SIZE);
      // Without a callback, execute() decodes synchronously and reports a malformed block as an 'error' event.
      decoder.on('error', (err: Error) => {
        this.decodeError = err;
      });
      this.decoder = decoder;
    }
    this.decodeError = undefined;
    this.decoder.write(block);
    this.decoder.execute();
    const headers: HpackHeader[] = [];
    for (let h = this.decoder.read() as HpackHeader | null; h !== null; h = this.decoder.read() as HpackHeader | null) headers.push(h);
    if (this.decodeError) throw this.decodeError;
    return headers;
  }

  /** Gives up on repairing: forwards what is held, then everything as it comes (Node judges the bytes itself). */
  private abandon(out: Buffer[], held: Buffer[]): void {
    out.push(...held);
    this.block = undefined;
    this.mode = 'pass-through';
  }

  private passThroughFrom(out: Buffer[]): Buffer[] {
    this.mode = 'pass-through';
    if (this.block) {
      out.push(...this.block.raw);
      this.block = undefined;
    }
    if (this.pending.length > 0) out.push(this.pending);
    this.pending = Buffer.alloc(0);
    return out;
  }
}

/** The header block fragment of a HEADERS frame's payload, without padding and priority; undefined if malformed. */
function headerBlockFragment(payload: Buffer, flags: number): Buffer | undefined {
  let start = 0;
  let end = payload.length;
  if (flags & PADDED) {
    if (payload.length < 1) return undefined;
    end -= payload[0]!;
    start = 1;
  }
  if (flags & PRIORITY) start += 5;
  return start <= end ? payload.subarray(start, end) : undefined;
}

/** HEADERS, then CONTINUATION frames as needed, for one encoded header block. */
function headerFrames(streamId: number, endStream: number, block: Buffer): Buffer[] {
  const frames: Buffer[] = [];
  for (let offset = 0; offset < block.length || offset === 0; offset += MAX_FRAME_PAYLOAD) {
    const piece = block.subarray(offset, offset + MAX_FRAME_PAYLOAD);
    const last = offset + MAX_FRAME_PAYLOAD >= block.length;
    const header = Buffer.alloc(FRAME_HEADER_LENGTH);
    header.writeUIntBE(piece.length, 0, 3);
    header[3] = offset === 0 ? HEADERS : CONTINUATION;
    header[4] = (offset === 0 ? endStream : 0) | (last ? END_HEADERS : 0);
    header.writeUInt32BE(streamId, 5);
    frames.push(header, piece);
    if (last) break;
  }
  return frames;
}

/**
 * HPACK literal fields with new names and no indexing (RFC 7541 §6.2.2/§6.2.3, sensitive fields kept "never
 * indexed"), strings without Huffman coding: the simplest encoding every decoder accepts, and one that never touches
 * the server's dynamic table.
 */
export function encodeWithoutIndexing(headers: readonly HpackHeader[]): Buffer {
  const parts: Buffer[] = [];
  for (const h of headers) {
    parts.push(Buffer.from([h.neverIndex ? 0x10 : 0x00]), hpackString(h.name), hpackString(h.value));
  }
  return Buffer.concat(parts);
}

function hpackString(text: string): Buffer {
  const bytes = Buffer.from(text, 'latin1');
  return Buffer.concat([hpackInteger(bytes.length, 7, 0x00), bytes]);
}

/** An HPACK integer with an N-bit prefix (RFC 7541 §5.1); `high` holds the bits above the prefix. */
function hpackInteger(value: number, prefixBits: number, high: number): Buffer {
  const max = (1 << prefixBits) - 1;
  if (value < max) return Buffer.from([high | value]);
  const bytes = [high | max];
  let rest = value - max;
  while (rest >= 128) {
    bytes.push((rest % 128) + 128);
    rest = Math.floor(rest / 128);
  }
  bytes.push(rest);
  return Buffer.from(bytes);
}

export interface HpackHeader {
  name: string;
  /** Bytes as latin1 characters, as hpack.js gives them. */
  value: string;
  neverIndex: boolean;
}

export interface HpackDecompressor {
  write(chunk: Buffer): boolean;
  execute(): void;
  read(): unknown;
  updateTableSize(size: number): void;
  on(event: 'error', listener: (err: Error) => void): void;
}
