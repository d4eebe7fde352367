import type * as Yaml from 'yaml';
import type { Node } from 'yaml';
import { invalidArgument } from '../errors';
import { goBool } from '../util/go-bool';
import { checkFilePath, FilePathRegistry, normalizeFilePath } from './paths';
import { checkJsonPath } from './json-paths';
import { isSelectionEntry, parseSelection, SELECTION_FIELDS, SELECTION_ONLY_FIELDS } from './object-selection';
import type { JsonPathSpec, ObjectEncoding, ObjectFormat, ObjectSpec, ObjectType } from '../spec/types';
import { VAULT_NAME, VAULT_NAME_RULE } from './vault-name';
import { yamlInt32 } from './yaml-int';

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
  'optional',
  'keyvaultName',
  'jsonPaths',
  'writeObject',
  'writeTags',
  'writeAttributes',
  ...SELECTION_FIELDS,
  ...SELECTION_ONLY_FIELDS,
]);
export const TAGS_FILE_SUFFIX = '.tags.json';
export const ATTRIBUTES_FILE_SUFFIX = '.attributes.json';
const JSON_PATH_FIELDS = new Set(['path', 'objectAlias', 'filePermission']);
/** Extractions one object may have: far more than a JSON secret has fields worth a file. */
export const MAX_JSON_PATHS = 100;
/**
 * Fields this provider added to what the reference knows. The reference ignores unknown fields, so a misspelt old
 * field only warns (manifests mount today with it); a misspelt new field ("keyVaultName", "Optional") would silently
 * read the wrong vault or fail on a deleted secret, and no manifest depends on it yet, so it fails.
 */
const OPT_IN_FIELDS = ['optional', 'keyvaultName', 'jsonPaths', 'writeObject', 'writeTags', 'writeAttributes', ...SELECTION_FIELDS, ...SELECTION_ONLY_FIELDS];
/** Key Vault object names: 1-127 letters, digits and dashes. */
const OBJECT_NAME = /^[0-9A-Za-z-]{1,127}$/;
/** Key Vault version ids are 32 hex digits; we only insist on the character set and leave the rest to the vault. */
const OBJECT_VERSION = /^[0-9A-Za-z]{1,64}$/;
/**
 * The most versions one history object writes. The reference has no bound (any 32-bit number), and a manifest may
 * ask for "many" meaning all of them, so a larger number is lowered to this one with a warning instead of failing.
 * The bound is Key Vault's own: a vault serves about 4,000 reads per 10 seconds (shared by every client), so a longer
 * history would spend a whole throttling window of the vault on one object of one mount. It also bounds the file
 * names we check up front.
 */
export const MAX_VERSION_HISTORY = 4000;

/**
 * yaml.v3 reads `null`, `Null`, `NULL`, `~` and an empty value as "not set" when they are not quoted (Helm's toYaml
 * writes `objectAlias: null`); quoted, they are the text. The failsafe schema we read with (so `0644` stays text)
 * knows no null, so this tag adds exactly that rule: custom tags only ever match plain scalars.
 */
const YAML_NULL = { tag: 'tag:yaml.org,2002:null', default: true, test: /^(?:~|null|Null|NULL)?$/, resolve: () => null };
/**
 * Bounds that keep one SecretProviderClass from holding the node's provider (every mount and /healthz wait while
 * YAML is parsed): real `objects` texts are a few KB, the largest seen tens of KB with a hundred objects.
 */
export const MAX_OBJECTS_BYTES = 128 * 1024;
/** Object entries one mount may name. */
export const MAX_OBJECTS = 1000;
/**
 * Files one mount may write, counting every version of a history object: one history object at the version bound
 * fits many times over, a thousand objects each asking for thousands of versions does not.
 */
export const MAX_OBJECT_FILES = 10_000;
/**
 * YAML aliases are how "billion laughs" bombs work; the reference (yaml.v3) resolves them, so do we, up to this many
 * alias expansions relative to the document (the yaml library's measure).
 */
const MAX_ALIAS_COUNT = 100;

export interface ParsedObjects {
  objects: ObjectSpec[];
  /** Fields we do not know, kept for a warning (the reference silently ignores them; so do we, but say so). */
  unknownFields: string[];
  /** Entries that mount as the reference mounts them but not as written (see parseObject), each worth a log line. */
  warnings: string[];
}

