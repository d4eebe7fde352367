/**
 * `csi-provider-azure check --probe`, the real command as an operator runs it in a provider pod: the installed bin in
 * its own process, with exactly the environment a provider pod has towards Azure (IMDS, HTTPS_PROXY, the CA), against
 * the local stand-ins of IMDS and Key Vault. Each failure class, a pass, the skipped pod-only identities, the bounded
 * wait, and the canary: no secret value and no token in anything the command prints.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startAzureStandIns, type AzureStandIns } from '../support/azure-standins';
import { repoRoot } from '../support/driver-client';
import { createServiceAccountIssuer, startEntra, WORKLOAD_IDENTITY_AUDIENCE, type EntraStandIn, type ServiceAccountIssuer } from '../support/entra';
import { ecPublicKey } from '../support/keys';

const SYSTEM = 'probe-node-identity';
const OUTSIDER = { id: 'probe-outsider', clientId: '0a1b2c3d-0000-4000-8000-0000000000aa', resourceId: '/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/outsider' };
const UNKNOWN_CLIENT_ID = '0a1b2c3d-0000-4000-8000-0000000000ff';
const SECRET_VALUE = 'canary-probe-secret-3f9a1c';
const OLD_VALUE = 'canary-probe-old-value-81d2';
const SP_CLIENT_SECRET = 'canary-sp-client-secret-77b1';
const SP_WRONG_SECRET = 'canary-sp-wrong-secret-0c3e';
const SP = { clientId: 'a1a1a1a1-0000-4000-8000-0000000000bb', identityId: 'probe-sp' };

let azure: AzureStandIns;
let entra: EntraStandIn | undefined;
let cluster: ServiceAccountIssuer;
const WI = { clientId: 'e1e1e1e1-0000-4000-8000-0000000000cc', identityId: 'probe-wi' };
let dir: string;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The installed command, with a provider pod's environment only (nothing of the test runner's). */
function check(args: string[], stdin?: string, env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(repoRoot(), 'bin', 'csi-provider-azure.js'), 'check', ...args], {
      env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: process.env['HOME'] ?? tmpdir(), ...azure.providerEnv(), ...env },
      cwd: repoRoot(),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(stdin ?? '');
  });
}

function classFile(name: string, parameters: Record<string, string>): string {
  const yaml = [
    'apiVersion: secrets-store.csi.x-k8s.io/v1',
    'kind: SecretProviderClass',
    `metadata: {name: ${name}, namespace: shop}`,
    'spec:',
    '  provider: azure',
    '  parameters:',
    ...Object.entries(parameters).map(([k, v]) => `    ${k}: ${JSON.stringify(v)}`),
  ].join('\n');
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, `${yaml}\n`);
  return file;
}

const objects = (...items: string[]): string => `array:\n${items.map((i) => `  - |\n${i.split('\n').map((l) => `    ${l}`).join('\n')}`).join('\n')}\n`;

const base = (vault: string, extra: Record<string, string> = {}): Record<string, string> => ({
  useVMManagedIdentity: 'true',
  keyvaultName: vault,
  tenantId: azure.tenantId,
  ...extra,
});

/** Nothing the command printed holds a secret value, a client secret or any token the stand-ins issued. */
function expectNoSecrets(run: Run): void {
  const printed = run.stdout + run.stderr;
  for (const value of [SECRET_VALUE, OLD_VALUE, SP_CLIENT_SECRET, SP_WRONG_SECRET]) expect(printed).not.toContain(value);
  for (const { token } of azure.tokens.all()) expect(printed).not.toContain(token);
  expect(printed).not.toMatch(/eyJ[A-Za-z0-9_-]{4,}\./);
}

function lineFor(run: Run, subject: string): string {
  const line = run.stdout.split('\n').find((l) => l.includes(subject));
  if (!line) throw new Error(`no line about ${subject} in:\n${run.stdout}\n${run.stderr}`);
  return line;
}

