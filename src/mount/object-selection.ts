/**
 * Entries of `objects` that select secrets instead of naming one: by name prefix (objectNamePrefix), by an RE2
 * pattern (objectNameRegex) and by tags (objectTags), all of which must match. The matching secrets are listed at
 * mount time (selected-secrets.ts); this module checks the entry up front and holds the pure rules: which listed
 * secret matches, and the file each one is written to.
 *
 * Patterns are RE2 (re2js): matching is linear in the name's length whatever the pattern, so a hostile
 * SecretProviderClass cannot stall the node's provider with a backtracking pattern as it could with JavaScript's
 * RegExp. re2js is a maintained pure-JS port of RE2/J (no native build, no dependencies); RE2 is also the syntax Go's
 * regexp (External Secrets' `find.name.regexp`) and Key Vault users already write.
 */
import type { RE2JS as RE2JSType } from 're2js';
import { invalidArgument } from '../errors';
import { checkFilePath, normalizeFilePath } from './paths';
import type { SecretSelection } from '../spec/types';

// Loaded on the first pattern (about 260 kB of source), so a provider whose classes use none never parses it.
let re2js: typeof RE2JSType | undefined;
function RE2(): typeof RE2JSType {
  re2js ??= (require('re2js') as { RE2JS: typeof RE2JSType }).RE2JS;
  return re2js;
}

/** The fields that make an entry a selection. */
export const SELECTION_FIELDS = ['objectNamePrefix', 'objectNameRegex', 'objectTags'] as const;
/** Further fields only a selection has. */
export const SELECTION_ONLY_FIELDS = ['maxObjects', 'fileNameTemplate'] as const;
/** What maxObjects is when not given: enough for a service's handful of secrets, too few to read a vault by mistake. */
export const DEFAULT_MAX_OBJECTS = 10;
/** The most maxObjects may be: every selected secret is one more read of the vault at every mount and rotation. */
export const MAX_OBJECTS_CEILING = 100;
/** Longer than any useful pattern over names of at most 127 characters; keeps the compiled program small. */
export const MAX_REGEX_LENGTH = 256;
/** Key Vault's own limits: 15 tags per secret, names up to 512 characters, values up to 256. */
export const MAX_SELECTION_TAGS = 15;
const MAX_TAG_NAME_LENGTH = 512;
const MAX_TAG_VALUE_LENGTH = 256;
/** Key Vault object names: letters, digits and dashes. */
const NAME_PREFIX = /^[0-9A-Za-z-]{1,127}$/;
const PLACEHOLDER = /\{([^{}]*)\}/g;
const PLACEHOLDERS = new Set(['name', 'nameWithoutPrefix']);
/** Fields of a single-object entry that mean nothing for a selection; each would be silently wrong, so each fails. */
const NOT_FOR_SELECTION: Record<string, string> = {
  objectName: 'an entry reads either one named object (objectName) or the secrets that match, not both',
  objectVersion: 'a selection reads the current version of each secret',
  objectVersionHistory: 'a selection reads the current version of each secret',
  jsonPaths: 'the selected secrets are not known up front, so neither are their JSON fields',
  writeObject: 'a selection always writes each selected secret',
  optional: 'a selection that matches nothing writes no file and does not fail, so it needs no optional',
};

/** Whether an entry's fields make it a selection. */
export function isSelectionEntry(fields: Record<string, unknown>): boolean {
  return SELECTION_FIELDS.some((f) => fields[f] !== undefined && fields[f] !== null && fields[f] !== '');
}

/**
 * Checks a selection entry's own fields. `field` reads a single-value field (trimmed, '' when absent); `where` names
 * the entry in messages. Tag values are never quoted in a message: they are the user's data, like the secrets.
 */
