import { ContentError, ProviderError } from '../errors';
import { convertCertificateSecret } from '../content/certificate-secret';
import { certificatePemFromDer } from '../content/certificate';
import { decodeSecretValue } from '../content/encoding';
import { publicKeyPemFromJwk } from '../content/jwk';
import type { JSONValue } from '@jmespath-community/jmespath';
import { mapBounded } from './concurrency';
import { extractJsonPath } from './json-paths';
import { ATTRIBUTES_FILE_SUFFIX, describeObject, objectId, TAGS_FILE_SUFFIX } from './objects';
import type { ObjectMetadata, VaultReader } from '../spec/ports';
import type { ObjectSpec } from '../spec/types';
import { selectVersionHistory } from './version-history';

export interface ContentOptions {
  constructPemChain: boolean;
  writeCertAndKeyInSeparateFiles: boolean;
}

/** One file of an object, path relative to the volume; mode is applied by the caller. */
export interface ObjectFile {
  path: string;
  contents: Buffer;
  /** Its own mode (a jsonPaths entry's filePermission); undefined = the object's. */
  mode?: number;
}

export interface FetchedObject {
  files: ObjectFile[];
  /** `object_version` entries: id `<type>/<name>` (history: `<type>/<name>/<index>`) → Key Vault version. */
  versions: Array<{ id: string; version: string }>;
  warnings: string[];
}

/**
 * Versions of one history object fetched at once. The mount already fetches several objects in parallel; this keeps
 * one object with a long history from opening dozens of requests to the vault at the same moment.
 */
const HISTORY_PARALLEL_FETCHES = 4;

/**
 * Fetches one object and converts it into the files it produces: `<file>` (plus `<file>.crt`/`<file>.key` for a
 * certificate-backed secret with separate files), or for version history `<file>/<i>` (plus `<file>/<i>.crt` and
 * `<file>/<i>.key`, the names the reference provider writes) for each selected version. All or nothing: if any version
 * fails to fetch or convert, the object fails.
 */
export async function fetchObject(
  reader: VaultReader,
  object: ObjectSpec,
  options: ContentOptions,
  signal: AbortSignal,
): Promise<FetchedObject> {
  const id = objectId(object);
  if (object.versionHistory <= 1) {
    const converted = await fetchAndConvert(reader, object, object.version, options, signal, describeObject(object));
    return {
      files: [
        ...(object.writeObject ? filesOf(object.fileName, converted) : []),
        ...(converted.extracts ?? []),
        ...metadataFiles(object, converted.metadata),
      ],
      // An extracted field's version is its secret's: it changes exactly when the secret gets a new version.
      versions: [
        { id, version: converted.version },
        ...object.jsonPaths.map((j) => ({ id: `${id}#${j.fileName}`, version: converted.version })),
      ],
      warnings: converted.warnings,
    };
  }

  const listed = await reader.listVersions(object.type, object.name, signal);
  const { versions: selected, warning } = selectVersionHistory(object, listed, reader.vaultName);
  if (warning) return { files: [], versions: [], warnings: [warning] };
  const converted = await mapBounded(selected, HISTORY_PARALLEL_FETCHES, signal, (version, versionSignal) =>
    fetchAndConvert(reader, object, version, options, versionSignal, `${describeObject(object)} version ${version}`),
  );
  return {
    files: converted.flatMap((c, i) => filesOf(`${object.fileName}/${i}`, c)),
    versions: converted.map((c, i) => ({ id: `${id}/${i}`, version: c.version })),
    warnings: converted.flatMap((c) => c.warnings),
  };
}

interface Converted {
  version: string;
  content: Buffer;
  certificates?: Buffer;
  privateKey?: Buffer;
  metadata?: ObjectMetadata;
  /** The jsonPaths files, when the object has any. */
  extracts?: ObjectFile[];
  /** Already prefixed with the object (and version) they are about. */
  warnings: string[];
}

function filesOf(path: string, converted: Converted): ObjectFile[] {
  const files: ObjectFile[] = [{ path, contents: converted.content }];
  if (converted.certificates) files.push({ path: `${path}.crt`, contents: converted.certificates });
  if (converted.privateKey) files.push({ path: `${path}.key`, contents: converted.privateKey });
  return files;
}

