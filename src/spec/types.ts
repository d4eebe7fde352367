/** The validated shape of one Mount: what the SecretProviderClass asked for, after every local check passed. */

export type ObjectType = 'secret' | 'key' | 'cert';
export type ObjectEncoding = 'utf-8' | 'base64' | 'hex';
export type ObjectFormat = 'pem' | 'pfx';

export interface ObjectSpec {
  /** Position in the `objects` array, for messages ("objects[2]"). */
  index: number;
  name: string;
  type: ObjectType;
  /** Empty = the latest version. */
  version: string;
  /** 1 = a single version; N > 1 = the N newest versions starting at `version` (files `<fileName>/0..N-1`). */
  versionHistory: number;
  format: ObjectFormat;
  encoding: ObjectEncoding;
  /** Relative path of the file in the volume: the alias, else the name. */
  fileName: string;
  /** Octal file mode from `filePermission`; undefined = the driver's default permission. */
  filePermission: number | undefined;
  /** `optional: "true"`: an object Key Vault answers 404 for is left out instead of failing the mount. */
  optional: boolean;
  /** The object's own `keyvaultName`; '' = the SecretProviderClass's vault. */
  vaultName: string;
  /** `jsonPaths`: fields of a JSON secret written as files of their own (empty = none). */
  jsonPaths: JsonPathSpec[];
  /** False (`writeObject: "false"`) when only the jsonPaths files are wanted, not the whole secret. */
  writeObject: boolean;
  /** `writeTags: "true"`: the version's tags as JSON in `<fileName>.tags.json`. */
  writeTags: boolean;
  /**
   * `writeAttributes: "true"`: enabled, created, updated, expires and notBefore as JSON in
   * `<fileName>.attributes.json`.
   */
  writeAttributes: boolean;
  /**
   * Set on an entry that selects secrets by name prefix, pattern or tags instead of naming one (object-selection.ts);
   * `name` is then empty and the matching secrets are listed at mount time.
   */
  select?: SecretSelection;
}

/** What an `objects` entry with objectNamePrefix, objectNameRegex or objectTags selects: plain data (cloneable). */
export interface SecretSelection {
  /** Names starting with this, compared as Key Vault compares names (case-insensitively); '' = any. */
  namePrefix: string;
  /** An RE2 pattern searched in the name (already checked to compile); '' = any. */
  nameRegex: string;
  /** Tags every selected secret must carry with exactly these values; empty = any. */
  tags: Record<string, string>;
  /** The most secrets the entry may select; more fails the mount. */
  maxObjects: number;
  /** Folder of the files (objectAlias, else the prefix). */
  folder: string;
  /** The file name inside the folder, with {name} and {nameWithoutPrefix}. */
  fileNameTemplate: string;
  /** How messages name the entry's criteria, e.g. `objectNamePrefix "app-"` (never a tag value). */
  criteria: string;
}

export interface JsonPathSpec {
  /** A JMESPath expression, already checked to compile (json-paths.ts). */
  path: string;
  /** Relative path of its file in the volume (its objectAlias). */
  fileName: string;
  /** Its own filePermission; undefined = the object's. */
  filePermission: number | undefined;
}

/** A user-assigned managed identity chosen by client id or by ARM resource id. */
export type UserAssignedIdentity = { kind: 'clientId'; value: string } | { kind: 'resourceId'; value: string };

/**
 * The service account token the driver passed for one audience (`csi.storage.k8s.io/serviceAccount.tokens`), with the
 * service account it belongs to. The token is a credential: it goes to Entra ID (or the token proxy) and nowhere else.
 */
export interface ServiceAccountToken {
  namespace: string;
  /** Empty when the driver did not send csi.storage.k8s.io/serviceAccount.name. */
  name: string;
  audience: string;
  token: string;
  /** Expiry (ms since the epoch) from `expirationTimestamp`; undefined when the driver sent none we could read. */
  expiresAt: number | undefined;
}

export type IdentitySpec =
  | { mode: 'vmManagedIdentity'; userAssigned: UserAssignedIdentity | undefined }
  | { mode: 'workloadIdentity'; clientId: string; serviceAccountToken: ServiceAccountToken }
  | { mode: 'servicePrincipal'; clientId: string; clientSecret: string }
  | { mode: 'podIdentity'; pod: { name: string; namespace: string; uid: string } }
  | { mode: 'tokenProxy'; clientId: string; serviceAccountToken: ServiceAccountToken };

export interface PodInfo {
  name: string;
  namespace: string;
  uid: string;
  serviceAccountName: string;
}

export interface MountSpec {
  pod: PodInfo;
  /** Name of the SecretProviderClass (for logs and messages). */
  secretProviderClass: string;
  vaultName: string;
  tenantId: string;
  cloudName: string;
  /** Path of the custom cloud's environment file; set (and only used) when cloudName is AzureStackCloud. */
  cloudEnvFileName: string;
  identity: IdentitySpec;
  objects: ObjectSpec[];
  /**
   * `cacheTTL`: how long this class lets the node's Key Vault value cache serve its objects (ms); 0 or absent = never.
   * Only used when the operator enabled the cache (--keyvault-cache-max-ttl), and never above that maximum.
   */
  cacheTtlMs?: number;
  /**
   * The volume's target path as the driver sent it (absent when empty). With the pod uid it names one volume across
   * its mounts: both driver generations send the same path on a republish or rotation as on the first mount.
   */
  targetPath?: string;
  /** Things worth a log line that do not fail the mount (unknown object fields, an empty objects list). */
  warnings: string[];
}
