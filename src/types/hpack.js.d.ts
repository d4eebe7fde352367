// hpack.js ships no types; the provider uses only its decompressor (see server/h2-authority.ts).
declare module 'hpack.js' {
  interface DecompressorOptions {
    table: { maxSize: number };
  }
  const hpack: { decompressor: { create(options: DecompressorOptions): import('../server/h2-authority').HpackDecompressor } };
  export default hpack;
}