/** Reads one version ('' = latest) and converts it; `subject` names it in warnings and conversion errors. */
async function fetchAndConvert(
  reader: VaultReader,
  object: ObjectSpec,
  version: string,
  options: ContentOptions,
  signal: AbortSignal,
  subject: string,
): Promise<Converted> {
  switch (object.type) {
    case 'secret': {
      const secret = await reader.getSecret(object.name, version, signal);
      return withMetadata(secret.metadata, convert(subject, () => {
        if (object.jsonPaths.length > 0) {
          if (secret.certificateKeyId) throw new ContentError('it backs a certificate, so its value is not JSON and jsonPaths cannot be applied');
          const content = decodeSecretValue(secret.value, object.encoding);
          return { version: secret.version, content, extracts: extractFields(object, content), warnings: [] };
        }
        if (!secret.certificateKeyId) {
          return { version: secret.version, content: decodeSecretValue(secret.value, object.encoding), warnings: [] };
        }
        const result = convertCertificateSecret(
          { value: secret.value, contentType: secret.contentType },
          { format: object.format, encoding: object.encoding, ...options },
        );
        return { ...result, version: secret.version, warnings: result.warnings.map((w) => `${subject}: ${w}`) };
      }));
    }
    case 'key': {
      const key = await reader.getKey(object.name, version, signal);
      return withMetadata(key.metadata, convert(subject, () => ({
        version: key.version,
        content: Buffer.from(publicKeyPemFromJwk(key.jwk)),
        warnings: [],
      })));
    }
    case 'cert': {
      const cert = await reader.getCertificate(object.name, version, signal);
      return withMetadata(cert.metadata, convert(subject, () => ({
        version: cert.version,
        content: Buffer.from(certificatePemFromDer(cert.cer)),
        warnings: [],
      })));
    }
  }
}

function withMetadata(metadata: ObjectMetadata | undefined, converted: Converted): Converted {
  return metadata ? { ...converted, metadata } : converted;
}

/**
 * writeTags and writeAttributes files: JSON with sorted keys, so the bytes change only when a tag or attribute does.
 * Tag values are the user's data like the secret itself: written to the file, never to a log or message.
 */
function metadataFiles(object: ObjectSpec, metadata: ObjectMetadata | undefined): ObjectFile[] {
  const files: ObjectFile[] = [];
  if (object.writeTags) {
    const tags = metadata?.tags ?? {};
    const sorted = Object.fromEntries(Object.keys(tags).sort().map((k) => [k, tags[k]]));
    files.push({ path: `${object.fileName}${TAGS_FILE_SUFFIX}`, contents: Buffer.from(`${JSON.stringify(sorted)}\n`) });
  }
  if (object.writeAttributes) {
    const time = (d: Date | undefined): string | null => (d ? d.toISOString() : null);
    const attributes = {
      enabled: metadata?.enabled ?? true,
      created: time(metadata?.createdOn),
      updated: time(metadata?.updatedOn),
      expires: time(metadata?.expiresOn),
      notBefore: time(metadata?.notBefore),
    };
    files.push({ path: `${object.fileName}${ATTRIBUTES_FILE_SUFFIX}`, contents: Buffer.from(`${JSON.stringify(attributes)}\n`) });
  }
  return files;
}

/** The jsonPaths files of a secret's (decoded) value. Messages name the path, never what the secret holds. */
function extractFields(object: ObjectSpec, content: Buffer): ObjectFile[] {
  let document: JSONValue;
  try {
    document = JSON.parse(content.toString('utf8')) as JSONValue;
  } catch {
    // V8's message quotes the text it could not parse: the secret itself.
    throw new ContentError('its value is not JSON, so jsonPaths cannot be applied: store the secret as a JSON document');
  }
  return object.jsonPaths.map((j, i) => {
    const result = extractJsonPath(document, j.path);
    if ('problem' in result) throw new ContentError(`jsonPaths[${i}] path ${JSON.stringify(j.path.slice(0, 100))} ${result.problem}`);
    return { path: j.fileName, contents: Buffer.from(result.text), ...(j.filePermission !== undefined ? { mode: j.filePermission } : {}) };
  });
}

/** Runs a pure conversion, turning its ContentError into a mount error that names the object (and version). */
function convert(subject: string, run: () => Converted): Converted {
  try {
    return run();
  } catch (err) {
    if (err instanceof ContentError) {
      throw new ProviderError('InvalidArgument', `${subject}: ${err.message}`, { cause: err });
    }
    throw err;
  }
}
