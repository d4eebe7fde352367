import { PassThrough } from 'node:stream';
import hpack from 'hpack.js';
import { encodeWithoutIndexing, isAcceptedAuthority, withAcceptedAuthority, type HpackHeader } from '../../../src/server/h2-authority';

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

function frame(type: number, flags: number, streamId: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(9);
  header.writeUIntBE(payload.length, 0, 3);
  header[3] = type;
  header[4] = flags;
  header.writeUInt32BE(streamId, 5);
  return Buffer.concat([header, payload]);
}

function decodeAll(block: Buffer): HpackHeader[] {
  const d = (hpack as unknown as { decompressor: { create(o: unknown): { write(b: Buffer): void; execute(): void; read(): HpackHeader | null } } }).decompressor.create({ table: { maxSize: 4096 } });
  d.write(block);
  d.execute();
  const out: HpackHeader[] = [];
  for (let h = d.read(); h !== null; h = d.read()) out.push(h);
  return out;
}

/** What Node would receive from the transform after the client wrote `chunks` (each written separately). */
async function through(chunks: Buffer[]): Promise<Buffer> {
  const socket = new PassThrough();
  const wrapped = withAcceptedAuthority(socket);
  const received: Buffer[] = [];
  wrapped.on('data', (c: Buffer) => received.push(c));
  for (const c of chunks) socket.emit('data', c);
  await new Promise((r) => setImmediate(r));
  wrapped.destroy();
  return Buffer.concat(received);
}

describe('isAcceptedAuthority (what nghttp2 accepts)', () => {
  it.each(['localhost', 'localhost:443', '127.0.0.1', '[::1]:80', 'user@host', 'a%20b', ''])('accepts %p', (a) => {
    expect(isAcceptedAuthority(a)).toBe(true);
  });
  it.each(['/var/run/secrets-store-csi-providers/azure.sock', 'C:\\k\\azure.sock', 'a b', 'host/x'])('refuses %p', (a) => {
    expect(isAcceptedAuthority(a)).toBe(false);
  });
});

describe('encodeWithoutIndexing', () => {
  it('round-trips through an HPACK decoder, long values and sensitive fields included', () => {
    const headers: HpackHeader[] = [
      { name: ':method', value: 'POST', neverIndex: false },
      { name: ':authority', value: 'localhost', neverIndex: false },
      { name: 'x-long', value: 'v'.repeat(70_000), neverIndex: false },
      { name: 'authorization', value: 'secret', neverIndex: true },
      { name: 'x-bytes', value: '\u00ff\u0001', neverIndex: false },
    ];
    expect(decodeAll(encodeWithoutIndexing(headers))).toEqual(headers);
  });
});

describe('withAcceptedAuthority', () => {
  const compressor = () => (hpack as unknown as { compressor: { create(o: unknown): { write(h: unknown[]): void; read(): Buffer } } }).compressor.create({ table: { size: 4096 } });

  it('passes a connection with a valid authority through byte for byte, split anywhere', async () => {
    const c = compressor();
    c.write([{ name: ':method', value: 'POST' }, { name: ':authority', value: 'localhost' }]);
    const bytes = Buffer.concat([PREFACE, frame(0x4, 0, 0, Buffer.alloc(0)), frame(0x1, 0x4, 1, c.read()), frame(0x0, 0x1, 1, Buffer.from('data'))]);
    const pieces = [bytes.subarray(0, 5), bytes.subarray(5, 40), bytes.subarray(40)];
    expect(await through(pieces)).toEqual(bytes);
  });

  it('rewrites a socket-path authority in every request, following the client\'s dynamic table', async () => {
    const c = compressor();
    const block = (path: string): Buffer => {
      c.write([{ name: ':method', value: 'POST' }, { name: ':path', value: path }, { name: ':authority', value: '/run/azure.sock' }]);
      return c.read();
    };
    const first = block('/v1alpha1.CSIDriverProvider/Mount');
    const second = block('/v1alpha1.CSIDriverProvider/Mount'); // all indexed now: refers to the first block's entries
    const bytes = Buffer.concat([PREFACE, frame(0x1, 0x4 | 0x1, 1, first), frame(0x1, 0x4, 3, second)]);
    const out = await through([bytes]);
    expect(out.subarray(0, PREFACE.length)).toEqual(PREFACE);
    let offset = PREFACE.length;
    const blocks: Array<{ flags: number; stream: number; headers: HpackHeader[] }> = [];
    while (offset < out.length) {
      const length = out.readUIntBE(offset, 3);
      blocks.push({ flags: out[offset + 4]!, stream: out.readUInt32BE(offset + 5), headers: decodeAll(out.subarray(offset + 9, offset + 9 + length)) });
      offset += 9 + length;
    }
    expect(blocks.map((b) => [b.stream, b.flags])).toEqual([[1, 0x5], [3, 0x4]]);
    for (const b of blocks) {
      expect(b.headers.map((h) => [h.name, h.value])).toEqual([
        [':method', 'POST'],
        [':path', '/v1alpha1.CSIDriverProvider/Mount'],
        [':authority', 'localhost'],
      ]);
    }
  });

  it('passes a header block too large to repair through as sent, HEADERS and every CONTINUATION', async () => {
    const headers = frame(0x1, 0, 1, Buffer.alloc(16_000, 0x41));
    const continuations = Array.from({ length: 17 }, (_, i) => frame(0x9, i === 16 ? 0x4 : 0, 1, Buffer.alloc(16_000, 0x42)));
    const bytes = Buffer.concat([PREFACE, headers, ...continuations]);
    expect(await through([bytes])).toEqual(bytes);
  });

  it('passes what is not HTTP/2 through untouched', async () => {
    const bytes = Buffer.from('GET / HTTP/1.1\r\nHost: /x\r\n\r\n');
    expect(await through([bytes])).toEqual(bytes);
  });
});
