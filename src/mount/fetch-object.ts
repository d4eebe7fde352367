import { ContentError, ProviderError } from '../errors';
import { convertCertificateSecret } from '../content/certificate-secret';
import { certificatePemFromDer } from '../content/certificate';
import { decodeSecretValue } from '../content/encoding';
import { publicKeyPemFromJwk } from '../content/jwk';
import { describeObject } from './objects';
import type { VaultReader } from './ports';
import type { ObjectSpec } from './types';

export interface ContentOptions {
  constructPemChain: boolean;
  writeCertAndKeyInSeparateFiles: boolean;
}

/** One file of an object, path relative to the volume; mode is applied by the caller. */
export interface ObjectFile {
  path: string;
  contents: Buffer;
}

export interface FetchedObject {
  files: ObjectFile[];
  /** `object_version` entries: id `<type>/<name>` (history: `<type>/<name>/<index>`) → Key Vault version. */
  versions: Array<{ id: string; version: string }>;
  warnings: string[];
}

/** Fetches one object and converts it into the files it produces. */
export async function fetchObject(
  reader: VaultReader,
  object: ObjectSpec,
  options: ContentOptions,
  signal: AbortSignal,
): Promise<FetchedObject> {
  if (object.versionHistory > 1) {
    throw new ProviderError(
      'InvalidArgument',
      `${describeObject(object)}: objectVersionHistory above 1 is not supported by this provider version yet; remove it`,
    );
  }
  const warnings: string[] = [];
  const id = `${object.type}/${object.name}`;
  const converted = await fetchAndConvert(reader, object, options, signal, warnings);
  const files: ObjectFile[] = [{ path: object.fileName, contents: converted.content }];
  if (converted.certificates) files.push({ path: `${object.fileName}.crt`, contents: converted.certificates });
  if (converted.privateKey) files.push({ path: `${object.fileName}.key`, contents: converted.privateKey });
  return { files, versions: [{ id, version: converted.version }], warnings };
}

interface Converted {
  version: string;
  content: Buffer;
  certificates?: Buffer;
  privateKey?: Buffer;
}

async function fetchAndConvert(
  reader: VaultReader,
  object: ObjectSpec,
  options: ContentOptions,
  signal: AbortSignal,
  warnings: string[],
): Promise<Converted> {
  switch (object.type) {
    case 'secret': {
      const secret = await reader.getSecret(object.name, object.version, signal);
      return convert(object, () => {
        if (!secret.certificateKeyId) {
          return { version: secret.version, content: decodeSecretValue(secret.value, object.encoding) };
        }
        const result = convertCertificateSecret(
          { value: secret.value, contentType: secret.contentType },
          { format: object.format, encoding: object.encoding, ...options },
        );
        warnings.push(...result.warnings.map((w) => `${describeObject(object)}: ${w}`));
        return { version: secret.version, ...result };
      });
    }
    case 'key': {
      const key = await reader.getKey(object.name, object.version, signal);
      return convert(object, () => ({ version: key.version, content: Buffer.from(publicKeyPemFromJwk(key.jwk)) }));
    }
    case 'cert': {
      const cert = await reader.getCertificate(object.name, object.version, signal);
      return convert(object, () => ({ version: cert.version, content: Buffer.from(certificatePemFromDer(cert.cer)) }));
    }
  }
}

/** Runs a pure conversion, turning its ContentError into a mount error that names the object. */
function convert(object: ObjectSpec, run: () => Converted): Converted {
  try {
    return run();
  } catch (err) {
    if (err instanceof ContentError) {
      throw new ProviderError('InvalidArgument', `${describeObject(object)}: ${err.message}`, { cause: err });
    }
    throw err;
  }
}
