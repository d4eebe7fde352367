/**
 * fetchObject against an in-memory vault: every object kind and output format, the ids and versions each produces,
 * and version history (selection, file names, ids, parallel fetches, all-or-nothing, cancellation).
 */
import { createHash, X509Certificate, type KeyObject } from 'node:crypto';
import { ProviderError } from '../../../src/errors';
import { fetchObject, type ContentOptions, type FetchedObject } from '../../../src/mount/fetch-object';
import type {
  FetchedCertificate,
  FetchedKey,
  FetchedSecret,
  ListedSecret,
  ListedVersion,
  PublicJwk,
  VaultReader,
} from '../../../src/spec/ports';
import type { ObjectSpec, ObjectType } from '../../../src/spec/types';
import { fixture } from '../content/helpers';
import { ecPublicKey, rsaPublicKey } from '../../support/keys';

const PKCS12 = 'application/x-pkcs12';
const PEM_FILE = 'application/x-pem-file';

interface StoredVersion {
  version: string;
  created: number;
  enabled: boolean;
  secret?: Omit<FetchedSecret, 'version'>;
  key?: PublicJwk;
  cer?: Uint8Array;
}

/** A vault in memory: versions per (type, name), oldest first; records every call. */
class MemoryVault implements VaultReader {
  readonly vaultName = 'memory-kv';
  readonly calls: string[] = [];
  readonly signals: AbortSignal[] = [];
  /** Per-call delay, to observe parallelism and cancellation. */
  delayMs = 0;
  inFlight = 0;
  peakInFlight = 0;
  /** Version ids whose get fails (with NotFound, as a version deleted after the listing would). */
  failing = new Set<string>();
  private readonly objects = new Map<string, StoredVersion[]>();
  private clock = 1_700_000_000;

  add(type: ObjectType, name: string, content: Omit<StoredVersion, 'version' | 'created' | 'enabled'>, enabled = true): string {
    // Hash-like ids, so listing order (by id) is not creation order.
    const version = createHash('md5').update(`${type}/${name}/${this.clock}`).digest('hex');
    const list = this.objects.get(`${type}/${name}`) ?? [];
    list.push({ version, created: this.clock++, enabled, ...content });
    this.objects.set(`${type}/${name}`, list);
    return version;
  }

  async getSecret(name: string, version: string, signal: AbortSignal): Promise<FetchedSecret> {
    const v = await this.get('secret', name, version, signal);
    return { ...v.secret!, version: v.version };
  }

  async getKey(name: string, version: string, signal: AbortSignal): Promise<FetchedKey> {
    const v = await this.get('key', name, version, signal);
    return { jwk: v.key!, version: v.version };
  }

  async getCertificate(name: string, version: string, signal: AbortSignal): Promise<FetchedCertificate> {
    const v = await this.get('cert', name, version, signal);
    return { cer: v.cer!, version: v.version };
  }

  async listVersions(type: ObjectType, name: string, signal: AbortSignal): Promise<ListedVersion[]> {
    this.calls.push(`list ${type}/${name}`);
    await this.pause(signal);
    // Listed in version-id order (as the service does), not creation order.
    return [...(this.objects.get(`${type}/${name}`) ?? [])]
      .sort((a, b) => (a.version < b.version ? -1 : 1))
      .map((v) => ({ version: v.version, enabled: v.enabled, createdOn: new Date(v.created * 1000) }));
  }

  async listSecrets(signal: AbortSignal): Promise<ListedSecret[]> {
    this.calls.push('list secrets');
    await this.pause(signal);
    return [...this.objects.entries()]
      .filter(([key]) => key.startsWith('secret/'))
      .map(([key, versions]) => {
        const latest = versions[versions.length - 1]!;
        return {
          name: key.slice('secret/'.length),
          enabled: latest.enabled,
          expiresOn: undefined,
          notBefore: undefined,
          tags: { ...(latest.secret?.metadata?.tags ?? {}) },
          managed: latest.secret?.certificateKeyId !== undefined,
          contentType: latest.secret?.contentType,
        };
      });
  }

