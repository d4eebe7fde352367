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

function decodeStringMap(json: string, field: 'attributes' | 'secrets'): Record<string, string> {
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
    map[key] = value;
  }
  return map;
}

function decodePermission(json: string): number {
  let mode: unknown;
  try {
    mode = JSON.parse(json);
  } catch {
    mode = undefined;
  }
  if (typeof mode !== 'number' || !Number.isInteger(mode) || mode < 0 || mode > 0o7777) {
    throw invalidArgument(
      `MountRequest.permission "${json.slice(0, 16)}" is not a file mode; expected a decimal number such as "420" (0644)`,
    );
  }
  return mode;
}

function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return `a ${typeof value}`;
}