export function parseSelection(fields: Record<string, unknown>, where: string, field: (name: string) => string): SecretSelection {
  for (const [name, why] of Object.entries(NOT_FOR_SELECTION)) {
    if (fields[name] !== undefined && fields[name] !== null && fields[name] !== '') {
      throw invalidArgument(`${where}: ${name} cannot be used with ${SELECTION_FIELDS.join('/')}: ${why}; remove ${name}`);
    }
  }
  const type = field('objectType').toLowerCase();
  if (type && type !== 'secret') {
    throw invalidArgument(
      `${where}: objectType "${field('objectType').slice(0, 20)}" cannot be selected by prefix, pattern or tags: only ` +
        'secrets are (a certificate is selected through its secret): use objectType secret or leave it out',
    );
  }

  const namePrefix = field('objectNamePrefix');
  if (namePrefix && !NAME_PREFIX.test(namePrefix)) {
    throw invalidArgument(
      `${where}: objectNamePrefix "${namePrefix.slice(0, 140)}" can never match a Key Vault secret name (1-127 letters, ` +
        'digits and dashes): use the start of the names, e.g. objectNamePrefix: app-',
    );
  }
  const nameRegex = field('objectNameRegex');
  if (nameRegex) {
    const problem = checkNameRegex(nameRegex);
    if (problem) throw invalidArgument(`${where}: objectNameRegex ${problem}`);
  }
  const tags = parseTags(fields['objectTags'], where);

  const maxText = field('maxObjects');
  let maxObjects = DEFAULT_MAX_OBJECTS;
  if (maxText) {
    maxObjects = /^\+?[0-9]{1,6}$/.test(maxText) ? Number(maxText) : Number.NaN;
    if (!Number.isInteger(maxObjects) || maxObjects < 1 || maxObjects > MAX_OBJECTS_CEILING) {
      throw invalidArgument(
        `${where}: maxObjects "${maxText.slice(0, 20)}" is not a count from 1 to ${MAX_OBJECTS_CEILING}: set the most ` +
          `secrets the entry may select (default ${DEFAULT_MAX_OBJECTS})`,
      );
    }
  }

  const alias = field('objectAlias');
  if (!alias && !namePrefix) {
    throw invalidArgument(
      `${where}: objectAlias is required with objectNameRegex or objectTags alone: the folder the selected secrets are ` +
        'written to, e.g. objectAlias: app',
    );
  }
  const folder = normalizeFilePath(alias || namePrefix);
  const folderProblem = checkFilePath(folder);
  if (folderProblem) throw invalidArgument(`${where}: ${alias ? `objectAlias "${folder.slice(0, 200)}"` : 'objectNamePrefix'} ${folderProblem}`);

  const fileNameTemplate = field('fileNameTemplate') || '{name}';
  const templateProblem = checkTemplate(fileNameTemplate, namePrefix, folder);
  if (templateProblem) throw invalidArgument(`${where}: fileNameTemplate "${fileNameTemplate.slice(0, 200)}" ${templateProblem}`);

  return { namePrefix, nameRegex, tags, maxObjects, folder, fileNameTemplate, criteria: describeCriteria(namePrefix, nameRegex, tags) };
}

/** Why a pattern cannot be used, or undefined. */
export function checkNameRegex(pattern: string): string | undefined {
  if (pattern.length > MAX_REGEX_LENGTH) return `is ${pattern.length} characters, above the limit of ${MAX_REGEX_LENGTH}: shorten it`;
  try {
    RE2().compile(pattern);
    return undefined;
  } catch (err) {
    // The library's reason names the construct ("missing closing )", "invalid repeat count"); RE2 has no lookaround
    // or backreferences, which is what keeps matching linear.
    const reason = err instanceof Error ? err.message.replace(/^error parsing regexp: /, '').split(':')[0]!.slice(0, 80) : 'invalid';
    return (
      `${JSON.stringify(pattern.slice(0, 100))} is not an RE2 regular expression (${reason}): RE2 has no lookaround ` +
      'or backreferences; e.g. ^app-(db|cache)-'
    );
  }
}

/** A compiled matcher for one selection (compiled per mount: specs cross threads as plain data). */
export interface SelectionMatcher {
  matches(secret: { name: string; tags: Record<string, string> }): boolean;
}

export function selectionMatcher(selection: SecretSelection): SelectionMatcher {
  const prefix = selection.namePrefix.toLowerCase();
  const regex = selection.nameRegex ? RE2().compile(selection.nameRegex) : undefined;
  const tags = Object.entries(selection.tags);
  return {
    matches: ({ name, tags: secretTags }) =>
      name.toLowerCase().startsWith(prefix) &&
      (regex === undefined || regex.test(name)) &&
      tags.every(([key, value]) => Object.prototype.hasOwnProperty.call(secretTags, key) && secretTags[key] === value),
  };
}

