/**
 * KeyVaultReader through its public seam (the VaultReader port) against the Key Vault stand-in
 * (test/support/keyvault.ts, Key Vault's REST contract over HTTPS with its challenge authentication), with the real SDK
 * clients inside. The reader's one network dependency is the keep-alive agent it is given; here that agent trusts the
 * test CA and dials the stand-in for every `<vault>.vault.azure.net:443`, keeping the real host name for TLS, as a
 * CONNECT proxy would.
 */
import { Agent as HttpsAgent } from 'node:https';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import type { AccessToken, TokenCredential } from '@azure/core-auth';
import { ProviderError } from '../../../src/errors';
import { KeyVaultReader } from '../../../src/keyvault/reader';
import { VaultGate } from '../../../src/keyvault/vault-gate';
import { startKeyVault, type KeyVaultStandIn } from '../../support/keyvault';
import { createTestPki, type TestPki } from '../../support/pki';
import { createTokenRegistry, type TokenRegistry } from '../../support/tokens';
import { ecPublicKey } from '../../support/keys';

const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const IDENTITY = 'reader-test-identity';
const VAULT = 'reader-kv';

/** An https.Agent that sends every connection to the stand-in, with the request's host as the TLS server name. */
class StandInAgent extends HttpsAgent {
  constructor(
    private readonly port: number,
    ca: string,
  ) {
    super({ keepAlive: true, ca });
  }

  override createConnection(options: ConnectionOptions): ReturnType<typeof tlsConnect> {
    return tlsConnect({ ...options, host: '127.0.0.1', port: this.port, servername: options.servername ?? options.host ?? '' });
  }
}

/** A credential as the identity layer gives one: tokens from the registry; invalidate() drops the cached one. */
class TestCredential implements TokenCredential {
  calls = 0;
  invalidations = 0;
  private cached: AccessToken | undefined;
  constructor(private readonly tokens: TokenRegistry) {}

  async getToken(scopes: string | string[]): Promise<AccessToken> {
    this.calls++;
    const scope = Array.isArray(scopes) ? scopes[0]! : scopes;
    this.cached ??= {
      token: this.tokens.issue({ identityId: IDENTITY, resource: scope.replace(/\/\.default$/, ''), lifetimeSeconds: 3600, issuer: 'entra', tenantId: TENANT }).token,
      expiresOnTimestamp: Date.now() + 3_600_000,
    };
    return this.cached;
  }

  invalidate(): void {
    this.invalidations++;
    this.cached = undefined;
  }
}