  private async get(type: ObjectType, name: string, version: string, signal: AbortSignal): Promise<StoredVersion> {
    this.calls.push(`get ${type}/${name}/${version}`);
    await this.pause(signal);
    const list = this.objects.get(`${type}/${name}`) ?? [];
    const found = version ? list.find((v) => v.version === version) : list[list.length - 1];
    if (!found || this.failing.has(found.version)) {
      throw new ProviderError('NotFound', `${type} "${name}" version ${version} was not found in Key Vault "memory-kv"`);
    }
    return found;
  }

  private async pause(signal: AbortSignal): Promise<void> {
    this.signals.push(signal);
    this.peakInFlight = Math.max(this.peakInFlight, ++this.inFlight);
    try {
      if (this.delayMs > 0) {
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(resolve, this.delayMs);
          signal.addEventListener('abort', () => {
            clearTimeout(timer);
            reject(new ProviderError('Cancelled', 'cancelled'));
          });
        });
      }
      if (signal.aborted) throw new ProviderError('Cancelled', 'cancelled');
    } finally {
      this.inFlight--;
    }
  }
}

const OPTIONS: ContentOptions = { constructPemChain: true, writeCertAndKeyInSeparateFiles: false };
const SEPARATE: ContentOptions = { constructPemChain: true, writeCertAndKeyInSeparateFiles: true };

function spec(overrides: Partial<ObjectSpec> & Pick<ObjectSpec, 'name' | 'type'>): ObjectSpec {
  return {
    index: 0,
    version: '',
    versionHistory: 1,
    format: 'pem',
    encoding: 'utf-8',
    fileName: overrides.name,
    filePermission: undefined,
    optional: false,
    vaultName: '',
    jsonPaths: [],
    writeObject: true,
    writeTags: false,
    writeAttributes: false,
    ...overrides,
  };
}

const live = () => new AbortController().signal;
const paths = (r: FetchedObject) => r.files.map((f) => f.path);
const text = (r: FetchedObject, path: string) => r.files.find((f) => f.path === path)!.contents.toString();

async function fetchError(run: Promise<unknown>): Promise<ProviderError> {
  try {
    await run;
  } catch (err) {
    expect(err).toBeInstanceOf(ProviderError);
    return err as ProviderError;
  }
  throw new Error('expected a ProviderError');
}

/** A public key as the Key Vault SDK returns it: JWK parameters as bytes. */
function sdkJwk(kty: string, publicKey: KeyObject): PublicJwk {
  const jwk = publicKey.export({ format: 'jwk' });
  const raw = (s: string | undefined) => (s === undefined ? undefined : new Uint8Array(Buffer.from(s, 'base64url')));
  return { kty, crv: jwk.crv, n: raw(jwk.n), e: raw(jwk.e), x: raw(jwk.x), y: raw(jwk.y) };
}

const rsa = rsaPublicKey(2048);
const ec384 = ecPublicKey('P-384');
const spki = (k: typeof rsa) => k.export({ type: 'spki', format: 'pem' }).toString();
const LEAF_DER = new X509Certificate(fixture('c4-leaf.crt')).raw;
const ROOT_DER = new X509Certificate(fixture('c4-root.crt')).raw;
const pfxValue = (file: string) => fixture(file).toString('base64');
const KID = 'https://memory-kv.vault.azure.net/keys/web-tls/0123';

