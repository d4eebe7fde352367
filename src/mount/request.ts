import { invalidArgument } from '../errors';

/** The MountRequest as it arrives on the wire (proto field names in camelCase). */
export interface RawMountRequest {
  attributes: string;
  secrets: string;
  targetPath: string;
  permission: string;
  currentObjectVersion: Array<{ id: string; version: string }>;
}

export interface DecodedMountRequest {
  attributes: Record<string, string>;
  secrets: Record<string, string>;
  targetPath: string;
  /** The default file mode for objects without `filePermission`. */
  defaultMode: number;
}

/**
 * Decodes the three JSON fields of a MountRequest. Parser messages are never passed on: `attributes` may carry
 * service-account tokens and `secrets` carries client secrets, and V8's JSON errors quote the input.
 */
export function decodeMountRequest(raw: RawMountRequest): DecodedMountRequest {
  return {
    attributes: decodeStringMap(raw.attributes, 'attributes'),
    secrets: isAbsent(raw.secrets) ? {} : decodeStringMap(raw.secrets, 'secrets'),
    targetPath: raw.targetPath,
    defaultMode: decodePermission(raw.permission),
  };
}

/**
 * The driver marshals a nil Go map when the volume has no nodePublishSecretRef, so `secrets` arrives as the JSON text
 * `null` for every identity mode but the service principal; an empty field (older clients) means the same.
 */
function isAbsent(json: string): boolean {
  const text = json.trim();
  return text === '' || text === 'null';
}

/**
 * The largest attributes and secrets accepted. A SecretProviderClass's parameters plus the pod's service account
 * tokens are a few KB; these bounds are far above that and far below what would hold the event loop or the heap.
 */
export const MAX_FIELD_BYTES: Record<'attributes' | 'secrets', number> = { attributes: 512 * 1024, secrets: 256 * 1024 };

function decodeStringMap(json: string, field: 'attributes' | 'secrets'): Record<string, string> {
  if (json.length > MAX_FIELD_BYTES[field]) {
    throw invalidArgument(
      `MountRequest.${field} is ${Math.ceil(json.length / 1024)} KiB, above the limit of ${MAX_FIELD_BYTES[field] / 1024} KiB: ` +
        (field === 'attributes' ? 'shorten the SecretProviderClass parameters (objects) or split them over several classes' : 'use a smaller nodePublishSecretRef Secret'),
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    throw invalidArgument(`MountRequest.${field} is not valid JSON; the driver sends a JSON object of strings`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw invalidArgument(`MountRequest.${field} must be a JSON object of strings`);
  }
  const map: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const [key, value] of Object.entries(parsed)) {
    if (typeof value !== 'string') {
      throw invalidArgument(`MountRequest.${field} key "${key}" must be a string, not ${typeName(value)}`);
    }
    // Attributes become file names, URL parts, headers and log fields: text that is not text stops here.
    if (field === 'attributes' && (UNSAFE_TEXT.test(key) || UNSAFE_TEXT.test(value))) {
      throw invalidArgument(
        `MountRequest.attributes key ${JSON.stringify(key.slice(0, 100))} contains a NUL character or a lone UTF-16 ` +
          'surrogate: SecretProviderClass parameters must be plain text',
      );
    }
    map[key] = value;
  }
  return map;
}

/** NUL, or a surrogate half without its other half (not valid Unicode; it cannot be written as UTF-8). */
const UNSAFE_TEXT = /\0|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function decodePermission(json: string): number {
  let mode: unknown;
  try {
    mode = JSON.parse(json);
  } catch {
    mode = undefined;
  }
  // Permission bits only: setuid, setgid and sticky must never reach a file in a pod's volume.
  if (typeof mode !== 'number' || !Number.isInteger(mode) || mode < 0 || mode > 0o777) {
    throw invalidArgument(
      `MountRequest.permission ${JSON.stringify(json.slice(0, 16))} is not a file mode of permission bits (0-511, i.e. ` +
        'at most 0777); expected a decimal number such as "420" (0644)',
    );
  }
  return mode;
}

function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return `a ${typeof value}`;
}