/**
 * Parses the `objects` parameter: a YAML mapping whose `array` is a list of strings, each itself a YAML mapping of
 * one object's fields. The YAML is read with the failsafe schema so every scalar stays the text the user
 * wrote (`filePermission: 0644` must stay "0644", not become the number 420).
 */
export function parseObjects(yamlText: string): ObjectSpec[] {
  return parseObjectsDetailed(yamlText).objects;
}

export function parseObjectsDetailed(yamlText: string): ParsedObjects {
  if (yamlText.trim() === '') return { objects: [], unknownFields: [], warnings: [] };
  if (Buffer.byteLength(yamlText) > MAX_OBJECTS_BYTES) {
    throw invalidArgument(
      `objects is ${Math.ceil(Buffer.byteLength(yamlText) / 1024)} KiB, above the limit of ${MAX_OBJECTS_BYTES / 1024} KiB: ` +
        'split the objects over several SecretProviderClasses',
    );
  }
  const root = parseYaml(yamlText, 'objects');
  if (root === null || root === undefined) return { objects: [], unknownFields: [], warnings: [] };
  if (!isMapping(root)) {
    throw invalidArgument('objects must be a YAML mapping with an "array" list, e.g. objects: |\n  array:\n    - |\n      objectName: …');
  }
  const array = root['array'];
  if (array === undefined || array === null || array === '') return { objects: [], unknownFields: [], warnings: [] };
  if (!Array.isArray(array)) throw invalidArgument('objects.array must be a YAML list of object entries');
  if (array.length > MAX_OBJECT_FILES) {
    throw invalidArgument(`objects.array has ${array.length} entries, above the limit of ${MAX_OBJECT_FILES} per mount: split them over several SecretProviderClasses`);
  }

  const paths = new FilePathRegistry();
  const unknownFields: string[] = [];
  const warnings: string[] = [];
  const objects = array.map((entry: unknown, index: number) => {
    const where = `objects.array[${index}]`;
    const fields = typeof entry === 'string' ? parseYaml(entry, where) : entry;
    if (!isMapping(fields)) {
      throw invalidArgument(`${where} must be a YAML mapping with at least objectName and objectType`);
    }
    for (const key of Object.keys(fields)) {
      if (KNOWN_FIELDS.has(key)) continue;
      // AWS's provider spells it jmesPath (or jmespath): who migrates from there gets told ours.
      const meant = OPT_IN_FIELDS.find((f) => f.toLowerCase() === key.toLowerCase() || (f === 'jsonPaths' && /^jmespaths?$/i.test(key)));
      if (meant) throw invalidArgument(`${where}: "${key.slice(0, 40)}" is not a field: the field is spelt ${meant}`);
      unknownFields.push(`${where}.${key}`);
    }
    const object = parseObject(fields, index, warnings);
    for (const path of filesOf(object)) {
      const earlier = paths.claim(path, describeObject(object));
      if (earlier) warnings.push(shadowedWarning(path, earlier, describeObject(object)));
    }
    return object;
  });
  if (objects.length > MAX_OBJECTS) {
    throw invalidArgument(
      `objects has ${objects.length} entries, above the limit of ${MAX_OBJECTS} per mount: split the objects over ` +
        'several SecretProviderClasses',
    );
  }
  const files = objects.reduce((n, o) => n + (o.select ? o.select.maxObjects : Math.max(1, o.versionHistory)), 0);
  if (files > MAX_OBJECT_FILES) {
    throw invalidArgument(
      `objects ask for ${files} files (objects and their objectVersionHistory versions), above the limit of ` +
        `${MAX_OBJECT_FILES} per mount: lower objectVersionHistory or split the objects over several SecretProviderClasses`,
    );
  }
  return { objects, unknownFields, warnings };
}

/**
 * Two objects writing one path: the reference returns both files and the driver keeps the later one, so manifests
 * that do this mount today with the later object's content. We return the same file (mount-service drops the
 * earlier) and say which object is hidden.
 */
export function shadowedWarning(path: string, earlier: string, later: string): string {
  return (
    `${earlier} and ${later} both write the file "${path}": the volume gets ${later}'s (the later one), as with the ` +
    'reference provider; give one of them a different objectAlias'
  );
}