describe('fetchObject — one version of each kind', () => {
  const vault = new MemoryVault();
  const plain = vault.add('secret', 'db-password', { secret: { value: 'aGVsbG8=', contentType: undefined, certificateKeyId: undefined } });
  const rsaKey = vault.add('key', 'signing', { key: sdkJwk('RSA-HSM', rsa) });
  const ecKey = vault.add('key', 'ec-signing', { key: sdkJwk('EC', ec384) });
  vault.add('key', 'aes', { key: { kty: 'oct-HSM' } });
  const cert = vault.add('cert', 'web-tls', { cer: LEAF_DER });
  const pfx = vault.add('secret', 'web-tls', { secret: { value: pfxValue('chain4-rc2.p12'), contentType: PKCS12, certificateKeyId: KID } });
  vault.add('secret', 'pem-tls', { secret: { value: fixture('c4-leaf.key').toString() + fixture('c4-leaf.crt').toString(), contentType: PEM_FILE, certificateKeyId: KID } });
  vault.add('secret', 'odd-tls', { secret: { value: 'x', contentType: 'text/plain', certificateKeyId: KID } });

  it.each<[string, Partial<ObjectSpec> & Pick<ObjectSpec, 'name' | 'type'>, string]>([
    ['a plain secret, utf-8', { name: 'db-password', type: 'secret' }, 'aGVsbG8='],
    ['a plain secret, base64', { name: 'db-password', type: 'secret', encoding: 'base64' }, 'hello'],
    ['an RSA-HSM key → SPKI PEM', { name: 'signing', type: 'key' }, spki(rsa)],
    ['an EC P-384 key → SPKI PEM', { name: 'ec-signing', type: 'key' }, spki(ec384)],
    ['a certificate → one PEM block', { name: 'web-tls', type: 'cert' }, new X509Certificate(LEAF_DER).toString()],
    ['a PFX-backed secret as pfx → the stored base64', { name: 'web-tls', type: 'secret', format: 'pfx' }, pfxValue('chain4-rc2.p12')],
  ])('%s', async (_name, object, expected) => {
    const result = await fetchObject(vault, spec(object), OPTIONS, live());
    expect(result.files).toEqual([{ path: object.name, contents: Buffer.from(expected) }]);
    expect(result.warnings).toEqual([]);
  });

  it.each<[ObjectType, string, string]>([
    ['secret', 'db-password', plain],
    ['key', 'signing', rsaKey],
    ['key', 'ec-signing', ecKey],
    ['cert', 'web-tls', cert],
    ['secret', 'web-tls', pfx],
  ])('%s %s: id <type>/<name> and the version read', async (type, name, version) => {
    const result = await fetchObject(vault, spec({ name, type }), OPTIONS, live());
    expect(result.versions).toEqual([{ id: `${type}/${name}`, version }]);
  });

  it('writes a PFX-backed secret as PEM: the key, then leaf → intermediates → root', async () => {
    const result = await fetchObject(vault, spec({ name: 'web-tls', type: 'secret', fileName: 'tls/bundle.pem' }), OPTIONS, live());
    expect(paths(result)).toEqual(['tls/bundle.pem']);
    const pem = text(result, 'tls/bundle.pem');
    expect(pem.indexOf('PRIVATE KEY')).toBeLessThan(pem.indexOf('CERTIFICATE'));
    const subjects = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)!.map((c) => new X509Certificate(c).subject);
    expect(subjects).toEqual(['CN=leaf.test', 'CN=c4-int2', 'CN=c4-int1', 'CN=c4-root']);
  });

  it('adds <file>.crt and <file>.key with separate files, for PFX and PEM storage alike', async () => {
    for (const name of ['web-tls', 'pem-tls']) {
      const result = await fetchObject(vault, spec({ name, type: 'secret' }), SEPARATE, live());
      expect(paths(result)).toEqual([name, `${name}.crt`, `${name}.key`]);
      expect(text(result, `${name}.key`)).toMatch(/^-----BEGIN PRIVATE KEY-----/);
      expect(text(result, `${name}.crt`)).toMatch(/^-----BEGIN CERTIFICATE-----/);
      expect(result.versions).toHaveLength(1); // one object version, however many files
    }
  });

  it('writes the PFX and, with separate files, empty .crt and .key for objectFormat pfx (as the reference)', async () => {
    const result = await fetchObject(vault, spec({ name: 'web-tls', type: 'secret', format: 'pfx', encoding: 'base64' }), SEPARATE, live());
    expect(result.files).toEqual([
      { path: 'web-tls', contents: fixture('chain4-rc2.p12') },
      { path: 'web-tls.crt', contents: Buffer.alloc(0) },
      { path: 'web-tls.key', contents: Buffer.alloc(0) },
    ]);
  });

  it('writes the stored PEM, with a warning, for a PEM-stored certificate as pfx (as the reference)', async () => {
    const result = await fetchObject(vault, spec({ name: 'pem-tls', type: 'secret', format: 'pfx' }), OPTIONS, live());
    expect(result.files.map((f) => f.path)).toEqual(['pem-tls']);
    expect(result.warnings).toEqual([expect.stringMatching(/\(secret "pem-tls"\): objectFormat pfx was requested, but this certificate is stored as PEM/)]);
  });

  it.each<[string, Partial<ObjectSpec> & Pick<ObjectSpec, 'name' | 'type'>, RegExp]>([
    ['an oct-HSM key', { name: 'aes', type: 'key', index: 4 }, /^objects\.array\[4\] \(key "aes"\): key type "oct-HSM" is not supported/],
    ['an unknown content type', { name: 'odd-tls', type: 'secret' }, /\(secret "odd-tls"\): the certificate's secret has content type "text\/plain"/],
    ['a plain secret that is not hex', { name: 'db-password', type: 'secret', encoding: 'hex' }, /\(secret "db-password"\): objectEncoding hex/],
  ])('fails InvalidArgument naming the object for %s', async (_name, object, pattern) => {
    const err = await fetchError(fetchObject(vault, spec(object), OPTIONS, live()));
    expect(err.status).toBe('InvalidArgument');
    expect(err.message).toMatch(pattern);
  });

  it('prefixes content warnings with the object', async () => {
    const chainless = new MemoryVault();
    // A PEM bundle with a certificate and no key: splitting it warns.
    chainless.add('secret', 'no-key', { secret: { value: fixture('c4-leaf.crt').toString(), contentType: PEM_FILE, certificateKeyId: KID } });
    const result = await fetchObject(chainless, spec({ name: 'no-key', type: 'secret', index: 3 }), SEPARATE, live());
    expect(result.warnings).toEqual(['objects.array[3] (secret "no-key"): the certificate secret contains no private key']);
  });

  it('does not list versions for a single version', async () => {
    const counting = new MemoryVault();
    counting.add('secret', 's', { secret: { value: 'v', contentType: undefined, certificateKeyId: undefined } });
    await fetchObject(counting, spec({ name: 's', type: 'secret', versionHistory: 1 }), OPTIONS, live());
    expect(counting.calls).toEqual(['get secret/s/']);
  });
});

