/**
 * Proves the Azure stand-ins speak the real contracts: the official SDK (@azure/identity's ManagedIdentityCredential
 * and the Key Vault clients from node_modules) runs in a child process whose only configuration is providerEnv(),
 * exactly as the provider will, and reads secrets, keys and certificates through the CONNECT proxy over TLS.
 * No provider is involved.
 */
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { request as httpsRequest, Agent } from 'node:https';
import forge from 'node-forge';
import { startAzureStandIns, DEFAULT_SYSTEM_IDENTITY, type AzureStandIns } from '../support/azure-standins';
import { repoRoot } from '../support/driver-client';
import { ecPublicKey, rsaPublicKey } from '../support/keys';

const UA = {
  id: 'ua-identity-1',
  clientId: '11111111-2222-3333-4444-555555555555',
  resourceId: '/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/ua1',
};

/** Runs in the child: the SDK as the provider would use it. Input is argv[1] (JSON), output one JSON line. */
const CHILD = `
const { ManagedIdentityCredential } = require('@azure/identity');
const { SecretClient } = require('@azure/keyvault-secrets');
const { KeyClient } = require('@azure/keyvault-keys');
const { CertificateClient } = require('@azure/keyvault-certificates');
const input = JSON.parse(process.argv[1]);
const b64u = (u) => (u ? Buffer.from(u).toString('base64url') : undefined);
async function run(op, credential) {
  const url = 'https://' + op.vault + '.' + (op.suffix || 'vault.azure.net');
  switch (op.op) {
    case 'getSecret': {
      const s = await new SecretClient(url, credential).getSecret(op.name, op.version ? { version: op.version } : {});
      return { value: s.value, version: s.properties.version, contentType: s.properties.contentType,
               kid: s.properties.certificateKeyId, managed: s.properties.managed, enabled: s.properties.enabled };
    }
    case 'getKey': {
      const k = await new KeyClient(url, credential).getKey(op.name, op.version ? { version: op.version } : {});
      return { kty: k.keyType, n: b64u(k.key.n), e: b64u(k.key.e), crv: k.key.crv, x: b64u(k.key.x), y: b64u(k.key.y),
               version: k.properties.version, keyOps: k.keyOperations };
    }
    case 'getCertificate': {
      const client = new CertificateClient(url, credential);
      const c = op.version ? await client.getCertificateVersion(op.name, op.version) : await client.getCertificate(op.name);
      return { cer: Buffer.from(c.cer).toString('base64'), version: c.properties.version, secretId: c.secretId, keyId: c.keyId };
    }
    case 'listVersions': {
      const pages = [];
      const maxPageSize = op.maxPageSize;
      const list = op.kind === 'secret' ? new SecretClient(url, credential).listPropertiesOfSecretVersions(op.name)
        : op.kind === 'key' ? new KeyClient(url, credential).listPropertiesOfKeyVersions(op.name)
        // The certificates client ignores byPage's maxPageSize; its page size is the maxresults option.
        : new CertificateClient(url, credential).listPropertiesOfCertificateVersions(op.name, maxPageSize ? { maxresults: maxPageSize } : {});
      for await (const page of list.byPage(maxPageSize ? { maxPageSize } : {})) {
        pages.push(page.map((p) => ({ version: p.version, enabled: p.enabled, created: p.createdOn && p.createdOn.getTime() })));
      }
      return { pages };
    }
  }
}
(async () => {
  const id = input.identity || {};
  const credential = id.clientId ? new ManagedIdentityCredential({ clientId: id.clientId })
    : id.resourceId ? new ManagedIdentityCredential({ resourceId: id.resourceId })
    : new ManagedIdentityCredential();
  const out = [];
  for (const op of input.ops) {
    try { out.push({ ok: await run(op, credential) }); }
    catch (e) { out.push({ error: { name: e.name, code: e.code, statusCode: e.statusCode, message: String(e.message).slice(0, 600) } }); }
  }
  process.stdout.write(JSON.stringify(out) + '\\n');
})().catch((e) => { console.error(e); process.exit(3); });
`;

