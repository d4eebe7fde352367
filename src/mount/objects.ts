import { isAlias, isScalar, parseDocument, visit, type Node } from 'yaml';
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
/**
 * Bounds that keep one SecretProviderClass from holding the node's provider (every mount and /healthz wait while
 * YAML is parsed): real `objects` texts are a few KB, the largest seen tens of KB with a hundred objects.
 */
export const MAX_OBJECTS_BYTES = 128 * 1024;
/** Objects (files, counting every version of a history object) one mount may fetch. */
export const MAX_OBJECT_FILES = 1000;
/**
 * YAML aliases are how "billion laughs" bombs work; the reference (yaml.v3) resolves them, so do we, up to this many
 * alias expansions relative to the document (the yaml library's measure).
 */
const MAX_ALIAS_COUNT = 100;

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
  if (Buffer.byteLength(yamlText) > MAX_OBJECTS_BYTES) {
    throw invalidArgument(
      `objects is ${Math.ceil(Buffer.byteLength(yamlText) / 1024)} KiB, above the limit of ${MAX_OBJECTS_BYTES / 1024} KiB: ` +
        'split the objects over several SecretProviderClasses',
    );
  }
  const root = parseYaml(yamlText, 'objects');
  if (root === null || root === undefined) return { objects: [], unknownFields: [] };
  if (!isMapping(root)) {
    throw invalidArgument('objects must be a YAML mapping with an "array" list, e.g. objects: |\n  array:\n    - |\n      objectName: …');
  }
  const array = root['array'];
  if (array === undefined || array === null || array === '') return { objects: [], unknownFields: [] };
  if (!Array.isArray(array)) throw invalidArgument('objects.array must be a YAML list of object entries');
  if (array.length > MAX_OBJECT_FILES) {
    throw invalidArgument(`objects.array has ${array.length} entries, above the limit of ${MAX_OBJECT_FILES} per mount: split them over several SecretProviderClasses`);
  }

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
  const files = objects.reduce((n, o) => n + Math.max(1, o.versionHistory), 0);
  if (files > MAX_OBJECT_FILES) {
    throw invalidArgument(
      `objects ask for ${files} files (objects and their objectVersionHistory versions), above the limit of ` +
        `${MAX_OBJECT_FILES} per mount: lower objectVersionHistory or split the objects over several SecretProviderClasses`,
    );
  }
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
  // uniqueKeys off: the library's own check compares every key with every other (20,000 keys held the event loop for
  // seconds); duplicateKey below does it with a set. merge: `<<: *anchor` as yaml.v3 (the reference) reads it.
  const doc = parseDocument(text, { schema: 'failsafe', uniqueKeys: false, merge: true, prettyErrors: false });
  if (doc.errors.length > 0) {
    const first = doc.errors[0]!;
    const line = first.linePos?.[0]?.line;
    throw invalidArgument(`${where} is not valid YAML${line ? ` (line ${line})` : ''}: ${first.code.toLowerCase()}`);
  }
  const duplicate = duplicateKey(doc.contents);
  if (duplicate !== undefined) {
    throw invalidArgument(`${where} is not valid YAML: the key ${JSON.stringify(duplicate.slice(0, 100))} appears twice in one mapping`);
  }
  try {
    return doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch {
    // The library's message is about its own limits; ours says what to change.
    throw invalidArgument(
      `${where} uses YAML aliases that expand to too much (more than ${MAX_ALIAS_COUNT} alias expansions): write the ` +
        'entries out, or use fewer anchors and aliases',
    );
  }
}

/** The first key that appears twice in one mapping of the document (merge keys excepted), in one pass. */
function duplicateKey(root: Node | null): string | undefined {
  let found: string | undefined;
  visit(root, {
    Map(_, map) {
      const seen = new Set<string>();
      for (const pair of map.items) {
        const key = isScalar(pair.key) ? String(pair.key.value) : isAlias(pair.key) ? `*${pair.key.source}` : undefined;
        if (key === undefined || key === '<<') continue;
        if (seen.has(key)) {
          found = key;
          return visit.BREAK;
        }
        seen.add(key);
      }
      return undefined;
    },
  });
  return found;
}

function isMapping(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
