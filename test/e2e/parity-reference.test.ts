/**
 * Issue 12, end to end: SecretProviderClasses that mount with the reference provider (Azure's Go provider v1.8.2)
 * mount with ours, through the real provider process, with the files the reference writes. Each expected value is
 * derived from the reference's source (pkg/provider/provider.go, types/, validate.go) and the libraries it pins
 * (go-autorest's cloud table, yaml.v3, Go's encoding/pem and x509); the comment beside it says which rule gives it.
 * Where we differ on purpose, the test says what the reference writes and what we write instead.
 *
 * The provider here starts with `--cloud-name=AzureCloud`, the name `az cloud list` prints, which the reference
 * accepts: every mount below is also a check of that flag.
 */
import { status as grpcStatus } from '@grpc/grpc-js';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { join } from 'node:path';
import * as forge from 'node-forge';
import { startAzureStandIns, type AzureStandIns } from '../support/azure-standins';
import { repoRoot, type MountRequestInput, type MountResult } from '../support/driver-client';
import { registerProviderCleanup, startProvider, type ProviderProcess } from '../support/provider-process';
import { objects, rejectionOf } from '../support/spc';
import { makeCert, rsaKey, type TestCert } from '../unit/content/helpers';

registerProviderCleanup();

const SYSTEM = 'parity-node-identity';
const VAULT = 'parity-kv';
const RBAC_VAULT = 'parity-rbac-kv';
const PKCS12 = 'application/x-pkcs12';
const PEM_FILE = 'application/x-pem-file';
const PARITY = join(__dirname, '..', 'fixtures', 'parity');
const CONTENT = join(__dirname, '..', 'fixtures', 'content');
const parity = (name: string) => readFileSync(join(PARITY, name));
const content = (name: string) => readFileSync(join(CONTENT, name));

let azure: AzureStandIns;
/** --cloud-name=AzureCloud, defaults otherwise (--construct-pem-chain=true, no separate files). */
let provider: ProviderProcess;
/** --write-cert-and-key-in-separate-files */
let split: ProviderProcess;
const versions: Record<string, string> = {};

function request(entries: string[], extra: Record<string, string> = {}): MountRequestInput {
  return {
    attributes: {
      'csi.storage.k8s.io/pod.name': 'web-0',
      'csi.storage.k8s.io/pod.namespace': 'shop',
      'csi.storage.k8s.io/pod.uid': '5a6b7c8d',
      'csi.storage.k8s.io/serviceAccount.name': 'web',
      secretProviderClass: 'parity',
      useVMManagedIdentity: 'true',
      keyvaultName: VAULT,
      tenantID: azure.tenantId,
      objects: objects(entries),
      ...extra,
    },
    permission: '420',
    targetPath: '/var/lib/kubelet/pods/5a6b7c8d/volumes/kubernetes.io~csi/parity/mount',
  };
}

async function mount(p: ProviderProcess, entries: string[], extra: Record<string, string> = {}): Promise<MountResult> {
  return p.client.mount(request(entries, extra));
}

/** path → contents (utf-8) of every file of a mount, in response order. */
const files = (result: MountResult) => result.files.map((f) => [f.path, f.contents.toString('utf8')] as const);
const file = (result: MountResult, path: string) => {
  const found = result.files.find((f) => f.path === path);
  if (!found) throw new Error(`no file ${path} in ${result.files.map((f) => f.path).join(', ')}`);
  return found;
};

/** A PFX-backed certificate whose bag order is `stored` (as setCertificate builds it: the leaf, then the chain). */
function storeCertificate(name: string, leaf: TestCert, chain: TestCert[]): void {
  const keyPem = forge.pki.privateKeyToPem(leaf.key.forgePrivate);
  versions[`secret/${name}`] = azure.keyVault.setCertificate(VAULT, name, leaf.pem, { privateKeyPem: keyPem, chainPem: chain.map((c) => c.pem) });
}

/** The file the reference writes for a PFX: keys first, then the certificates in the order given. */
function certificateFile(result: MountResult, path: string): string[] {
  const text = file(result, path).contents.toString('utf8');
  return [...text.matchAll(/-----BEGIN ([A-Z ]+)-----\n[\s\S]*?-----END \1-----\n/g)].map((m) => m[0]);
}