type Op = Record<string, unknown>;
interface OpResult {
  ok?: Record<string, unknown>;
  error?: { name: string; code?: string; statusCode?: number; message: string };
}

/** Runs the SDK in a child with providerEnv() as its whole environment (plus PATH), asynchronously: the stand-ins
 * live in this process, so a synchronous spawn would deadlock. */
function sdk(standIns: AzureStandIns, identity: { clientId?: string; resourceId?: string }, ops: Op[]): Promise<OpResult[]> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['-e', CHILD, JSON.stringify({ identity, ops })],
      { cwd: repoRoot(), env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', ...standIns.providerEnv() }, timeout: 60_000 },
      (err, stdout, stderr) => {
        if (err) return reject(new Error(`SDK child failed: ${err.message}\n${stderr}`));
        resolve(JSON.parse(stdout) as OpResult[]);
      },
    );
  });
}

describe('Azure stand-ins with the real SDK', () => {
  let s: AzureStandIns;

  beforeEach(async () => {
    s = await startAzureStandIns({
      identities: { systemAssigned: { id: DEFAULT_SYSTEM_IDENTITY }, userAssigned: [UA] },
    });
  });
  afterEach(async () => {
    await s.close();
  });

  test('system-assigned identity reads a secret: IMDS query, one 401 challenge, then the authorized GET', async () => {
    s.keyVault.addVault('contoso-kv', { allow: [DEFAULT_SYSTEM_IDENTITY] });
    const version = s.keyVault.setSecret('contoso-kv', 'db-password', 's3cr3t', { contentType: 'text/plain' });

    const [result] = await sdk(s, {}, [{ op: 'getSecret', vault: 'contoso-kv', name: 'db-password' }]);

    expect(result!.ok).toEqual(expect.objectContaining({ value: 's3cr3t', version, contentType: 'text/plain', enabled: true }));
    expect(s.imds.requests).toEqual([
      {
        method: 'GET',
        path: '/metadata/identity/oauth2/token/',
        query: { 'api-version': '2018-02-01', resource: 'https://vault.azure.net' },
        status: 200,
        metadata: true,
        identityId: DEFAULT_SYSTEM_IDENTITY,
      },
    ]);
    expect(s.keyVault.requests.map((r) => [r.method, r.path, r.status, r.identityId])).toEqual([
      ['GET', '/secrets/db-password/', 401, undefined],
      ['GET', '/secrets/db-password/', 200, DEFAULT_SYSTEM_IDENTITY],
    ]);
    expect(s.keyVault.requests[1]!.query['api-version']).toBe('2025-07-01');
    expect(s.proxy.tunnels).toContain('contoso-kv.vault.azure.net:443');
    expect(s.tokens.issued()).toHaveLength(1);
  });

  test('user-assigned identity by client id, and by resource id', async () => {
    s.keyVault.addVault('contoso-kv', { allow: [UA.id] });
    s.keyVault.setSecret('contoso-kv', 'api-key', 'by-ua');

    const [byClientId] = await sdk(s, { clientId: UA.clientId }, [{ op: 'getSecret', vault: 'contoso-kv', name: 'api-key' }]);
    const [byResourceId] = await sdk(s, { resourceId: UA.resourceId }, [{ op: 'getSecret', vault: 'contoso-kv', name: 'api-key' }]);

    expect(byClientId!.ok?.['value']).toBe('by-ua');
    expect(byResourceId!.ok?.['value']).toBe('by-ua');
    expect(s.imds.requests.map((r) => r.query)).toEqual([
      { 'api-version': '2018-02-01', resource: 'https://vault.azure.net', client_id: UA.clientId },
      { 'api-version': '2018-02-01', resource: 'https://vault.azure.net', msi_res_id: UA.resourceId },
    ]);
    expect(s.keyVault.count({ status: 200, identityId: UA.id })).toBe(2);
  });

  test('unknown user-assigned identity: IMDS 400 "Identity not found", not retried by the SDK', async () => {
    s.keyVault.addVault('contoso-kv', { allow: [UA.id] });
    s.keyVault.setSecret('contoso-kv', 'api-key', 'x');

    const [result] = await sdk(s, { clientId: '99999999-9999-9999-9999-999999999999' }, [
      { op: 'getSecret', vault: 'contoso-kv', name: 'api-key' },
    ]);

    expect(result!.error?.name).toBe('CredentialUnavailableError');
    expect(result!.error?.message).toContain('Identity not found');
    expect(s.imds.requests.map((r) => r.status)).toEqual([400]);
    // Key Vault saw only the unauthenticated first request.
    expect(s.keyVault.requests.map((r) => r.status)).toEqual([401]);
  });

  test('missing secret is 404 SecretNotFound; identity without access is 403 Forbidden/AccessDenied', async () => {
    s.keyVault.addVault('contoso-kv', { allow: [DEFAULT_SYSTEM_IDENTITY] });
    s.keyVault.addVault('other-kv', { allow: [] });
    s.keyVault.setSecret('other-kv', 'secret', 'nope');

    const [missing, denied] = await sdk(s, {}, [
      { op: 'getSecret', vault: 'contoso-kv', name: 'no-such-secret' },
      { op: 'getSecret', vault: 'other-kv', name: 'secret' },
    ]);

    expect(missing!.error).toEqual(expect.objectContaining({ name: 'RestError', statusCode: 404, code: 'SecretNotFound' }));
    expect(missing!.error!.message).toContain('A secret with (name/id) no-such-secret was not found in this key vault');
    expect(denied!.error).toEqual(expect.objectContaining({ statusCode: 403, code: 'Forbidden' }));
    expect(denied!.error!.message).toContain('does not have secrets get permission on key vault');
    // One token serves both vaults (same audience); each new client pays one 401 challenge.
    expect(s.imds.tokenRequestCount()).toBe(1);
    expect(s.keyVault.requests.map((r) => [r.vault, r.status])).toEqual([
      ['contoso-kv', 401],
      ['contoso-kv', 404],
      ['other-kv', 401],
      ['other-kv', 403],
    ]);
  });

  test('keys, certificates and paged version listings', async () => {
    s.keyVault.addVault('contoso-kv', { allow: [DEFAULT_SYSTEM_IDENTITY] });
    const rsa = rsaPublicKey(2048).export({ format: 'jwk' });
    const ec = ecPublicKey('P-256').export({ format: 'jwk' });
    const rsaVersion = s.keyVault.setKey('contoso-kv', 'rsa-key', rsa);
    s.keyVault.setKey('contoso-kv', 'ec-key', ec, { kty: 'EC-HSM' });

    const certVersions: string[] = [];
    const certs: X509Certificate[] = [];
    for (let i = 0; i < 3; i++) {
      const issued = s.pki.issueServerCert([`cert${i}.example.com`]);
      certs.push(new X509Certificate(issued.certPem));
      certVersions.push(s.keyVault.setCertificate('contoso-kv', 'tls', issued.certPem, { privateKeyPem: issued.keyPem }));
    }
    const secretVersions = [1, 2, 3, 4, 5].map((i) => s.keyVault.setSecret('contoso-kv', 'rotating', `v${i}`, { enabled: i !== 2 }));

    const results = await sdk(s, {}, [
      { op: 'getKey', vault: 'contoso-kv', name: 'rsa-key' },
      { op: 'getKey', vault: 'contoso-kv', name: 'ec-key' },
      { op: 'getCertificate', vault: 'contoso-kv', name: 'tls' },
      { op: 'getCertificate', vault: 'contoso-kv', name: 'tls', version: certVersions[0] },
      { op: 'getSecret', vault: 'contoso-kv', name: 'tls' },
      { op: 'listVersions', kind: 'secret', vault: 'contoso-kv', name: 'rotating', maxPageSize: 2 },
      { op: 'listVersions', kind: 'certificate', vault: 'contoso-kv', name: 'tls', maxPageSize: 1 },
      { op: 'listVersions', kind: 'key', vault: 'contoso-kv', name: 'rsa-key' },
    ]);
    const [rsaKey, ecKey, latestCert, firstCert, certSecret, secretList, certList, keyList] = results.map((r) => {
      if (!r.ok) throw new Error(JSON.stringify(r.error));
      return r.ok;
    });

    expect(rsaKey).toEqual(expect.objectContaining({ kty: 'RSA', n: rsa.n, e: rsa.e, version: rsaVersion }));
    expect(ecKey).toEqual(expect.objectContaining({ kty: 'EC-HSM', crv: 'P-256', x: ec.x, y: ec.y }));
    expect(Buffer.from(latestCert!['cer'] as string, 'base64')).toEqual(certs[2]!.raw);
    expect(latestCert!['version']).toBe(certVersions[2]);
    expect(Buffer.from(firstCert!['cer'] as string, 'base64')).toEqual(certs[0]!.raw);
    // The certificate's backing secret, as Key Vault keeps it: PFX, managed, kid pointing at the key.
    expect(certSecret).toEqual(
      expect.objectContaining({
        contentType: 'application/x-pkcs12',
        managed: true,
        kid: `https://contoso-kv.vault.azure.net/keys/tls/${certVersions[2]}`,
        version: certVersions[2],
      }),
    );

    const pfx = forge.pkcs12.pkcs12FromAsn1(forge.asn1.fromDer(Buffer.from(certSecret!['value'] as string, 'base64').toString('binary')), '');
    expect(pfx.getBags({ bagType: forge.pki.oids['certBag']! })[forge.pki.oids['certBag']!]).toHaveLength(1);
    expect(pfx.getBags({ bagType: forge.pki.oids['pkcs8ShroudedKeyBag']! })[forge.pki.oids['pkcs8ShroudedKeyBag']!]).toHaveLength(1);

    const secretPages = secretList!['pages'] as Array<Array<{ version: string; enabled: boolean }>>;
    expect(secretPages.map((p) => p.length)).toEqual([2, 2, 1]);
    const listed = secretPages.flat();
    expect(listed.map((p) => p.version).sort()).toEqual([...secretVersions].sort());
    expect(listed.find((p) => p.version === secretVersions[1])!.enabled).toBe(false);
    expect((certList!['pages'] as unknown[]).length).toBe(3);
    expect((keyList!['pages'] as Array<unknown[]>).flat()).toHaveLength(1);

    // Paging followed the service's nextLinks (with $skiptoken) through the proxy.
    expect(s.keyVault.count({ operation: 'list', kind: 'secret', status: 200 })).toBe(3);
    expect(s.keyVault.requests.some((r) => r.query['$skiptoken'] !== undefined)).toBe(true);
  });

  test('the latest secret version is the newest even when disabled: 403 SecretDisabled', async () => {
    s.keyVault.addVault('contoso-kv', { allow: [DEFAULT_SYSTEM_IDENTITY] });
    const first = s.keyVault.setSecret('contoso-kv', 'rotated', 'old');
    s.keyVault.setSecret('contoso-kv', 'rotated', 'new', { enabled: false });

    const [latest, pinned] = await sdk(s, {}, [
      { op: 'getSecret', vault: 'contoso-kv', name: 'rotated' },
      { op: 'getSecret', vault: 'contoso-kv', name: 'rotated', version: first },
    ]);

    expect(latest!.error).toEqual(expect.objectContaining({ statusCode: 403, code: 'Forbidden' }));
    expect(latest!.error!.message).toBe('Operation get is not allowed on a disabled secret.');
    expect(pinned!.ok?.['value']).toBe('old');
  });

  test('faults: a 503 with Retry-After and a connection reset are retried by the SDK; IMDS 404 is retried too', async () => {
    s.keyVault.addVault('contoso-kv', { allow: [DEFAULT_SYSTEM_IDENTITY] });
    s.keyVault.setSecret('contoso-kv', 'flaky', 'eventually');
    const unavailable = s.keyVault.injectFaults({ status: 503, retryAfterSeconds: 0, count: 1 });
    const reset = s.keyVault.injectFaults({ reset: true, count: 1 });
    s.imds.injectFaults({ status: 404, count: 1 });

    const [result] = await sdk(s, {}, [{ op: 'getSecret', vault: 'contoso-kv', name: 'flaky' }]);

    expect(result!.ok?.['value']).toBe('eventually');
    expect(unavailable.hits()).toBe(1);
    expect(reset.hits()).toBe(1);
    expect(s.imds.requests.map((r) => r.status)).toEqual([404, 200]);
    expect(s.keyVault.requests.map((r) => r.faulted ?? r.status)).toEqual([401, '503', 'reset', 200]);
  }, 30_000);

  test('an unknown vault fails like an unreachable host (TLS refused), never with an HTTP status', async () => {
    const [result] = await sdk(s, {}, [{ op: 'getSecret', vault: 'no-such-vault', name: 'x' }]);
    expect(result!.error?.statusCode).toBeUndefined();
    expect(result!.error?.code).toBe('ECONNRESET');
    expect(s.keyVault.requests).toHaveLength(0);
  }, 30_000);
});