/** "objects.array[1] (secret "db-password")": how messages name an object (and its vault when it has its own). */
export function describeObject(object: Pick<ObjectSpec, 'index' | 'type' | 'name'> & Partial<Pick<ObjectSpec, 'vaultName' | 'select'>>): string {
  const vault = object.vaultName ? ` in Key Vault "${object.vaultName}"` : '';
  if (object.select) return `objects.array[${object.index}] (${object.select.criteria}${vault})`;
  return `objects.array[${object.index}] (${object.type} "${object.name}"${vault})`;
}

/**
 * The `object_version` id of an object: `<type>/<name>` as the reference writes it; an object with its own vault
 * `<type>/<vault>/<name>`, so the same name in two vaults gives two ids (a vault name has no "/").
 */
export function objectId(object: Pick<ObjectSpec, 'type' | 'name' | 'vaultName'>): string {
  return object.vaultName ? `${object.type}/${object.vaultName}/${object.name}` : `${object.type}/${object.name}`;
}

/** The files an object will produce, known before any fetch (separate .crt/.key files are added after it). */
export function filesOf(object: ObjectSpec): string[] {
  // A selection's files are known only once the vault has been listed (selected-secrets.ts checks them then).
  if (object.select) return [];
  if (object.versionHistory <= 1) {
    return [
      ...(object.writeObject ? [object.fileName] : []),
      ...object.jsonPaths.map((j) => j.fileName),
      ...(object.writeTags ? [`${object.fileName}${TAGS_FILE_SUFFIX}`] : []),
      ...(object.writeAttributes ? [`${object.fileName}${ATTRIBUTES_FILE_SUFFIX}`] : []),
    ];
  }
  return Array.from({ length: object.versionHistory }, (_, i) => `${object.fileName}/${i}`);
}

/** A field that must be one text value (absent or null = empty), trimmed; a list or map fails naming the field. */
function stringField(fields: Record<string, unknown>, name: string, where: string): string {
  const value = fields[name];
  if (value === undefined || value === null) return '';
  if (typeof value !== 'string') throw invalidArgument(`${where}: ${name} must be a single value, not a list or map`);
  return value.trim();
}

