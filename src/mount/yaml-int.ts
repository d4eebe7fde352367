/**
 * How the reference reads a number field of an object entry (`objectVersionHistory`, a 32-bit integer) out of YAML:
 * its YAML library (yaml.v3) resolves the plain text, and the decoder stores it into the integer field. Manifests
 * written for the reference rely on the result, so we read the same text the same way:
 * - underscores are dropped (`1_000`), then the text is a Go integer literal with an optional sign: decimal, `0x…`,
 *   `0o…`, `0b…`, and, as in YAML 1.1, a leading `0` for octal (`010` is 8);
 * - otherwise a decimal float (`2.5`, `1e3`, `.5`) is truncated toward zero (`2.5` is 2, `-0.5` is 0);
 * - anything else (`true`, `.inf`, a date, a word) or a value outside 32 bits fails there, so it fails here.
 * Unlike yaml.v3 we do not know whether the text was quoted (the reference fails on `"2"`); reading quoted digits as
 * the number they spell only accepts more, never changes a manifest that works there.
 */

const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
/** yaml.v3's float syntax for text that starts with a digit or a sign. */
const YAML_FLOAT = /^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$/;
/** Text that starts with '.' goes straight to Go's ParseFloat; of its forms only these are plausible here. */
const DOT_FLOAT = /^\.[0-9]+([eE][-+]?[0-9]+)?$/;

/** The 32-bit integer the reference reads from `text`, or undefined when it would fail to read it. */
export function yamlInt32(text: string): number | undefined {
  if (text.startsWith('.')) return DOT_FLOAT.test(text) ? toInt32(Math.trunc(Number(text))) : undefined;
  const plain = text.replace(/_/g, '');
  const integer = goIntegerLiteral(plain);
  if (integer !== undefined) {
    return integer >= INT64_MIN && integer <= INT64_MAX ? toInt32(Number(integer)) : undefined;
  }
  if (YAML_FLOAT.test(plain)) return toInt32(Math.trunc(Number(plain)) + 0); // + 0 turns -0 into 0
  return undefined;
}

function toInt32(value: number): number | undefined {
  return Number.isFinite(value) && value >= INT32_MIN && value <= INT32_MAX ? value : undefined;
}

/** Go's strconv.ParseInt with base 0 (without its underscore rules: the caller has dropped them), as a bigint. */
function goIntegerLiteral(text: string): bigint | undefined {
  const negative = text.startsWith('-');
  const unsigned = text.startsWith('-') || text.startsWith('+') ? text.slice(1) : text;
  const forms: Array<[RegExp, number, number]> = [
    [/^0[xX][0-9a-fA-F]+$/, 16, 2],
    [/^0[oO][0-7]+$/, 8, 2],
    [/^0[bB][01]+$/, 2, 2],
    [/^0[0-7]+$/, 8, 1],
    [/^[0-9]+$/, 10, 0],
  ];
  for (const [form, radix, prefix] of forms) {
    if (!form.test(unsigned)) continue;
    let value = 0n;
    for (const digit of unsigned.slice(prefix)) value = value * BigInt(radix) + BigInt(Number.parseInt(digit, radix));
    return negative ? -value : value;
  }
  return undefined;
}