describe('IMDS stand-in answers like IMDS', () => {
  let s: AzureStandIns;
  beforeAll(async () => {
    s = await startAzureStandIns({ identities: { userAssigned: [UA, { ...UA, id: 'ua-2', clientId: 'c2', resourceId: '/r2' }] } });
  });
  afterAll(async () => {
    await s.close();
  });
  const get = async (query: string, headers: Record<string, string> = { Metadata: 'true' }): Promise<{ status: number; body: Record<string, string> }> => {
    const res = await fetch(`${s.imds.url}/metadata/identity/oauth2/token?${query}`, { headers });
    return { status: res.status, body: (await res.json()) as Record<string, string> };
  };

  test('refuses requests without the Metadata header', async () => {
    expect(await get('api-version=2018-02-01&resource=https://vault.azure.net', {})).toEqual({
      status: 400,
      body: { error: 'invalid_request', error_description: 'Required metadata header not specified' },
    });
  });

  test('several user-assigned identities and no selector: refuses; a selector picks one', async () => {
    const none = await get('api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net');
    expect(none.status).toBe(400);
    expect(none.body['error_description']).toMatch(/^Multiple user assigned identities exist/);
    const ok = await get(`api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net&client_id=${UA.clientId.toUpperCase()}`);
    expect(ok.status).toBe(200);
    expect(ok.body).toEqual(
      expect.objectContaining({ client_id: UA.clientId, resource: 'https://vault.azure.net', token_type: 'Bearer', expires_in: '86399' }),
    );
    expect(typeof ok.body['expires_on']).toBe('string');
    expect(s.tokens.check(ok.body['access_token']!)).toEqual(expect.objectContaining({ ok: true }));
  });

  test('missing resource and unknown audience', async () => {
    expect((await get('api-version=2018-02-01')).body['error_description']).toBe('Required audience parameter not specified');
    const unknown = await get(`api-version=2018-02-01&resource=https://vault.azure.net/.default&client_id=${UA.clientId}`);
    expect(unknown.status).toBe(400);
    expect(unknown.body['error']).toBe('invalid_resource');
  });
});

describe('Key Vault stand-in', () => {
  test('keeps connections alive for a client that reuses them', async () => {
    const s = await startAzureStandIns();
    try {
      s.keyVault.addVault('contoso-kv', { allow: [DEFAULT_SYSTEM_IDENTITY] });
      const agent = new Agent({ keepAlive: true, maxSockets: 1, ca: s.pki.caCertPem });
      const once = (): Promise<number> =>
        new Promise((resolve, reject) => {
          const req = httpsRequest(
            {
              host: s.keyVault.host,
              port: s.keyVault.port,
              servername: 'contoso-kv.vault.azure.net',
              path: '/secrets/x/?api-version=2025-07-01',
              headers: { Host: 'contoso-kv.vault.azure.net' },
              agent,
            },
            (res) => {
              res.resume();
              res.on('end', () => resolve(res.statusCode ?? 0));
            },
          );
          req.on('error', reject);
          req.end();
        });
      expect([await once(), await once(), await once()]).toEqual([401, 401, 401]);
      expect(s.keyVault.connectionCount()).toBe(1);
      agent.destroy();
    } finally {
      await s.close();
    }
  });
});
