/**
 * MountService through its public seam: a RawMountRequest in, files and versions (or one ProviderError) out, over an
 * in-memory vault that implements the ports (VaultAccess/VaultReader) the Key Vault adapter implements in production.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ProviderError } from '../../../src/errors';
import { MountService, OPTIONAL_NOT_FOUND_VERSION, type MountOptions } from '../../../src/mount/mount-service';
import type {
  FetchedCertificate,
  FetchedKey,
  FetchedSecret,
  ListedSecret,
  ListedVersion,
  VaultAccess,
  VaultReader,
} from '../../../src/spec/ports';
import type { RawMountRequest } from '../../../src/mount/request';
import type { MountSpec, ObjectType } from '../../../src/spec/types';
import { createLogger } from '../../../src/observability/logger';
import { noopMetrics, type ProviderMetrics } from '../../../src/observability/metrics';
import { attributes, objectsYaml } from './fixtures';

const VERSION = 'a'.repeat(32);

function notFound(what: string, vault: string): ProviderError {
  return new ProviderError('NotFound', `${what} was not found in Key Vault "${vault}"`);
}

/** Vaults by name (lower case) → secrets by name; every call is recorded. */
class MemoryVaults implements VaultAccess {
  readonly opened: MountSpec[] = [];
  readonly reads: string[] = [];
  /** Resolves a read only once released (for cancellation tests); undefined = answer at once. */
  gate: Promise<void> | undefined;

  constructor(
    private readonly secrets: Record<string, Record<string, string>>,
    private readonly certificates: Record<string, Record<string, Buffer>> = {},
  ) {}

  open(spec: MountSpec): Promise<VaultReader> {
    this.opened.push(spec);
    const vault = spec.vaultName;
    const secrets = this.secrets[vault.toLowerCase()] ?? {};
    const certificates = this.certificates[vault.toLowerCase()] ?? {};
    const record = async (what: string, signal: AbortSignal): Promise<void> => {
      this.reads.push(`${vault}/${what}`);
      if (this.gate) {
        await Promise.race([
          this.gate,
          new Promise((_, reject) => signal.addEventListener('abort', () => reject(new ProviderError('Cancelled', `still reading ${what}`)))),
        ]);
      }
    };
    const reader: VaultReader = {
      vaultName: vault,
      async getSecret(name, _version, signal): Promise<FetchedSecret> {
        await record(`secret/${name}`, signal);
        const value = secrets[name];
        if (value === undefined) throw notFound(`secret "${name}"`, vault);
        return { value, version: VERSION, contentType: undefined, certificateKeyId: undefined };
      },
      async getKey(name): Promise<FetchedKey> {
        throw notFound(`key "${name}"`, vault);
      },
      async getCertificate(name, _version, signal): Promise<FetchedCertificate> {
        await record(`cert/${name}`, signal);
        const cer = certificates[name];
        if (!cer) throw notFound(`certificate "${name}"`, vault);
        return { cer: new Uint8Array(cer), version: VERSION };
      },
      async listVersions(_type: ObjectType, name: string): Promise<ListedVersion[]> {
        throw notFound(name, vault);
      },
      async listSecrets(signal): Promise<ListedSecret[]> {
        await record('secrets', signal);
        return Object.keys(secrets).map((name) => ({
          name,
          enabled: true,
          expiresOn: undefined,
          notBefore: undefined,
          tags: {},
          managed: false,
          contentType: undefined,
        }));
      },
    };
    return Promise.resolve(reader);
  }
}

const OPTIONS: MountOptions = {
  defaultCloudName: 'AzurePublicCloud',
  maxParallelFetches: 4,
  constructPemChain: false,
  writeCertAndKeyInSeparateFiles: false,
};

function request(attrs: Record<string, string>, permission = '420'): RawMountRequest {
  return { attributes: JSON.stringify(attrs), secrets: 'null', targetPath: '/mnt/t', permission, currentObjectVersion: [] };
}

function serviceOver(vaults: VaultAccess, metrics: ProviderMetrics = noopMetrics): { service: MountService; logs: string[] } {
  const logs: string[] = [];
  const logger = createLogger({ json: true, verbosity: 0, destination: { write: (line: string) => void logs.push(line) } });
  return { service: new MountService(vaults, OPTIONS, logger, metrics), logs };
}

const never = new AbortController().signal;