/** Why a listed secret is not read although it matches, or undefined: disabled, expired or not yet valid. */
export function unusableReason(secret: { enabled: boolean; expiresOn: Date | undefined; notBefore: Date | undefined }, now: number): string | undefined {
  if (!secret.enabled) return 'disabled';
  if (secret.expiresOn !== undefined && secret.expiresOn.getTime() <= now) return 'expired';
  if (secret.notBefore !== undefined && secret.notBefore.getTime() > now) return 'not yet valid';
  return undefined;
}

/** The volume path a selected secret is written to, or the reason it cannot be (checked like every other path). */
export function selectedFilePath(selection: SecretSelection, name: string): { path: string } | { problem: string } {
  const withoutPrefix = name.slice(selection.namePrefix.length);
  const rendered = selection.fileNameTemplate.replace(PLACEHOLDER, (_, key: string) => (key === 'name' ? name : withoutPrefix));
  const path = normalizeFilePath(`${selection.folder}/${rendered}`);
  const problem = checkFilePath(path);
  if (problem || path === selection.folder) return { problem: `its file "${path.slice(0, 200)}" ${problem ?? 'is the folder itself'}` };
  return { path };
}

function checkTemplate(template: string, namePrefix: string, folder: string): string | undefined {
  const keys = [...template.matchAll(PLACEHOLDER)].map((m) => m[1]!);
  const unknown = keys.find((k) => !PLACEHOLDERS.has(k));
  if (unknown !== undefined) return `has the unknown placeholder {${unknown.slice(0, 40)}}: use {name} or {nameWithoutPrefix}`;
  if (keys.length === 0) return 'has no {name} or {nameWithoutPrefix}, so every selected secret would write the same file';
  if (keys.includes('nameWithoutPrefix') && !namePrefix) return 'uses {nameWithoutPrefix} without objectNamePrefix: use {name}';
  if (/[{}]/.test(template.replace(PLACEHOLDER, ''))) return 'has an unmatched { or }';
  // A name of the longest kind shows whether every name fits the path rules.
  const sample = selectedFilePath(
    { namePrefix, nameRegex: '', tags: {}, maxObjects: 1, folder, fileNameTemplate: template, criteria: '' },
    `${namePrefix}${'a'.repeat(Math.max(1, 127 - namePrefix.length))}`,
  );
  return 'problem' in sample ? `does not give a valid path: ${sample.problem}` : undefined;
}

function parseTags(value: unknown, where: string): Record<string, string> {
  if (value === undefined || value === null || value === '') return {};
  const example = 'e.g. objectTags:\n  app: shop\n  env: prod';
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw invalidArgument(`${where}: objectTags must be a mapping of tag names to values, ${example}`);
  }
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length > MAX_SELECTION_TAGS) {
    throw invalidArgument(`${where}: objectTags has ${entries.length} tags, above Key Vault's ${MAX_SELECTION_TAGS} per secret: no secret could match`);
  }
  const tags: Record<string, string> = {};
  for (const [key, tagValue] of entries) {
    const name = JSON.stringify(key.slice(0, 60));
    if (key === '' || key.length > MAX_TAG_NAME_LENGTH) {
      throw invalidArgument(`${where}: objectTags tag name ${name} must be 1-${MAX_TAG_NAME_LENGTH} characters`);
    }
    if (typeof tagValue !== 'string') {
      // The failsafe schema reads every scalar as text; a missing value is null, a nested list or map an object.
      throw invalidArgument(`${where}: objectTags tag ${name} must have one text value (quote it), not an empty value, list or map`);
    }
    if (tagValue.length > MAX_TAG_VALUE_LENGTH) {
      throw invalidArgument(`${where}: objectTags tag ${name} has a value longer than Key Vault's ${MAX_TAG_VALUE_LENGTH} characters: no secret could match`);
    }
    tags[key] = tagValue;
  }
  return tags;
}

/** The entry's criteria for messages and logs: the prefix, the pattern and the tag names, never the tag values. */
function describeCriteria(namePrefix: string, nameRegex: string, tags: Record<string, string>): string {
  const parts: string[] = [];
  if (namePrefix) parts.push(`objectNamePrefix "${namePrefix}"`);
  if (nameRegex) parts.push(`objectNameRegex ${JSON.stringify(nameRegex.slice(0, 60))}`);
  const tagNames = Object.keys(tags);
  if (tagNames.length > 0) parts.push(`objectTags ${tagNames.map((k) => JSON.stringify(k.slice(0, 40))).join(', ')}`);
  return `secrets by ${parts.join(' and ')}`;
}
