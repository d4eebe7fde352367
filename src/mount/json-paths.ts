/**
 * `jsonPaths`: fields of a JSON secret as files of their own, each chosen by a JMESPath expression.
 *
 * JMESPath because it is what AWS's provider (`jmesPath`) and its users already write, and it has a specification with
 * a compliance suite, so an expression means the same here as there. The library is @jmespath-community/jmespath:
 * maintained, typed, no dependencies, passes the specification's compliance tests (jmespath.js, the other candidate,
 * has had no release since 2022). It implements the community edition, a superset; we accept only the original
 * specification (no `let`, arithmetic or the added string functions), so an expression that mounts here also works with
 * AWS's go-jmespath, and none can build a large value (`pad_left` with a huge width) from a small secret.
 */
import { compile, TreeInterpreter, type JSONValue } from '@jmespath-community/jmespath';

/** Longer than any path a person writes; keeps the parse of a hostile one short. */
export const MAX_JSON_PATH_LENGTH = 512;
/**
 * Multi-select lists and hashes are the one way an expression makes its result larger than its input (`[@,@,@][]`
 * repeated doubles it each time); the product of their widths bounds how much larger.
 */
const MAX_SELECT_GROWTH = 64;

/** The functions of the JMESPath specification (what go-jmespath, used by AWS's provider, implements). */
const SPEC_FUNCTIONS = new Set([
  'abs', 'avg', 'ceil', 'contains', 'ends_with', 'floor', 'join', 'keys', 'length', 'map', 'max', 'max_by', 'merge',
  'min', 'min_by', 'not_null', 'reverse', 'sort', 'sort_by', 'starts_with', 'sum', 'to_array', 'to_number',
  'to_string', 'type', 'values',
]);
/** Node types of the community edition that the original specification does not have. */
const EXTENSIONS: Record<string, string> = {
  LetExpression: 'let expressions',
  Binding: 'let expressions',
  Variable: '$variables',
  Ternary: 'the ?: operator',
  Arithmetic: 'arithmetic',
  Unary: 'arithmetic',
  Root: 'the $ root reference',
};

type Node = { type?: unknown; name?: unknown; children?: unknown };

/** Why `path` cannot be used (a sentence fragment), or undefined when it can. Never touches a secret. */
export function checkJsonPath(path: string): string | undefined {
  if (path.length > MAX_JSON_PATH_LENGTH) return `is longer than ${MAX_JSON_PATH_LENGTH} characters`;
  let ast: unknown;
  try {
    ast = compile(path);
  } catch (err) {
    // The parser's message is about the expression (the user's own text), never about a secret.
    return `is not a JMESPath expression (${String((err as Error).message).slice(0, 120)})`;
  }
  let growth = 1;
  const stack: unknown[] = [ast];
  while (stack.length > 0) {
    const node = stack.pop();
    if (Array.isArray(node)) {
      stack.push(...(node as unknown[]));
      continue;
    }
    if (typeof node !== 'object' || node === null) continue;
    const { type, name, children } = node as Node;
    if (typeof type === 'string' && EXTENSIONS[type]) return `uses ${EXTENSIONS[type]}, which JMESPath's specification does not have`;
    if (type === 'Function' && (typeof name !== 'string' || !SPEC_FUNCTIONS.has(name))) {
      return `calls ${JSON.stringify(String(name).slice(0, 40))}, which is not a function of JMESPath's specification`;
    }
    if ((type === 'MultiSelectList' || type === 'MultiSelectHash') && Array.isArray(children)) {
      growth *= Math.max(1, children.length);
      if (growth > MAX_SELECT_GROWTH) return `selects too many values at once (multi-selects multiply to more than ${MAX_SELECT_GROWTH})`;
    }
    if (type !== 'Literal') for (const value of Object.values(node)) if (typeof value === 'object') stack.push(value);
  }
  return undefined;
}

/** What one expression gives for a secret's parsed JSON: the file's text, or why there is none (never the value). */
export type Extraction = { text: string } | { problem: string };

export function extractJsonPath(document: JSONValue, path: string): Extraction {
  let result: JSONValue;
  try {
    result = TreeInterpreter.search(compile(path), document);
  } catch {
    // The library's runtime messages may describe the data; ours names only the cause's kind.
    return { problem: 'could not be evaluated on the secret (a function got a value of the wrong type)' };
  }
  if (result === null || result === undefined) return { problem: 'matches nothing in the secret' };
  if (typeof result === 'string') return { text: result };
  if (typeof result === 'number' || typeof result === 'boolean') return { text: JSON.stringify(result) };
  return { problem: `selects ${Array.isArray(result) ? 'a list' : 'an object'}, not a single value: select one field of it` };
}