describe('MountService over an in-memory vault', () => {
  it('returns every object as a file with the default mode, and the version of each', async () => {
    const vaults = new MemoryVaults({ 'shop-kv': { 'db-password': 's3cr3t', 'api-key': 'k3y' } });
    const { service } = serviceOver(vaults);
    const objects = objectsYaml(['objectName: db-password\nobjectType: secret', 'objectName: api-key\nobjectType: secret\nobjectAlias: api']);

    const result = await service.mount(request(attributes({ objects })), never);

    expect(result.files).toEqual([
      { path: 'db-password', mode: 0o644, contents: Buffer.from('s3cr3t') },
      { path: 'api', mode: 0o644, contents: Buffer.from('k3y') },
    ]);
    expect(result.objectVersions).toEqual([
      { id: 'secret/db-password', version: VERSION },
      { id: 'secret/api-key', version: VERSION },
    ]);
    expect(vaults.opened.map((s) => s.vaultName)).toEqual(['shop-kv']);
  });

  it('writes a certificate object as PEM, with its own filePermission', async () => {
    const pem = readFileSync(join(__dirname, '..', '..', 'fixtures', 'content', 'ec-root.crt'), 'utf8');
    const der = new X509Certificate(pem).raw;
    const vaults = new MemoryVaults({}, { 'shop-kv': { ca: der } });
    const { service } = serviceOver(vaults);
    const objects = objectsYaml(['objectName: ca\nobjectType: cert\nfilePermission: "0600"']);

    const result = await service.mount(request(attributes({ objects })), never);

    expect(result.files).toEqual([{ path: 'ca', mode: 0o600, contents: Buffer.from(pem) }]);
  });

  it('fails an invalid SecretProviderClass before it opens any vault', async () => {
    const vaults = new MemoryVaults({ 'shop-kv': { 'db-password': 's3cr3t' } });
    const { service } = serviceOver(vaults);

    const mount = service.mount(request(attributes({ objects: objectsYaml(['objectName: db-password\nobjectType: secrets']) })), never);

    await expect(mount).rejects.toMatchObject({ status: 'InvalidArgument', message: expect.stringContaining('objectType') });
    expect(vaults.opened).toEqual([]);
  });

  it('fails whole when one object is missing, naming it', async () => {
    const vaults = new MemoryVaults({ 'shop-kv': { 'db-password': 's3cr3t' } });
    const { service, logs } = serviceOver(vaults);
    const objects = objectsYaml(['objectName: db-password\nobjectType: secret', 'objectName: gone\nobjectType: secret']);

    await expect(service.mount(request(attributes({ objects })), never)).rejects.toMatchObject({
      status: 'NotFound',
      message: expect.stringContaining('"gone"'),
    });
    expect(logs.join('')).toContain('mount failed');
    expect(logs.join('')).not.toContain('s3cr3t');
  });

  it('leaves out an optional object Key Vault does not have, and reports it with the not-found version', async () => {
    const vaults = new MemoryVaults({ 'shop-kv': { 'db-password': 's3cr3t' } });
    const skipped: string[] = [];
    const { service } = serviceOver(vaults, { ...noopMetrics, countOptionalObjectSkipped: (type) => void skipped.push(type) });
    const objects = objectsYaml(['objectName: db-password\nobjectType: secret', 'objectName: gone\nobjectType: secret\noptional: "true"']);

    const result = await service.mount(request(attributes({ objects })), never);

    expect(result.files.map((f) => f.path)).toEqual(['db-password']);
    expect(result.objectVersions).toContainEqual({ id: 'secret/gone', version: OPTIONAL_NOT_FOUND_VERSION });
    expect(skipped).toEqual(['secret']);
  });

  it('opens one reader per vault the objects name, with the class identity', async () => {
    const vaults = new MemoryVaults({ 'shop-kv': { a: '1' }, 'other-kv': { b: '2' } });
    const { service } = serviceOver(vaults);
    const objects = objectsYaml(['objectName: a\nobjectType: secret', 'objectName: b\nobjectType: secret\nkeyvaultName: other-kv']);

    const result = await service.mount(request(attributes({ objects })), never);

    expect(result.files.map((f) => [f.path, f.contents.toString()])).toEqual([['a', '1'], ['b', '2']]);
    expect(vaults.opened.map((s) => s.vaultName).sort()).toEqual(['other-kv', 'shop-kv']);
    expect(new Set(vaults.opened.map((s) => s.identity.mode)).size).toBe(1);
  });

  it('expands a selection by name prefix into the secrets it selects, listing the vault once', async () => {
    const vaults = new MemoryVaults({ 'shop-kv': { 'shop-db': 'd', 'shop-cache': 'c', other: 'o' } });
    const { service } = serviceOver(vaults);
    const objects = objectsYaml(['objectNamePrefix: shop-\nobjectAlias: shop']);

    const result = await service.mount(request(attributes({ objects })), never);

    expect(result.files.map((f) => [f.path, f.contents.toString()]).sort()).toEqual([['shop/shop-cache', 'c'], ['shop/shop-db', 'd']]);
    expect(vaults.reads.filter((r) => r === 'shop-kv/secrets')).toHaveLength(1);
    expect(vaults.reads).not.toContain('shop-kv/secret/other');
  });

  it('turns an error it did not make into a generic Internal error, without its text', async () => {
    const broken: VaultAccess = { open: () => Promise.reject(new Error('socket hang up at 0xdeadbeef')) };
    const { service } = serviceOver(broken);

    const error = await service.mount(request(attributes()), never).catch((err: unknown) => err);

    expect(error).toBeInstanceOf(ProviderError);
    expect(error).toMatchObject({ status: 'Internal', message: 'internal error in the provider: see the provider logs' });
  });

  it('fails with the abort reason, plus what was still in flight, when the deadline passes', async () => {
    const vaults = new MemoryVaults({ 'shop-kv': { 'db-password': 's3cr3t' } });
    vaults.gate = new Promise(() => undefined);
    const { service } = serviceOver(vaults);
    const controller = new AbortController();

    const mount = service.mount(request(attributes()), controller.signal);
    while (vaults.reads.length === 0) await new Promise((resolve) => setImmediate(resolve));
    controller.abort(new ProviderError('DeadlineExceeded', 'the mount did not complete within its deadline of 1s'));

    await expect(mount).rejects.toMatchObject({
      status: 'DeadlineExceeded',
      message: expect.stringMatching(/^the mount did not complete within its deadline of 1s: /),
    });
  });
});