describe('KeyVaultReader against the Key Vault stand-in', () => {
  let pki: TestPki;
  let tokens: TokenRegistry;
  let kv: KeyVaultStandIn;
  let vaultUrl: string;
  let agent: StandInAgent;

  beforeAll(async () => {
    pki = createTestPki();
    tokens = createTokenRegistry();
    kv = await startKeyVault({ pki, tokens, tenantId: TENANT, pageSize: 2 });
    vaultUrl = kv.addVault(VAULT, { allow: [IDENTITY] }).url;
    agent = new StandInAgent(kv.port, pki.caCertPem);
  });

  afterAll(async () => {
    agent.destroy();
    await kv.close();
  });

  beforeEach(() => {
    kv.clearRequests();
    kv.clearFaults();
  });

  function reader(credential: TokenCredential = new TestCredential(tokens), url = vaultUrl, name = VAULT): KeyVaultReader {
    return new KeyVaultReader(name, url, credential, 'the test identity', {
      userAgentPrefix: 'csi-provider-azure-test',
      agent,
      gate: new VaultGate(4),
    });
  }

  const signal = new AbortController().signal;

  it('reads the latest secret after the challenge, with its version, content type and metadata', async () => {
    const version = kv.setSecret(VAULT, 'db-password', 's3cr3t', { contentType: 'text/plain', tags: { team: 'shop' } });

    const secret = await reader().getSecret('db-password', '', signal);

    expect(secret).toMatchObject({ value: 's3cr3t', version, contentType: 'text/plain', certificateKeyId: undefined });
    expect(secret.metadata).toMatchObject({ tags: { team: 'shop' }, enabled: true });
    expect(kv.requests.map((r) => r.status)).toEqual([401, 200]);
  });

  it('reads a given version, not the latest', async () => {
    const first = kv.setSecret(VAULT, 'rotated', 'one');
    kv.setSecret(VAULT, 'rotated', 'two');

    await expect(reader().getSecret('rotated', first, signal)).resolves.toMatchObject({ value: 'one', version: first });
  });

  it('reads a key as its public JWK only', async () => {
    const publicKey = ecPublicKey('P-256');
    const version = kv.setKey(VAULT, 'signing', publicKey.export({ format: 'jwk' }));

    const key = await reader().getKey('signing', '', signal);

    expect(key.version).toBe(version);
    expect(key.jwk).toMatchObject({ kty: 'EC', crv: 'P-256' });
    expect(Object.keys(key.jwk).filter((k) => (key.jwk as Record<string, unknown>)[k] !== undefined).sort()).toEqual(['crv', 'kty', 'x', 'y']);
  });

  it('reads a certificate as its DER bytes', async () => {
    const issued = pki.issueServerCert(['app.example.com']);
    kv.setCertificate(VAULT, 'tls', issued.certPem);

    const certificate = await reader().getCertificate('tls', '', signal);

    expect(Buffer.from(certificate.cer).toString('base64')).toBe(
      issued.certPem.replace(/-----[A-Z ]+-----|\s/g, ''),
    );
  });

  it('lists every version over all pages, disabled ones included', async () => {
    const versions = [kv.setSecret(VAULT, 'history', 'a'), kv.setSecret(VAULT, 'history', 'b'), kv.setSecret(VAULT, 'history', 'c')];
    kv.setEnabled(VAULT, 'secret', 'history', false, versions[1]);

    const listed = await reader().listVersions('secret', 'history', signal);

    expect(listed.map((v) => v.version).sort()).toEqual([...versions].sort());
    expect(listed.find((v) => v.version === versions[1])?.enabled).toBe(false);
    expect(kv.count({ operation: 'list', status: 200 })).toBeGreaterThanOrEqual(2);
  });

  it('fails a missing secret as NotFound, naming the secret and the vault', async () => {
    const error = await reader().getSecret('no-such-secret', '', signal).catch((err: unknown) => err);

    expect(error).toBeInstanceOf(ProviderError);
    expect(error).toMatchObject({ status: 'NotFound' });
    expect((error as Error).message).toContain('no-such-secret');
    expect((error as Error).message).toContain(VAULT);
    for (const { token } of tokens.all()) expect((error as Error).message).not.toContain(token);
  });

  it('fails a vault the identity may not read as PermissionDenied, and says a listing needs the list permission', async () => {
    const closed = kv.addVault('closed-kv2', { allow: [] }).url;
    kv.setSecret('closed-kv2', 'x', 'v');

    await expect(reader(undefined, closed, 'closed-kv2').getSecret('x', '', signal)).rejects.toMatchObject({ status: 'PermissionDenied' });
    const listing = await reader(undefined, closed, 'closed-kv2').listVersions('secret', 'x', signal).catch((err: unknown) => err);
    expect(listing).toMatchObject({ status: 'PermissionDenied', message: expect.stringContaining('list permission') });
  });

  it('retries a 503 and then answers', async () => {
    kv.setSecret(VAULT, 'flaky', 'ok');
    kv.injectFaults({ status: 503, count: 1, vault: VAULT });

    await expect(reader().getSecret('flaky', '', signal)).resolves.toMatchObject({ value: 'ok' });
    expect(kv.count({ status: 503 })).toBe(1);
  });

  it('shares one read between concurrent callers of the same object', async () => {
    kv.setSecret(VAULT, 'popular', 'v');
    const shared = reader();
    await shared.getSecret('popular', '', signal); // the challenge is known from here on
    kv.clearRequests();

    const values = await Promise.all([1, 2, 3].map(() => shared.getSecret('POPULAR', '', signal)));

    expect(values.map((v) => v.value)).toEqual(['v', 'v', 'v']);
    expect(kv.count({ status: 200 })).toBe(1);
  });

  it('drops a token Key Vault rejects and reads again with a fresh one', async () => {
    kv.setSecret(VAULT, 'after-revoke', 'v');
    const credential = new TestCredential(tokens);
    const shared = reader(credential);
    await shared.getSecret('after-revoke', '', signal);
    tokens.revokeIdentity(IDENTITY);

    await expect(shared.getSecret('after-revoke', '', signal)).resolves.toMatchObject({ value: 'v' });
    expect(credential.invalidations).toBe(1);
  });

  it('fails at once with the abort reason when the mount is cancelled', async () => {
    const controller = new AbortController();
    controller.abort(new ProviderError('Cancelled', 'the driver cancelled the mount'));

    await expect(reader().getSecret('db-password', '', controller.signal)).rejects.toMatchObject({ status: 'Cancelled' });
  });
});