function parseObject(fields: Record<string, unknown>, index: number, warnings: string[]): ObjectSpec {
  const where = `objects.array[${index}]`;
  const field = (name: string): string => stringField(fields, name, where);

  // An entry that selects secrets by prefix, pattern or tags names none; the fields they share are read below.
  const select = isSelectionEntry(fields) ? parseSelection(fields, where, field) : undefined;
  const name = select ? '' : field('objectName');
  if (!select) {
    if (!name) throw invalidArgument(`${where}: objectName is required (or objectNamePrefix, objectNameRegex or objectTags to select secrets)`);
    if (!OBJECT_NAME.test(name)) {
      throw invalidArgument(
        `${where}: objectName "${name.slice(0, 140)}" is not a valid Key Vault object name (1-127 letters, digits and dashes)`,
      );
    }
  }
  const here = select ? `${where} (${select.criteria})` : `${where} ("${name}")`;

  const typeText = field('objectType').toLowerCase() || (select ? 'secret' : '');
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
    const read = yamlInt32(historyText);
    if (read === undefined) {
      throw invalidArgument(
        `${here}: objectVersionHistory "${historyText.slice(0, 20)}" is not a number: use the count of versions to ` +
          'write, e.g. 3 (1 or less writes only the current version)',
      );
    }
    versionHistory = Math.max(1, read);
    if (versionHistory > MAX_VERSION_HISTORY) {
      warnings.push(
        `${here}: objectVersionHistory ${historyText.slice(0, 20)} is lowered to ${MAX_VERSION_HISTORY}, the most ` +
          "versions one object writes (a vault's read limit per 10 seconds)",
      );
      versionHistory = MAX_VERSION_HISTORY;
    }
  }

  const formatText = field('objectFormat').toLowerCase();
  let format = formatText ? FORMATS.find((f) => f === formatText) : 'pem';
  if (!format) throw invalidArgument(`${here}: objectFormat "${field('objectFormat')}" is not supported: use pem or pfx`);
  if (format === 'pfx' && type !== 'secret') {
    // The reference refuses exactly "pfx" here but lets "PFX" (any other case) through and ignores it, so manifests
    // with it mount today: they keep mounting, with the PEM they got, and a warning.
    if (field('objectFormat') === 'pfx') {
      throw invalidArgument(`${here}: objectFormat pfx applies only to objectType secret (a certificate's secret)`);
    }
    warnings.push(
      `${here}: objectFormat "${field('objectFormat')}" is ignored for objectType ${type} (only a secret has a PFX ` +
        'form); the file is PEM, as with the reference provider: remove objectFormat',
    );
    format = 'pem';
  }

  const encodingText = field('objectEncoding').toLowerCase();
  const encoding = encodingText ? ENCODINGS.find((e) => e === encodingText) : 'utf-8';
  if (!encoding) {
    throw invalidArgument(`${here}: objectEncoding "${field('objectEncoding')}" is not supported: use utf-8, base64 or hex`);
  }
  if (encodingText && encoding !== 'utf-8' && type !== 'secret') {
    throw invalidArgument(`${here}: objectEncoding applies only to objectType secret`);
  }

  // The driver cleans each path before writing ("./a" and "a//b" are written as "a" and "a/b"), so do we.
  const fileName = select ? select.folder : normalizeFilePath(field('objectAlias') || name);
  const pathProblem = checkFilePath(fileName);
  if (pathProblem) {
    const source = field('objectAlias') ? `objectAlias "${fileName.slice(0, 200)}"` : 'objectName';
    throw invalidArgument(`${here}: ${source} ${pathProblem}`);
  }

  const vaultName = field('keyvaultName');
  if (vaultName && !VAULT_NAME.test(vaultName)) {
    throw invalidArgument(`${here}: keyvaultName "${vaultName.slice(0, 100)}" is not a valid Key Vault name: ${VAULT_NAME_RULE}`);
  }

  const jsonPaths = parseJsonPaths(fields['jsonPaths'], here, warnings);
  const writeObject = !field('writeObject') || parseBoolField(field('writeObject'), 'writeObject', here);
  if (jsonPaths.length > 0) {
    if (type !== 'secret') throw invalidArgument(`${here}: jsonPaths applies only to objectType secret (a JSON secret)`);
    if (versionHistory > 1) throw invalidArgument(`${here}: jsonPaths cannot be combined with objectVersionHistory: use one of them per entry`);
    if (format === 'pfx') throw invalidArgument(`${here}: jsonPaths cannot be combined with objectFormat pfx: a PFX is not JSON`);
  }
  const writeTags = parseBoolField(field('writeTags'), 'writeTags', here);
  const writeAttributes = parseBoolField(field('writeAttributes'), 'writeAttributes', here);
  if ((writeTags || writeAttributes) && versionHistory > 1) {
    throw invalidArgument(`${here}: ${writeTags ? 'writeTags' : 'writeAttributes'} cannot be combined with objectVersionHistory: use one of them per entry`);
  }
  if (!writeObject && jsonPaths.length === 0) {
    throw invalidArgument(`${here}: writeObject "false" without jsonPaths would write nothing: add jsonPaths or remove writeObject`);
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
    filePermission: parseFilePermission(field('filePermission'), here, warnings),
    optional: parseBoolField(field('optional'), 'optional', here),
    vaultName,
    jsonPaths,
    writeObject,
    writeTags,
    writeAttributes,
    ...(select ? { select } : {}),
  };
}