beforeAll(async () => {
  azure = await startAzureStandIns({
    identities: { systemAssigned: { id: SYSTEM }, userAssigned: [OUTSIDER] },
    route: (host, port) => entra?.route(host, port),
  });
  cluster = createServiceAccountIssuer();
  entra = await startEntra({
    pki: azure.pki,
    tokens: azure.tokens,
    trustedIssuers: [{ issuer: cluster.issuer, publicKey: cluster.publicKey }],
    applications: [
      { ...SP, tenantId: azure.tenantId, secrets: [SP_CLIENT_SECRET] },
      { ...WI, tenantId: azure.tenantId, federatedCredentials: [{ issuer: cluster.issuer, subject: 'system:serviceaccount:shop:shop-sa' }] },
    ],
  });
  dir = mkdtempSync(join(tmpdir(), 'check-probe-'));
  const kv = azure.keyVault;
  kv.addVault('probe-kv', { allow: [SYSTEM, SP.identityId, WI.identityId], accessModel: 'rbac' });
  kv.setSecret('probe-kv', 'db-password', OLD_VALUE);
  kv.setSecret('probe-kv', 'db-password', SECRET_VALUE);
  kv.setKey('probe-kv', 'signing-key', ecPublicKey('P-256').export({ format: 'jwk' }));
  kv.setCertificate('probe-kv', 'tls', azure.pki.issueServerCert(['shop.example']).certPem);
  kv.addVault('policy-kv', { allow: [SYSTEM], accessModel: 'accessPolicy' });
  kv.setSecret('policy-kv', 'db-password', SECRET_VALUE);
  kv.addVault('flaky-kv', { allow: [SYSTEM] });
  kv.setSecret('flaky-kv', 'db-password', SECRET_VALUE);
  kv.addVault('busy-kv', { allow: [SYSTEM] });
  kv.setSecret('busy-kv', 'db-password', SECRET_VALUE);
  kv.injectFaults({ vault: 'flaky-kv', status: 500, ratio: 1 });
  kv.injectFaults({ vault: 'busy-kv', status: 429, retryAfterSeconds: 1, ratio: 1 });
});

