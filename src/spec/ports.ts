/**
 * What a mount needs from Key Vault, as interfaces: mount/ never imports the Azure SDK. keyvault/ implements these
 * with the SDK clients; tests can implement them in memory.
 */
import type { PublicJwk } from '../content/jwk';
import type { ProviderError } from '../errors';
import type { MountSpec, ObjectType } from './types';

/** A public JSON Web Key as the SDK returns it (binary fields as bytes): the shape content/jwk.ts converts. */
export type { PublicJwk };

/** The tags and attributes of the version read, for writeTags and writeAttributes (no content). */
export interface ObjectMetadata {
  tags: Record<string, string>;
  enabled: boolean | undefined;
  createdOn: Date | undefined;
  updatedOn: Date | undefined;
  expiresOn: Date | undefined;
  notBefore: Date | undefined;
}

export interface FetchedSecret {
  value: string;
  version: string;
  contentType: string | undefined;
  /** Set when the secret backs a certificate (the REST "kid"): its content is a PFX or PEM bundle. */
  certificateKeyId: string | undefined;
  metadata?: ObjectMetadata;
}

export interface FetchedKey {
  jwk: PublicJwk;
  version: string;
  metadata?: ObjectMetadata;
}

export interface FetchedCertificate {
  /** DER bytes of the X.509 certificate. */
  cer: Uint8Array;
  version: string;
  metadata?: ObjectMetadata;
}

/** One version of an object as a version listing shows it: no content, only what choosing a version needs. */
export interface ListedVersion {
  version: string;
  /** False only when the service says the version is disabled (a version without attributes counts as enabled). */
  enabled: boolean;
  /** When the version was created; undefined when the service did not say. */
  createdOn: Date | undefined;
}

/** One secret as the vault's secret listing shows it: its current version's attributes and tags, no value. */
export interface ListedSecret {
  name: string;
  enabled: boolean;
  expiresOn: Date | undefined;
  notBefore: Date | undefined;
  tags: Record<string, string>;
  /** Set (with contentType application/x-pkcs12 or application/x-pem-file) when the secret backs a certificate. */
  managed: boolean;
  contentType: string | undefined;
}

/** Reads objects from one vault as one identity. Errors are ProviderErrors that name the object and the vault. */
export interface VaultReader {
  /** The vault's name, for messages about what was (not) found in it. */
  readonly vaultName: string;
  getSecret(name: string, version: string, signal: AbortSignal): Promise<FetchedSecret>;
  getKey(name: string, version: string, signal: AbortSignal): Promise<FetchedKey>;
  getCertificate(name: string, version: string, signal: AbortSignal): Promise<FetchedCertificate>;
  /**
   * Every version of an object, following all pages of the listing, disabled versions included, in the service's
   * order (which is not creation order). An object that does not exist may list as empty rather than fail.
   */
  listVersions(type: ObjectType, name: string, signal: AbortSignal): Promise<ListedVersion[]>;
  /**
   * Every secret of the vault (current versions, disabled ones included), following the listing's pages up to a
   * bound: a vault with more fails the read instead of being listed without end.
   */
  listSecrets(signal: AbortSignal): Promise<ListedSecret[]>;
}

/** Resolves a mount's vault, cloud and identity to a reader (reused across mounts of the same vault and identity). */
export interface VaultAccess {
  open(spec: MountSpec, signal: AbortSignal): Promise<VaultReader>;
}

/**
 * What features outside the mount (the Kubernetes-aware ones, the Key Vault value cache) plug into it: a step that may
 * fill in parameters before parsing, one that may refuse the parsed mount before any Azure call, and each outcome.
 */
export interface MountHooks {
  /**
   * Before parsing: the attributes to parse instead (e.g. with clientID from the service account); may throw
   * ProviderError.
   */
  prepare?(attributes: Record<string, string>, secrets: Record<string, string>, signal: AbortSignal): Promise<Record<string, string>>;
  /** After parsing, before any Azure call: throws a ProviderError to refuse the mount. */
  admit?(spec: MountSpec, signal: AbortSignal): Promise<void>;
  /** The mount returned its files. Must not throw or wait. */
  succeeded?(attributes: Record<string, string>, spec: MountSpec): void;
  /** The mount failed with this error (`spec` when the parameters parsed). Must not throw or wait. */
  failed?(attributes: Record<string, string>, spec: MountSpec | undefined, error: ProviderError): void;
}