/** `jsonPaths`: a list of {path, objectAlias, filePermission}, each path a JMESPath expression checked here. */
function parseJsonPaths(value: unknown, here: string, warnings: string[]): JsonPathSpec[] {
  if (value === undefined || value === null || value === '') return [];
  const example = 'e.g. jsonPaths:\n  - path: credentials.password\n    objectAlias: db-pass';
  if (!Array.isArray(value)) throw invalidArgument(`${here}: jsonPaths must be a YAML list of {path, objectAlias}, ${example}`);
  if (value.length > MAX_JSON_PATHS) {
    throw invalidArgument(`${here}: jsonPaths has ${value.length} entries, above the limit of ${MAX_JSON_PATHS}: split the object over several entries`);
  }
  return value.map((entry: unknown, i: number) => {
    const where = `${here} jsonPaths[${i}]`;
    if (!isMapping(entry)) throw invalidArgument(`${where} must be a mapping with path and objectAlias, ${example}`);
    for (const key of Object.keys(entry)) {
      if (!JSON_PATH_FIELDS.has(key)) {
        throw invalidArgument(`${where}: "${key.slice(0, 40)}" is not a field of a jsonPaths entry: use path, objectAlias and filePermission`);
      }
    }
    const text = (name: string): string => stringField(entry, name, where);
    const path = text('path');
    if (!path) throw invalidArgument(`${where}: path is required: a JMESPath expression such as credentials.password`);
    const problem = checkJsonPath(path);
    if (problem) throw invalidArgument(`${where}: path ${JSON.stringify(path.slice(0, 100))} ${problem}`);
    const alias = text('objectAlias');
    if (!alias) throw invalidArgument(`${where}: objectAlias is required: the name of the file the value is written to`);
    const fileName = normalizeFilePath(alias);
    const pathProblem = checkFilePath(fileName);
    if (pathProblem) throw invalidArgument(`${where}: objectAlias "${fileName.slice(0, 200)}" ${pathProblem}`);
    return { path, fileName, filePermission: parseFilePermission(text('filePermission'), where, warnings) };
  });
}

/** A yes/no field, read as the reference reads its boolean parameters (Go's strconv.ParseBool). */
function parseBoolField(text: string, name: string, here: string): boolean {
  const value = text === '' ? false : goBool(text);
  if (value !== undefined) return value;
  throw invalidArgument(`${here}: ${name} "${text.slice(0, 20)}" is not a boolean: use "true" or "false"`);
}

/**
 * `filePermission` as octal text. What the reference does with each form, and what we do:
 * - octal digits, any number of leading zeros (`0600`, `00600`, `600`): that mode. Bits above 0777 (`04755`) never
 *   reach the file (the driver writes permission bits only), so we drop them too and say so;
 * - `0o600`: the reference fails to parse it and writes mode 0; we write 0600 (the intent is plain);
 * - anything else that is not octal (`0900`, `rw-r--r--`, `644.0`, a value beyond 32 bits): the reference writes the
 *   file with mode 0 (owner root, readable by root only) and the pod mounts. We do the same and warn, since failing
 *   would stop pods that run today, and mode 0 exposes nothing;
 * - a negative number: the reference passes it on, and the driver turns it into a world-writable mode with the
 *   set-id bits: refused.
 */
function parseFilePermission(text: string, here: string, warnings: string[]): number | undefined {
  if (!text) return undefined;
  const fix = 'use an octal mode such as "0644" or "0400"';
  if (text.startsWith('-')) {
    throw invalidArgument(
      `${here}: filePermission "${text.slice(0, 20)}" is negative; the reference provider would make the file ` +
        `world-writable: ${fix}`,
    );
  }
  const digits = text.replace(/^\+/, '').replace(/^0o/i, '');
  const mode = /^[0-7]+$/.test(digits) ? Number.parseInt(digits, 8) : Number.NaN;
  if (!Number.isFinite(mode) || mode > 2 ** 31 - 1) {
    warnings.push(
      `${here}: filePermission "${text.slice(0, 20)}" is not an octal file mode, so the file is written with mode 0 ` +
        `(readable by root only), as the reference provider does: ${fix}`,
    );
    return 0;
  }
  if (mode > 0o777) {
    warnings.push(
      `${here}: filePermission "${text.slice(0, 20)}" has bits above 0777, which the driver does not write: the file ` +
        `gets mode 0${(mode & 0o777).toString(8).padStart(3, '0')}`,
    );
  }
  return mode & 0o777;
}

/** The YAML library, loaded by the first mount rather than before the socket answers (dozens of modules). */
function yamlLibrary(): typeof Yaml {
  return require('yaml') as typeof Yaml;
}

function parseYaml(text: string, where: string): unknown {
  const { parseDocument } = yamlLibrary();
  // uniqueKeys off: the library's own check compares every key with every other (20,000 keys held the event loop for
  // seconds); duplicateKey below does it with a set. merge: `<<: *anchor` as yaml.v3 (the reference) reads it.
  const doc = parseDocument(text, { schema: 'failsafe', customTags: [YAML_NULL], uniqueKeys: false, merge: true, prettyErrors: false });
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
  const { isAlias, isScalar, visit } = yamlLibrary();
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