describe('fetchObject — version history', () => {
  /** Five versions of each kind, oldest first; the fourth (second newest) is disabled. */
  function historyVault() {
    const vault = new MemoryVault();
    const secrets: string[] = [];
    const keys: string[] = [];
    const certs: string[] = [];
    const keyMaterial = [0, 1, 2, 3, 4].map(() => ecPublicKey('P-256'));
    for (let i = 0; i < 5; i++) {
      const enabled = i !== 3;
      secrets.push(vault.add('secret', 'salt', { secret: { value: Buffer.from(`salt-${i}`).toString('base64'), contentType: undefined, certificateKeyId: undefined } }, enabled));
      keys.push(vault.add('key', 'signing', { key: sdkJwk('EC-HSM', keyMaterial[i]!) }, enabled));
      certs.push(vault.add('cert', 'web-tls', { cer: i % 2 === 0 ? LEAF_DER : ROOT_DER }, enabled));
      vault.add('secret', 'web-tls', { secret: { value: pfxValue(i === 2 ? 'ec-aes256.p12' : 'chain4-rc2.p12'), contentType: PKCS12, certificateKeyId: KID } }, enabled);
    }
    return { vault, secrets, keys, certs, keyMaterial };
  }

  it('writes the newest N enabled versions to <file>/0..N-1 with ids <type>/<name>/<index>', async () => {
    const { vault, secrets } = historyVault();
    const object = spec({ name: 'salt', type: 'secret', versionHistory: 3, encoding: 'base64', fileName: 'salts/current' });
    const result = await fetchObject(vault, object, OPTIONS, live());
    expect(result.files).toEqual([
      { path: 'salts/current/0', contents: Buffer.from('salt-4') },
      { path: 'salts/current/1', contents: Buffer.from('salt-2') },
      { path: 'salts/current/2', contents: Buffer.from('salt-1') },
    ]);
    expect(result.versions).toEqual([
      { id: 'secret/salt/0', version: secrets[4] },
      { id: 'secret/salt/1', version: secrets[2] },
      { id: 'secret/salt/2', version: secrets[1] },
    ]);
    // One listing, then each chosen version by its id (never "latest", which could move under us).
    expect(vault.calls[0]).toBe('list secret/salt');
    expect(vault.calls.slice(1).sort()).toEqual([secrets[4], secrets[2], secrets[1]].map((v) => `get secret/salt/${v}`).sort());
  });

  it('writes fewer files when fewer enabled versions exist', async () => {
    const { vault } = historyVault();
    const result = await fetchObject(vault, spec({ name: 'salt', type: 'secret', versionHistory: 50 }), OPTIONS, live());
    expect(paths(result)).toEqual(['salt/0', 'salt/1', 'salt/2', 'salt/3']);
  });

  it('starts at objectVersion', async () => {
    const { vault, secrets } = historyVault();
    const result = await fetchObject(vault, spec({ name: 'salt', type: 'secret', versionHistory: 2, version: secrets[2]! }), OPTIONS, live());
    expect(result.versions).toEqual([
      { id: 'secret/salt/0', version: secrets[2] },
      { id: 'secret/salt/1', version: secrets[1] },
    ]);
  });

  it.each<[string, (s: string[]) => string, RegExp]>([
    ['does not exist', () => 'ffffffffffffffffffffffffffffffff', /version ffffffffffffffffffffffffffffffff was not found in Key Vault "memory-kv"/],
    ['is disabled', (s) => s[3]!, /this version is disabled in Key Vault "memory-kv"/],
  ])('writes nothing for the object, with a warning, when the start version %s (as the reference)', async (_name, pick, pattern) => {
    const { vault, secrets } = historyVault();
    const result = await fetchObject(vault, spec({ name: 'salt', type: 'secret', versionHistory: 2, version: pick(secrets) }), OPTIONS, live());
    expect(result.files).toEqual([]);
    expect(result.versions).toEqual([]);
    expect(result.warnings).toHaveLength(1);
    expect(result.warnings[0]).toMatch(/^objects\.array\[0\] \(secret "salt"\) version /);
    expect(result.warnings[0]).toMatch(pattern);
    expect(vault.calls).toEqual(['list secret/salt']);
  });

  it('writes nothing, with a warning, for an object that has no versions', async () => {
    const result = await fetchObject(new MemoryVault(), spec({ name: 'nothing', type: 'key', versionHistory: 2 }), OPTIONS, live());
    expect(result.files).toEqual([]);
    expect(result.warnings[0]).toContain('(key "nothing"): Key Vault "memory-kv" has no enabled version');
  });

  it('works for keys', async () => {
    const { vault, keys, keyMaterial } = historyVault();
    const result = await fetchObject(vault, spec({ name: 'signing', type: 'key', versionHistory: 2 }), OPTIONS, live());
    expect(result.files).toEqual([
      { path: 'signing/0', contents: Buffer.from(spki(keyMaterial[4]!)) },
      { path: 'signing/1', contents: Buffer.from(spki(keyMaterial[2]!)) },
    ]);
    expect(result.versions).toEqual([
      { id: 'key/signing/0', version: keys[4] },
      { id: 'key/signing/1', version: keys[2] },
    ]);
  });

  it('works for certificates', async () => {
    const { vault, certs } = historyVault();
    const result = await fetchObject(vault, spec({ name: 'web-tls', type: 'cert', versionHistory: 3 }), OPTIONS, live());
    expect(result.files.map((f) => new X509Certificate(f.contents).subject)).toEqual(['CN=leaf.test', 'CN=leaf.test', 'CN=c4-root']);
    expect(result.versions.map((v) => v.version)).toEqual([certs[4], certs[2], certs[1]]);
  });

  it('converts each version of a certificate-backed secret, with <file>/<i>.crt and .key', async () => {
    const { vault } = historyVault();
    const result = await fetchObject(vault, spec({ name: 'web-tls', type: 'secret', versionHistory: 2 }), SEPARATE, live());
    expect(paths(result)).toEqual(['web-tls/0', 'web-tls/0.crt', 'web-tls/0.key', 'web-tls/1', 'web-tls/1.crt', 'web-tls/1.key']);
    expect(new X509Certificate(text(result, 'web-tls/0.crt')).subject).toBe('CN=leaf.test'); // RSA, 4 certificates
    expect(new X509Certificate(text(result, 'web-tls/1.crt')).subject).toBe('CN=leaf.test'); // EC, 3 certificates
    expect(text(result, 'web-tls/0.crt').match(/BEGIN CERTIFICATE/g)).toHaveLength(4);
    expect(text(result, 'web-tls/1.crt').match(/BEGIN CERTIFICATE/g)).toHaveLength(3);
    expect(result.versions.map((v) => v.id)).toEqual(['secret/web-tls/0', 'secret/web-tls/1']);
  });

  it('writes the PFX of each version with objectFormat pfx and objectEncoding base64', async () => {
    const { vault } = historyVault();
    const object = spec({ name: 'web-tls', type: 'secret', versionHistory: 2, format: 'pfx', encoding: 'base64' });
    const result = await fetchObject(vault, object, SEPARATE, live());
    expect(result.files).toEqual([
      { path: 'web-tls/0', contents: fixture('chain4-rc2.p12') },
      { path: 'web-tls/0.crt', contents: Buffer.alloc(0) },
      { path: 'web-tls/0.key', contents: Buffer.alloc(0) },
      { path: 'web-tls/1', contents: fixture('ec-aes256.p12') },
      { path: 'web-tls/1.crt', contents: Buffer.alloc(0) },
      { path: 'web-tls/1.key', contents: Buffer.alloc(0) },
    ]);
  });

  it('names the version in conversion errors', async () => {
    const vault = new MemoryVault();
    vault.add('secret', 'mixed', { secret: { value: 'not hex', contentType: undefined, certificateKeyId: undefined } });
    const good = vault.add('secret', 'mixed', { secret: { value: 'abcd', contentType: undefined, certificateKeyId: undefined } });
    const err = await fetchError(fetchObject(vault, spec({ name: 'mixed', type: 'secret', versionHistory: 2, encoding: 'hex' }), OPTIONS, live()));
    expect(err.status).toBe('InvalidArgument');
    expect(err.message).toMatch(/^objects\.array\[0\] \(secret "mixed"\) version \S+: objectEncoding hex/);
    expect(err.message).not.toContain(good);
  });

  it('fetches versions in parallel, at most 4 at once', async () => {
    const vault = new MemoryVault();
    for (let i = 0; i < 10; i++) vault.add('secret', 's', { secret: { value: `v${i}`, contentType: undefined, certificateKeyId: undefined } });
    vault.delayMs = 20;
    const result = await fetchObject(vault, spec({ name: 's', type: 'secret', versionHistory: 10 }), OPTIONS, live());
    expect(result.files.map((f) => f.contents.toString())).toEqual(['v9', 'v8', 'v7', 'v6', 'v5', 'v4', 'v3', 'v2', 'v1', 'v0']);
    expect(vault.peakInFlight).toBe(4);
  });

  it('fails whole when one version fails, and cancels the fetches still in flight', async () => {
    const vault = new MemoryVault();
    const versions: string[] = [];
    for (let i = 0; i < 6; i++) versions.push(vault.add('secret', 's', { secret: { value: `v${i}`, contentType: undefined, certificateKeyId: undefined } }));
    vault.failing.add(versions[5]!); // the newest: the first of the first batch to answer
    vault.delayMs = 30;
    const err = await fetchError(fetchObject(vault, spec({ name: 's', type: 'secret', versionHistory: 6 }), OPTIONS, live()));
    expect(err.status).toBe('NotFound');
    expect(err.message).toContain(versions[5]);
    // The first batch ran together; the rest never started after the failure.
    expect(vault.calls.filter((c) => c.startsWith('get'))).toHaveLength(4);
    expect(vault.signals.slice(1).every((s) => s.aborted)).toBe(true);
  });

  it('passes the mount signal to the listing and stops when it is aborted', async () => {
    const { vault } = historyVault();
    vault.delayMs = 1000;
    const controller = new AbortController();
    const run = fetchObject(vault, spec({ name: 'salt', type: 'secret', versionHistory: 3 }), OPTIONS, controller.signal);
    setTimeout(() => controller.abort(new ProviderError('DeadlineExceeded', 'deadline')), 20);
    const err = await fetchError(run);
    expect(err.status).toBe('Cancelled');
    expect(vault.signals[0]).toBe(controller.signal);
    expect(vault.calls).toEqual(['list secret/salt']);
  });
});
