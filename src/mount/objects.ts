import { parseDocument } from 'yaml';
import { invalidArgument } from '../errors';
import { checkFilePath, FilePathRegistry } from './paths';
import type { ObjectEncoding, ObjectFormat, ObjectSpec, ObjectType } from './types';

const OBJECT_TYPES: readonly ObjectType[] = ['secret', 'key', 'cert'];
const FORMATS: readonly ObjectFormat[] = ['pem', 'pfx'];
const ENCODINGS: readonly ObjectEncoding[] = ['utf-8', 'base64', 'hex'];
const KNOWN_FIELDS = new Set([
  'objectName',
  'objectType',
  'objectAlias',
  'objectVersion',
  'objectVersionHistory',
  'objectFormat',
  'objectEncoding',
  'filePermission',
]);
/** Key Vault object names: 1-127 letters, digits and dashes. */
const OBJECT_NAME = /^[0-9A-Za-z-]{1,127}$/;
/** Key Vault version ids are 32 hex digits; we only insist on the character set and leave the rest to the vault. */
const OBJECT_VERSION = /^[0-9A-Za-z]{1,64}$/;
/** More versions than this in one volume is a mistake, not a use case; it also bounds the listing work. */
export const MAX_VERSION_HISTORY = 200;

export interface ParsedObjects {
  objects: ObjectSpec[];
  /** Fields we do not know, kept for a warning (the reference silently ignores them; so do we, but say so). */
  unknownFields: string[];
}

/**
 * Parses the `objects` parameter: a YAML mapping whose `array` is a list of strings, each itself a YAML mapping of
 * one object's fields (CONTRACT §3). The YAML is read with the failsafe schema so every scalar stays the text the user
 * wrote (`filePermission: 0644` must stay "0644", not become the number 420).
 */
export function parseObjects(yamlText: string): ObjectSpec[] {
  return parseObjectsDetailed(yamlText).objects;
}

export function parseObjectsDetailed(yamlText: string): ParsedObjects {
  if (yamlText.trim() === '') return { objects: [], unknownFields: [] };
  const root = parseYaml(yamlText, 'objects');
  if (root === null || root === undefined) return { objects: [], unknownFields: [] };
  if (!isMapping(root)) {
    throw invalidArgument('objects must be a YAML mapping with an "array" list, e.g. objects: |\n  array:\n    - |\n      objectName: …');
  }
  const array = root['array'];
  if (array === undefined || array === null || array === '') return { objects: [], unknownFields: [] };
  if (!Array.isArray(array)) throw invalidArgument('objects.array must be a YAML list of object entries');

  const paths = new FilePathRegistry();
  const unknownFields: string[] = [];
  const objects = array.map((entry: unknown, index: number) => {
    const where = `objects.array[${index}]`;
    const fields = typeof entry === 'string' ? parseYaml(entry, where) : entry;
    if (!isMapping(fields)) {
      throw invalidArgument(`${where} must be a YAML mapping with at least objectName and objectType`);
    }
    for (const key of Object.keys(fields)) if (!KNOWN_FIELDS.has(key)) unknownFields.push(`${where}.${key}`);
    const object = parseObject(fields, index);
    for (const path of filesOf(object)) paths.claim(path, describeObject(object));
    return object;
  });
  return { objects, unknownFields };
}

/** "objects.array[1] (secret "db-password")": how messages name an object. */
export function describeObject(object: Pick<ObjectSpec, 'index' | 'type' | 'name'>): string {
  return `objects.array[${object.index}] (${object.type} "${object.name}")`;
}

/** The files an object will produce, known before any fetch (separate .crt/.key files are added after it). */
export function filesOf(object: ObjectSpec): string[] {
  if (object.versionHistory <= 1) return [object.fileName];
  return Array.from({ length: object.versionHistory }, (_, i) => `${object.fileName}/${i}`);
}