// Certificates for the chain cases: a chain linked by key identifiers, and one whose leaf has no AKI.
const root = makeCert({ name: 'parity-root', key: rsaKey(20), ca: true });
const int = makeCert({ name: 'parity-int', key: rsaKey(21), issuer: root, ca: true });
const leaf = makeCert({ name: 'parity-leaf', key: rsaKey(22), issuer: int });
const leafNoAki = makeCert({ name: 'parity-leaf-noaki', key: rsaKey(23), issuer: int, aki: false });
const rootNoAki = makeCert({ name: 'parity-root-noaki', key: rsaKey(24), ca: true, aki: false });
const intR = makeCert({ name: 'parity-int-r', key: rsaKey(25), issuer: rootNoAki, ca: true });
const leafR = makeCert({ name: 'parity-leaf-r', key: rsaKey(26), issuer: intR });
const keyPemOf = (c: TestCert) => c.key.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();

beforeAll(async () => {
  azure = await startAzureStandIns({
    identities: {
      systemAssigned: { id: SYSTEM },
      userAssigned: [
        { id: 'parity-uai-1', clientId: '7e000000-0000-4000-8000-000000000001', resourceId: '/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/one' },
        { id: 'parity-uai-2', clientId: '7e000000-0000-4000-8000-000000000002', resourceId: '/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/two' },
      ],
    },
  });
  const kv = azure.keyVault;
  kv.addVault(VAULT, { allow: [SYSTEM, 'parity-uai-1'] });
  kv.addVault(RBAC_VAULT, { accessModel: 'rbac' });

  kv.setSecret(VAULT, 'db-password', 'hunter2');
  kv.setSecret(VAULT, 'api-key', 'first');
  kv.setSecret(VAULT, 'api-key-2', 'second');
  for (let i = 0; i < 4; i++) kv.setSecret(VAULT, 'salt', `salt-${i}`);
  versions['cert/web'] = kv.setCertificate(VAULT, 'web', leaf.pem, { privateKeyPem: keyPemOf(leaf), chainPem: [root.pem, int.pem] });

  storeCertificate('chain-shuffled', leaf, [root, int]);
  storeCertificate('chain-leaf-no-aki', leafNoAki, [root, int]);
  storeCertificate('chain-root-twice', leafR, [intR, rootNoAki, rootNoAki]);
  // A PEM-stored certificate (content type application/x-pem-file) with CRLF line ends and lines of 76.
  kv.setSecret(VAULT, 'pem-crlf', parity('pem-crlf.pem').toString('utf8'), {
    contentType: PEM_FILE,
    kid: `https://${VAULT}.vault.azure.net/keys/pem-crlf/0123456789abcdef0123456789abcdef`,
    managed: true,
  });
  kv.setSecret(VAULT, 'pem-ec-params', parity('pem-ec-params.pem').toString('utf8'), {
    contentType: PEM_FILE,
    kid: `https://${VAULT}.vault.azure.net/keys/pem-ec-params/0123456789abcdef0123456789abcdef`,
    managed: true,
  });
  // An EC key without its public key, in a legacy PFX (openssl ec -no_public; see make-inputs.sh).
  kv.setSecret(VAULT, 'ec-nopub', parity('ec-nopub.p12').toString('base64'), {
    contentType: PKCS12,
    kid: `https://${VAULT}.vault.azure.net/keys/ec-nopub/0123456789abcdef0123456789abcdef`,
    managed: true,
  });
  kv.setSecret(VAULT, 'rsa-3des', content('rsa-3des.p12').toString('base64'), {
    contentType: PKCS12,
    kid: `https://${VAULT}.vault.azure.net/keys/rsa-3des/0123456789abcdef0123456789abcdef`,
    managed: true,
  });
  kv.setSecret(RBAC_VAULT, 'db-password', 'hunter2');

  [provider, split] = await Promise.all([
    startProvider({ env: azure.providerEnv(), args: ['--cloud-name=AzureCloud'] }),
    startProvider({ env: azure.providerEnv(), args: ['--cloud-name=AzureCloud', '--write-cert-and-key-in-separate-files'] }),
  ]);
});

afterAll(async () => {
  await Promise.all([provider?.stop(), split?.stop()]);
  await azure?.close();
});