afterAll(async () => {
  await entra?.close();
  await azure?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('check --probe', () => {
  it('proves every object of a class readable with the node identity, printing no value, and exits 0', async () => {
    const file = classFile('all-ok', base('probe-kv', {
      objects: objects(
        'objectName: db-password\nobjectType: secret',
        'objectName: signing-key\nobjectType: key',
        'objectName: tls\nobjectType: cert',
        'objectName: db-password\nobjectType: secret\nobjectAlias: history\nobjectVersionHistory: 2',
        'objectName: not-there\nobjectType: secret\noptional: "true"',
      ),
    }));
    const before = azure.keyVault.requests.length;
    const run = await check(['--probe', file, '--']);
    expect(run.code).toBe(0);
    expect(lineFor(run, 'objects.array[0] (secret "db-password") in Key Vault "probe-kv"')).toMatch(/: ok: readable \(version [0-9a-f]{32}; the value was read and discarded, not shown\)$/);
    expect(lineFor(run, '(key "signing-key")')).toContain(': ok: readable');
    expect(lineFor(run, '(cert "tls")')).toContain(': ok: readable');
    expect(lineFor(run, 'objects.array[3]')).toContain(': ok: versions listed (2 selected), readable');
    expect(lineFor(run, 'not-there')).toMatch(/: ok: .*404.*optional/);
    expect(run.stdout.trim().split('\n')).toHaveLength(5);
    expect(run.stderr).toContain('1 SecretProviderClass checked, 0 with problems; probed: 5 ok, 0 failed, 0 skipped');
    // The reads a mount makes, nothing more: one get per object (two for the history's listing and its newest version).
    const reads = azure.keyVault.requests.slice(before).filter((r) => r.status === 200 || r.status === 404);
    const newest = azure.keyVault.versions('probe-kv', 'secret', 'db-password').at(-1)!;
    expect(reads.map((r) => `${r.operation} ${r.path}`).sort()).toEqual(
      [
        'get /certificates/tls/',
        'get /keys/signing-key/',
        'get /secrets/db-password/',
        `get /secrets/db-password/${newest}`,
        'get /secrets/not-there/',
        'list /secrets/db-password/versions',
      ].sort(),
    );
    expectNoSecrets(run);
  });

  it('names each failure class, one line per object, and exits 1', async () => {
    const files = [
      classFile('permission', base('probe-kv', {
        userAssignedIdentityID: OUTSIDER.clientId,
        objects: objects('objectName: db-password\nobjectType: secret', 'objectName: signing-key\nobjectType: key', 'objectName: tls\nobjectType: cert'),
      })),
      classFile('policy', base('policy-kv', { userAssignedIdentityID: OUTSIDER.clientId, objects: objects('objectName: db-password\nobjectType: secret') })),
      classFile('token', base('probe-kv', { userAssignedIdentityID: UNKNOWN_CLIENT_ID, objects: objects('objectName: db-password\nobjectType: secret') })),
      classFile('not-found', base('probe-kv', { objects: objects('objectName: gone\nobjectType: secret') })),
      // No such vault: the name does not resolve to a vault (here the TLS handshake is refused, as for a wrong name).
      classFile('network', base('nowhere-kv', { objects: objects('objectName: db-password\nobjectType: secret') })),
      classFile('outage', base('flaky-kv', { objects: objects('objectName: db-password\nobjectType: secret') })),
    ];
    const run = await check(['--probe', ...files, '--']);
    expect(run.code).toBe(1);
    const permission = lineFor(run, 'shop/permission: objects.array[0] (secret "db-password")');
    expect(permission).toContain(': permission: ');
    expect(permission).toContain(OUTSIDER.clientId);
    expect(permission).toContain('"Key Vault Secrets User"');
    expect(lineFor(run, 'shop/permission: objects.array[1] (key "signing-key")')).toMatch(/: permission: .*"Key Vault Crypto User"/);
    expect(lineFor(run, 'shop/permission: objects.array[2] (cert "tls")')).toMatch(/: permission: .*"Key Vault Certificate User"/);
    expect(lineFor(run, 'shop/policy:')).toMatch(/: permission: .*access policy .*get/i);
    const token = lineFor(run, 'shop/token:');
    expect(token).toMatch(/: identity: token: /);
    expect(token).toContain(UNKNOWN_CLIENT_ID);
    expect(lineFor(run, 'shop/not-found:')).toMatch(/\(secret "gone"\) in Key Vault "probe-kv": not found: .*404/);
    expect(lineFor(run, 'shop/network:')).toMatch(/Key Vault "nowhere-kv": network: /);
    expect(lineFor(run, 'shop/outage:')).toMatch(/Key Vault "flaky-kv": vault outage: .*500.*gave up after \d+ attempts/);
    expect(run.stderr).toContain('6 SecretProviderClasses checked, 6 with problems; probed: 0 ok, 8 failed, 0 skipped');
    expectNoSecrets(run);
  });

  it('waits no longer than --probe-timeout for a vault that keeps throttling, and says so', async () => {
    const file = classFile('throttled', base('busy-kv', { objects: objects('objectName: db-password\nobjectType: secret') }));
    const run = await check(['--probe', '--probe-timeout', '3s', file, '--']);
    expect(run.code).toBe(1);
    expect(lineFor(run, 'shop/throttled:')).toMatch(/vault outage: still retrying after \d+ attempts: .*throttled.*\(gave up at --probe-timeout\)/);
    expectNoSecrets(run);
  });

  it('gives up on a token endpoint that never answers at --probe-timeout, as a token failure naming the identity', async () => {
    // An IMDS that accepts connections and never answers (a hung NMI or a blackholed link-local route).
    const held = new Set<Socket>();
    const silent = createServer((socket) => held.add(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const port = (silent.address() as { port: number }).port;
      const file = classFile('silent-imds', base('probe-kv', { objects: objects('objectName: db-password\nobjectType: secret') }));
      const run = await check(['--probe', '--probe-timeout', '2s', file, '--'], undefined, { AZURE_POD_IDENTITY_AUTHORITY_HOST: `http://127.0.0.1:${port}` });
      expect(run.code).toBe(1);
      expect(lineFor(run, 'shop/silent-imds:')).toMatch(/identity: token: the node's system-assigned managed identity: .*(2s|did not answer|no answer)/i);
      expectNoSecrets(run);
    } finally {
      for (const socket of held) socket.destroy();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });

  it('skips identities that exist only in a pod, saying what they need, and never counts them as passed', async () => {
    const files = [
      classFile('service-principal', { keyvaultName: 'probe-kv', tenantId: azure.tenantId, objects: objects('objectName: db-password\nobjectType: secret') }),
      classFile('workload', { keyvaultName: 'probe-kv', tenantId: azure.tenantId, clientID: OUTSIDER.clientId, objects: objects('objectName: db-password\nobjectType: secret') }),
      classFile('pod-identity', { usePodIdentity: 'true', keyvaultName: 'probe-kv', tenantId: azure.tenantId, objects: objects('objectName: db-password\nobjectType: secret') }),
    ];
    const run = await check(['--probe', ...files, '--']);
    expect(run.code).toBe(0);
    expect(lineFor(run, 'shop/service-principal:')).toMatch(/identity: skipped: needs the pod's nodePublishSecretRef Secret .*--node-publish-secret-file/);
    expect(lineFor(run, 'shop/workload:')).toMatch(/identity: skipped: needs the pod's service-account token/);
    expect(lineFor(run, 'shop/pod-identity:')).toMatch(/identity: skipped: .*NMI/);
    expect(run.stderr).toContain('probed: 0 ok, 0 failed, 3 skipped (not proven)');
  });

  it('probes a service principal with the Secret handed over on stdin, never printing its client secret', async () => {
    const file = classFile('sp-stdin', { keyvaultName: 'probe-kv', tenantId: azure.tenantId, objects: objects('objectName: db-password\nobjectType: secret') });
    const secret = (clientSecret: string): string =>
      [
        'apiVersion: v1',
        'kind: Secret',
        'metadata: {name: sp, namespace: shop}',
        'data:',
        `  clientid: ${Buffer.from(SP.clientId).toString('base64')}`,
        `  clientsecret: ${Buffer.from(clientSecret).toString('base64')}`,
      ].join('\n');
    // --class keeps the Secret to the class that uses it: the other service principal class is not checked.
    const other = classFile('other-sp', { keyvaultName: 'probe-kv', tenantId: azure.tenantId, objects: objects('objectName: db-password\nobjectType: secret') });
    const ok = await check(['--probe', '--class', 'shop/sp-stdin', '--node-publish-secret-file', '-', file, other, '--'], secret(SP_CLIENT_SECRET));
    expect(ok.code).toBe(0);
    expect(ok.stdout).not.toContain('other-sp');
    expect(ok.stderr).toContain('1 SecretProviderClass checked, 0 with problems; probed: 1 ok');
    expect(lineFor(ok, 'shop/sp-stdin:')).toMatch(/\(secret "db-password"\) in Key Vault "probe-kv": ok: readable/);
    expectNoSecrets(ok);

    const wrong = await check(['--probe', '--node-publish-secret-file', '-', file, '--'], secret(SP_WRONG_SECRET));
    expect(wrong.code).toBe(1);
    expect(lineFor(wrong, 'shop/sp-stdin:')).toMatch(new RegExp(`identity: token: the service principal with client ID ${SP.clientId}`));
    expectNoSecrets(wrong);
  });

  it('reports a class the provider\'s node identity policy refuses, without calling Azure for it', async () => {
    const file = classFile('refused', base('probe-kv', { objects: objects('objectName: db-password\nobjectType: secret') }));
    const before = azure.keyVault.requests.length;
    const run = await check(['--probe', file, '--', '--node-identity-policy=deny']);
    expect(run.code).toBe(1);
    expect(lineFor(run, 'shop/refused:')).toMatch(/identity: policy: useVMManagedIdentity is refused by this cluster's node identity policy/);
    expect(azure.keyVault.requests.length).toBe(before);
  });

  it('probes a workload identity with a service account token handed over on stdin, never printing it', async () => {
    const file = classFile('workload-stdin', { clientID: WI.clientId, keyvaultName: 'probe-kv', tenantId: azure.tenantId, objects: objects('objectName: db-password\nobjectType: secret') });
    const issue = (serviceAccount: string): string => cluster.issue({ namespace: 'shop', serviceAccount, audience: WORKLOAD_IDENTITY_AUDIENCE }).token;
    const shopToken = issue('shop-sa');
    const ok = await check(['--probe', '--service-account-token-file', '-', file, '--'], `${shopToken}\n`);
    expect(ok.code).toBe(0);
    expect(lineFor(ok, 'shop/workload-stdin:')).toMatch(/\(secret "db-password"\) in Key Vault "probe-kv": ok: readable/);
    // A service account the identity is not federated with: Entra ID refuses the exchange, a token failure.
    const otherToken = issue('other-sa');
    const refused = await check(['--probe', '--service-account-token-file', '-', file, '--'], otherToken);
    expect(refused.code).toBe(1);
    expect(lineFor(refused, 'shop/workload-stdin:')).toMatch(new RegExp(`identity: token: the workload identity with client ID ${WI.clientId} .*service account shop/other-sa`));
    for (const run of [ok, refused]) {
      expectNoSecrets(run);
      for (const token of [shopToken, otherToken]) {
        expect(run.stdout + run.stderr).not.toContain(token);
        expect(run.stdout + run.stderr).not.toContain(token.split('.')[2]);
      }
    }
  });

  it('refuses probe-only options without --probe, and a bad --probe-timeout, with exit status 2', async () => {
    const file = classFile('usage', base('probe-kv', { objects: objects('objectName: db-password\nobjectType: secret') }));
    expect((await check([file, '--', '-v=2'])).code).toBe(2);
    const bad = await check(['--probe', '--probe-timeout', 'soon', file]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--probe-timeout "soon" is not a duration');
    const flags = await check(['--probe', file, '--', '--no-such-flag']);
    expect(flags.code).toBe(2);
    expect(flags.stderr).toContain('the provider flags do not parse: unknown flag --no-such-flag');
  });
});