function parseObject(fields: Record<string, unknown>, index: number): ObjectSpec {
  const where = `objects.array[${index}]`;
  const field = (name: string): string => {
    const value = fields[name];
    if (value === undefined || value === null) return '';
    if (typeof value !== 'string') throw invalidArgument(`${where}: ${name} must be a single value, not a list or map`);
    return value.trim();
  };

  const name = field('objectName');
  if (!name) throw invalidArgument(`${where}: objectName is required`);
  if (!OBJECT_NAME.test(name)) {
    throw invalidArgument(
      `${where}: objectName "${name.slice(0, 140)}" is not a valid Key Vault object name (1-127 letters, digits and dashes)`,
    );
  }
  const here = `${where} ("${name}")`;

  const typeText = field('objectType').toLowerCase();
  if (!typeText) throw invalidArgument(`${here}: objectType is required: use secret, key or cert`);
  const type = OBJECT_TYPES.find((t) => t === typeText);
  if (!type) throw invalidArgument(`${here}: objectType "${field('objectType')}" is not supported: use secret, key or cert`);

  let version = field('objectVersion');
  if (version.toLowerCase() === 'latest') version = '';
  if (version && !OBJECT_VERSION.test(version)) {
    throw invalidArgument(`${here}: objectVersion "${version.slice(0, 70)}" is not a Key Vault version id`);
  }

  const historyText = field('objectVersionHistory');
  let versionHistory = 1;
  if (historyText) {
    if (!/^-?\d+$/.test(historyText)) {
      throw invalidArgument(`${here}: objectVersionHistory "${historyText.slice(0, 20)}" must be a whole number`);
    }
    versionHistory = Math.max(1, Number(historyText));
    if (versionHistory > MAX_VERSION_HISTORY) {
      throw invalidArgument(`${here}: objectVersionHistory ${historyText} is above the limit of ${MAX_VERSION_HISTORY}`);
    }
  }

  const formatText = field('objectFormat').toLowerCase();
  const format = formatText ? FORMATS.find((f) => f === formatText) : 'pem';
  if (!format) throw invalidArgument(`${here}: objectFormat "${field('objectFormat')}" is not supported: use pem or pfx`);
  if (format === 'pfx' && type !== 'secret') {
    throw invalidArgument(`${here}: objectFormat pfx applies only to objectType secret (a certificate's secret)`);
  }

  const encodingText = field('objectEncoding').toLowerCase();
  const encoding = encodingText ? ENCODINGS.find((e) => e === encodingText) : 'utf-8';
  if (!encoding) {
    throw invalidArgument(`${here}: objectEncoding "${field('objectEncoding')}" is not supported: use utf-8, base64 or hex`);
  }
  if (encodingText && encoding !== 'utf-8' && type !== 'secret') {
    throw invalidArgument(`${here}: objectEncoding applies only to objectType secret`);
  }

  const fileName = field('objectAlias') || name;
  const pathProblem = checkFilePath(fileName);
  if (pathProblem) {
    const source = field('objectAlias') ? `objectAlias "${fileName.slice(0, 200)}"` : 'objectName';
    throw invalidArgument(`${here}: ${source} ${pathProblem}`);
  }

  return {
    index,
    name,
    type,
    version,
    versionHistory,
    format,
    encoding,
    fileName,
    filePermission: parseFilePermission(field('filePermission'), here),
  };
}

function parseFilePermission(text: string, here: string): number | undefined {
  if (!text) return undefined;
  const digits = text.replace(/^0o/i, '');
  if (!/^[0-7]{1,4}$/.test(digits) || Number.parseInt(digits, 8) > 0o777) {
    throw invalidArgument(
      `${here}: filePermission "${text.slice(0, 20)}" is not an octal file mode: use a value such as "0644" or "0400"`,
    );
  }
  return Number.parseInt(digits, 8);
}

function parseYaml(text: string, where: string): unknown {
  const doc = parseDocument(text, { schema: 'failsafe', uniqueKeys: true, prettyErrors: false });
  if (doc.errors.length > 0) {
    const first = doc.errors[0]!;
    const line = first.linePos?.[0]?.line;
    throw invalidArgument(`${where} is not valid YAML${line ? ` (line ${line})` : ''}: ${first.code.toLowerCase()}`);
  }
  return doc.toJS({ maxAliasCount: 0 });
}

function isMapping(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