describe('names and values the reference takes', () => {
  // go-autorest's environments table: AZURECLOUD and AZUREPUBLICCLOUD are the public cloud, AZUREUSGOVERNMENT and
  // AZUREUSGOVERNMENTCLOUD US Government; the lookup upper-cases the name.
  it.each(['AzureCloud', 'azurecloud', 'AzurePublicCloud'])('cloudName: %s mounts from the public cloud', async (cloudName) => {
    const result = await mount(provider, ['objectName: db-password\nobjectType: secret'], { cloudName });
    expect(files(result)).toEqual([['db-password', 'hunter2']]);
  });

  it('cloudName: AzureUSGovernment is the US Government cloud (its vault suffix, not the public one)', async () => {
    // The stand-ins serve no vault "parity-kv" in US Gov: the point is which host was asked.
    const err = await rejectionOf(mount(provider, ['objectName: db-password\nobjectType: secret'], { cloudName: 'AzureUSGovernment' }));
    expect(err.details).toContain(`https://${VAULT}.vault.usgovcloudapi.net/`);
  });

  it('YAML nulls (as Helm toYaml writes them) mean "not set": the file is named after objectName', async () => {
    const entry = [
      'objectName: db-password',
      'objectType: secret',
      'objectAlias: null',
      'objectVersion: ~',
      'objectVersionHistory:',
      'objectFormat: null',
      'objectEncoding: null',
      'filePermission: null',
    ].join('\n');
    const result = await mount(provider, [entry]);
    expect(result.files).toEqual([{ path: 'db-password', mode: 0o644, contents: Buffer.from('hunter2') }]);
    expect(result.objectVersion.map((v) => v.id)).toEqual(['secret/db-password']);
  });

  it('filePermission with more leading zeros (00600) is mode 0600', async () => {
    const result = await mount(provider, ['objectName: db-password\nobjectType: secret\nfilePermission: "00600"']);
    expect(file(result, 'db-password').mode).toBe(0o600);
  });

  it('objectVersionHistory 2.5 is 2 (yaml.v3 truncates); the reference writes N+1 = 3 files, we write exactly 2', async () => {
    const result = await mount(provider, ['objectName: salt\nobjectType: secret\nobjectVersionHistory: 2.5']);
    expect(files(result)).toEqual([
      ['salt/0', 'salt-3'],
      ['salt/1', 'salt-2'],
    ]);
  });

  it('objectVersionHistory far above our bound mounts every version there is (the bound lowers it, with a warning)', async () => {
    const result = await mount(provider, ['objectName: salt\nobjectType: secret\nobjectVersionHistory: 100000']);
    expect(files(result).map(([p]) => p)).toEqual(['salt/0', 'salt/1', 'salt/2', 'salt/3']);
    await provider.waitForLog(/objectVersionHistory 100000 is lowered to 4000/);
  });

  it('objectFormat: PFX on a cert mounts the PEM certificate (validate.go compares "pfx" case-sensitively)', async () => {
    const result = await mount(provider, ['objectName: web\nobjectType: cert\nobjectFormat: PFX']);
    expect(files(result)).toEqual([['web', leaf.pem]]);
    await provider.waitForLog(/objectFormat \\?"PFX\\?" is ignored for objectType cert/);
  });
});

describe('where ours failed and the reference mounts: the same files, and a warning', () => {
  it('filePermission "0900" (not octal): the reference writes mode 0, so do we', async () => {
    const result = await mount(provider, ['objectName: db-password\nobjectType: secret\nfilePermission: "0900"']);
    expect(file(result, 'db-password').mode).toBe(0);
    await provider.waitForLog(/filePermission \\?"0900\\?" is not an octal file mode, so the file is written with mode 0/);
  });

  it('two objects writing one path: the volume gets the later one, as the driver keeps the later file', async () => {
    const result = await mount(provider, [
      'objectName: api-key\nobjectType: secret\nobjectAlias: config/api.key',
      'objectName: api-key-2\nobjectType: secret\nobjectAlias: ./config//api.key',
    ]);
    expect(files(result)).toEqual([['config/api.key', 'second']]);
    expect(result.objectVersion.map((v) => v.id)).toEqual(['secret/api-key', 'secret/api-key-2']);
    await provider.waitForLog(/both write the file \\?"config\/api.key\\?": the volume gets objects.array\[1\]/);
  });

  it('a version history whose start version does not exist writes nothing for that object; the rest mounts', async () => {
    const result = await mount(provider, [
      'objectName: db-password\nobjectType: secret',
      'objectName: salt\nobjectType: secret\nobjectVersionHistory: 2\nobjectVersion: ffffffffffffffffffffffffffffffff',
    ]);
    expect(files(result)).toEqual([['db-password', 'hunter2']]);
    await provider.waitForLog(/version ffffffffffffffffffffffffffffffff was not found in Key Vault \\?"parity-kv\\?", so no file is written/);
  });

  it('…and when that leaves the mount without any file, it fails with why (the driver would say "missing object versions")', async () => {
    const err = await rejectionOf(
      mount(provider, ['objectName: salt\nobjectType: secret\nobjectVersionHistory: 2\nobjectVersion: ffffffffffffffffffffffffffffffff']),
    );
    expect(err.code).toBe(grpcStatus.NOT_FOUND);
    expect(err.details).toContain('no object of the SecretProviderClass produced a file');
    expect(err.details).toContain('version ffffffffffffffffffffffffffffffff was not found');
  });

  it('a PEM-stored certificate with objectFormat: pfx gets the stored PEM, as the reference writes it', async () => {
    const result = await mount(provider, ['objectName: pem-crlf\nobjectType: secret\nobjectFormat: pfx']);
    expect(file(result, 'pem-crlf').contents).toEqual(parity('pem-crlf.pem'));
    await provider.waitForLog(/objectFormat pfx was requested, but this certificate is stored as PEM/);
  });
});

describe('the same bytes for certificates', () => {
  it('a chain linked by key identifiers, stored shuffled: key, then leaf → intermediate → root', async () => {
    const result = await mount(provider, ['objectName: chain-shuffled\nobjectType: secret']);
    expect(certificateFile(result, 'chain-shuffled')).toEqual([keyPemOf(leaf), leaf.pem, int.pem, root.pem]);
  });

  it('a leaf without AKI cannot be linked (names are not compared): the stored order, as the reference', async () => {
    const result = await mount(provider, ['objectName: chain-leaf-no-aki\nobjectType: secret']);
    expect(certificateFile(result, 'chain-leaf-no-aki')).toEqual([keyPemOf(leafNoAki), leafNoAki.pem, root.pem, int.pem]);
  });

  it('a root stored twice: both copies, in the stored order, as the reference', async () => {
    const result = await mount(provider, ['objectName: chain-root-twice\nobjectType: secret']);
    expect(certificateFile(result, 'chain-root-twice')).toEqual([keyPemOf(leafR), leafR.pem, intR.pem, rootNoAki.pem, rootNoAki.pem]);
  });

  it('an EC key stored without its public key: the PKCS#8 bytes Go writes (public key filled in)', async () => {
    const result = await mount(provider, ['objectName: ec-nopub\nobjectType: secret']);
    expect(file(result, 'ec-nopub').contents).toEqual(Buffer.concat([parity('ec-nopub.expected-key.pem'), parity('ec-nopub.crt')]));
  });

  it('an RSA key from a legacy PFX: the PKCS#8 bytes Go writes', async () => {
    const result = await mount(provider, ['objectName: rsa-3des\nobjectType: secret']);
    expect(file(result, 'rsa-3des').contents.toString('utf8').startsWith(parity('rsa-leaf.expected-key.pem').toString('utf8'))).toBe(true);
  });

  it.each(['pem-crlf', 'pem-ec-params'])(
    'separate files from a PEM-stored certificate (%s): the combined file as stored, .crt and .key as Go re-encodes them',
    async (name) => {
      const result = await mount(split, [`objectName: ${name}\nobjectType: secret`]);
      expect(file(result, name).contents).toEqual(parity(`${name}.pem`));
      expect(file(result, `${name}.crt`).contents).toEqual(parity(`${name}.expected.crt`));
      expect(file(result, `${name}.key`).contents).toEqual(parity(`${name}.expected.key`));
    },
  );

  it('separate files with objectFormat: pfx: the base64 PFX, and empty .crt and .key (as the reference)', async () => {
    const result = await mount(split, ['objectName: rsa-3des\nobjectType: secret\nobjectFormat: pfx']);
    expect(file(result, 'rsa-3des').contents.toString('utf8')).toBe(content('rsa-3des.p12').toString('base64'));
    expect(file(result, 'rsa-3des.crt').contents).toEqual(Buffer.alloc(0));
    expect(file(result, 'rsa-3des.key').contents).toEqual(Buffer.alloc(0));
  });
});

describe('messages an operator fixes in one step', () => {
  it('Key Vault 403 under Azure RBAC keeps the caller ids and the denied action next to the role', async () => {
    const err = await rejectionOf(mount(provider, ['objectName: db-password\nobjectType: secret'], { keyvaultName: RBAC_VAULT }));
    expect(err.code).toBe(grpcStatus.PERMISSION_DENIED);
    expect(err.details).toContain(`caller appid=${SYSTEM};oid=${SYSTEM}`);
    expect(err.details).toContain('action Microsoft.KeyVault/vaults/secrets/getSecret/action');
    expect(err.details).toContain('grant that principal the "Key Vault Secrets User" role');
  });

  it('a very long input cannot push the status over the gRPC metadata limit: the message is cut, the code kept', async () => {
    const err = await rejectionOf(mount(provider, ['objectName: db-password\nobjectType: secret'], { cloudName: `Mars${'x'.repeat(50_000)}` }));
    // Whatever the message says about the value (its start, or only its length), it names the parameter and fits.
    expect(err.code).toBe(grpcStatus.INVALID_ARGUMENT);
    expect(err.details).toContain('cloudName');
    expect(Buffer.byteLength(err.details)).toBeLessThanOrEqual(4096);
  });

  it('"Multiple user assigned identities exist" is InvalidArgument and says to set userAssignedIdentityID', async () => {
    // A node pool with two user-assigned identities and no system-assigned one; a fresh process has no cached token.
    const system = azure.imds.identities.systemAssigned;
    delete azure.imds.identities.systemAssigned;
    const fresh = await startProvider({ env: azure.providerEnv() });
    try {
      const err = await rejectionOf(fresh.client.mount(request(['objectName: db-password\nobjectType: secret'])));
      expect(err.code).toBe(grpcStatus.INVALID_ARGUMENT);
      expect(err.details).toContain('Multiple user assigned identities exist');
      expect(err.details).toContain("set userAssignedIdentityID to the client ID of one of the node pool's identities");
      expect(err.details).not.toContain('system-assigned managed identity');
      // With the fix applied, the same manifest mounts.
      const fixed = await fresh.client.mount(request(['objectName: db-password\nobjectType: secret'], { userAssignedIdentityID: '7e000000-0000-4000-8000-000000000001' }));
      expect(files(fixed)).toEqual([['db-password', 'hunter2']]);
    } finally {
      azure.imds.identities.systemAssigned = system;
      await fresh.stop();
    }
  });
});

describe('start-up failures: one line, no JavaScript stack trace', () => {
  /** Runs the provider until it exits; returns its exit code and what it wrote. */
  function run(args: string[]): { status: number | null; output: string } {
    const result = spawnSync(process.execPath, [join(repoRoot(), 'bin', 'csi-provider-azure.js'), '--endpoint=unix:///tmp/parity-never.sock', ...args], {
      env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '' },
      encoding: 'utf8',
      timeout: 20_000,
    });
    return { status: result.status, output: `${result.stdout}${result.stderr}` };
  }
  const errorLines = (output: string) => output.split('\n').filter((l) => /FATAL|fatal|failed to start/.test(l));

  it('--cloud-name=Mars', () => {
    const { status, output } = run(['--cloud-name=Mars', '--healthz-port=0', '--prometheus-port=0']);
    expect(status).toBe(1);
    expect(errorLines(output)).toEqual([expect.stringMatching(/--cloud-name .*Mars.* is not a known cloud/)]);
    expect(output).not.toMatch(/\n\s+at .+\(.*\.js:\d+:\d+\)/);
  });

  it('a port in use', async () => {
    const blocker: Server = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, resolve));
    try {
      const port = (blocker.address() as AddressInfo).port;
      const { status, output } = run([`--prometheus-port=${port}`, '--healthz-port=0']);
      expect(status).toBe(1);
      expect(errorLines(output)).toEqual([expect.stringMatching(new RegExp(`--prometheus-port ${port} for the metrics endpoint is already in use`))]);
      expect(output).not.toMatch(/\n\s+at .+\(.*\.js:\d+:\d+\)/);
    } finally {
      blocker.close();
    }
  });
});
