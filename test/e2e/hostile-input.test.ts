/**
 * Issue #14, input: what any SecretProviderClass author (in any namespace) can send the node's provider. Every invalid
 * parameter fails with InvalidArgument naming it, before any call to IMDS, Entra ID or Key Vault; oversized or
 * exponential input is refused without holding the provider; cloudEnvFileName reads only what the operator allows and
 * never tells what else exists. Against the real provider process and the stand-ins.
 */
import { status as grpcStatus } from '@grpc/grpc-js';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync, openSync, ftruncateSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startAzureStandIns, type AzureStandIns } from '../support/azure-standins';
import { rawMount, type MountRequestInput } from '../support/driver-client';
import { registerProviderCleanup, startProvider, type ProviderProcess } from '../support/provider-process';
import { objects, rejectionOf } from '../support/spc';

registerProviderCleanup();

const STACK_SUFFIX = 'vault.hostile.azurestack.example';
const CANARY = 'cloud-file-canary-7f3a2b';

let azure: AzureStandIns;
let provider: ProviderProcess;
let root: string;
let cloudDir: string;
let outside: string;

function request(parameters: Record<string, string | undefined> = {}): MountRequestInput {
  const attributes: Record<string, string> = {
    'csi.storage.k8s.io/pod.name': 'input-0',
    'csi.storage.k8s.io/pod.namespace': 'input',
    useVMManagedIdentity: 'true',
    keyvaultName: 'input-kv',
    tenantID: azure.tenantId,
    objects: objects(['objectName: db\nobjectType: secret']),
  };
  for (const [k, v] of Object.entries(parameters)) {
    if (v === undefined) delete attributes[k];
    else attributes[k] = v;
  }
  return { attributes };
}

/** Requests that reached any Azure stand-in so far. */
const azureRequests = (): number => azure.imds.requests.length + azure.keyVault.requests.length;

async function refusedUpFront(req: MountRequestInput, ...fragments: string[]): Promise<string> {
  const before = azureRequests();
  const err = await rejectionOf(provider.client.mount(req));
  expect(err.code).toBe(grpcStatus.INVALID_ARGUMENT);
  for (const fragment of fragments) expect(err.details).toContain(fragment);
  expect(azureRequests()).toBe(before);
  return err.details;
}

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'hostile-input-'));
  cloudDir = join(root, 'allowed');
  outside = join(root, 'outside');
  mkdirSync(cloudDir);
  mkdirSync(outside);
  azure = await startAzureStandIns({ identities: { systemAssigned: { id: 'input-node' } }, extraVaultSuffixes: [STACK_SUFFIX], extraImdsResources: [`https://${STACK_SUFFIX}`] });
  azure.keyVault.addVault('input-kv', { allow: ['input-node'] });
  azure.keyVault.setSecret('input-kv', 'db', 'db-value');
  azure.keyVault.addVault('stack-kv', { suffix: STACK_SUFFIX, allow: ['input-node'] });
  azure.keyVault.setSecret('stack-kv', 'db', 'stack-value');
  provider = await startProvider({ env: azure.providerEnv(), args: [`--cloud-env-file-dir=${cloudDir}`] });
}, 60_000);

afterAll(async () => {
  await provider?.stop();
  await azure?.close();
  rmSync(root, { recursive: true, force: true });
});

describe('5. unbounded input is refused before it can hold the provider', () => {
  it('an objects mapping of 20,000 keys, 3.5 MB of objects and 1001 objects are refused at once; others keep mounting', async () => {
    const keys = `array:\n  - |\n    objectName: db\n    objectType: secret\n${Array.from({ length: 20_000 }, (_, i) => `k${i}: v`).join('\n')}\n`;
    const many = objects(Array.from({ length: 1001 }, (_, i) => `objectName: s${i}\nobjectType: secret`));
    const started = Date.now();
    const results = await Promise.all([
      rejectionOf(provider.client.mount(request({ objects: keys }))),
      rejectionOf(provider.client.mount(request({ objects: 'x'.repeat(3_500_000) }))),
      rejectionOf(provider.client.mount(request({ objects: many }))),
      provider.client.mount(request()),
    ]);
    expect(Date.now() - started).toBeLessThan(10_000);
    for (const err of results.slice(0, 3) as Array<{ code: number; details: string }>) {
      expect(err.code).toBe(grpcStatus.INVALID_ARGUMENT);
      expect(err.details).toMatch(/above the limit of (128 KiB|512 KiB|1000)/);
    }
    expect((results[3] as { files: unknown[] }).files).toHaveLength(1);
  });

  it('objects texts that are slow to parse (within the bound) do not hold other mounts or /healthz', async () => {
    // Deep flow nesting and many keys: each takes the YAML parser a good fraction of a second, in a worker thread.
    const nested = `array: []\nx: [${'[[[1]]],'.repeat(15_000)}]\n`;
    const keys = `array: []\n${Array.from({ length: 12_000 }, (_, i) => `k${i}: v`).join('\n')}\n`;
    const finished: string[] = [];
    const slow = [nested, keys, nested, keys].map((text, i) =>
      provider.client.mount(request({ objects: text }), { deadlineMs: 60_000 }).then(
        () => finished.push(`slow${i}`),
        () => finished.push(`slow${i}`),
      ),
    );
    await new Promise((resolve) => setTimeout(resolve, 50));
    const small = provider.client.mount(request()).then(() => finished.push('small'));
    const health = fetch(`http://127.0.0.1:${provider.healthzPort}/healthz`).then((r) => finished.push(`healthz ${r.status}`));
    await Promise.all([...slow, small, health]);
    // The small mount and the health check were answered while the slow texts were still being parsed.
    expect(finished.indexOf('small')).toBeLessThan(finished.indexOf('slow3'));
    expect(finished.indexOf('healthz 200')).toBeLessThan(finished.indexOf('slow3'));
  }, 60_000);

  it('a mapping with thousands of keys under the size bound is checked for duplicates in one pass', async () => {
    const keys = Array.from({ length: 9_000 }, (_, i) => `k${i}: v`).join('\n');
    await refusedUpFront(request({ objects: `${keys}\nk1: again\n` }), 'the key "k1" appears twice');
  });
});

describe('8. YAML anchors, aliases and merge keys', () => {
  it('are resolved as the reference resolves them', async () => {
    const yaml = [
      'defaults: &defaults |',
      '  objectType: secret',
      'array:',
      '  - |',
      '    common: &common',
      '      objectType: secret',
      '    <<: *common',
      '    objectName: db',
      '',
    ].join('\n');
    const result = await provider.client.mount(request({ objects: yaml }));
    expect(result.files.map((f) => f.contents.toString())).toEqual(['db-value']);
  });

  it('an exponential alias expansion ("billion laughs") is refused at once with InvalidArgument', async () => {
    const levels = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
    for (const [i, name] of ['b', 'c', 'd', 'e', 'f', 'g', 'h', 'i'].entries()) {
      const prev = String.fromCharCode('a'.charCodeAt(0) + i);
      levels.push(`${name}: &${name} [${Array(9).fill(`*${prev}`).join(',')}]`);
    }
    const started = Date.now();
    await refusedUpFront(request({ objects: `${levels.join('\n')}\narray: []\n` }), 'objects uses YAML aliases that expand to too much');
    expect(Date.now() - started).toBeLessThan(5_000);
  });
});

describe('9. identifiers that become URL parts or headers are refused before any network call', () => {
  it.each([
    ['tenantID', 'evil.com/x'],
    ['tenantID', '@evil.com'],
    ['tenantID', 't#frag'],
    ['tenantID', 't%2fx'],
    ['tenantID', 'a\r\nb'],
    ['tenantID', '../../common'],
    ['keyvaultName', '1kv'],
    ['keyvaultName', 'kv--x'],
    ['keyvaultName', 'kv-'],
    ['csi.storage.k8s.io/pod.name', 'web\r\nX-Evil: 1'],
    ['csi.storage.k8s.io/pod.name', 'Web_0'],
    ['csi.storage.k8s.io/pod.namespace', 'ns/../x'],
  ])('%s %j', async (parameter, value) => {
    await refusedUpFront(request({ [parameter]: value }), parameter);
  });

  it('clientID must be a GUID (workload identity)', async () => {
    await refusedUpFront(request({ useVMManagedIdentity: undefined, clientID: '../evil' }), 'clientID', 'GUID');
  });

  it('a pod name with a NUL character never reaches the pod identity header code', async () => {
    await refusedUpFront(request({ useVMManagedIdentity: undefined, usePodIdentity: 'true', 'csi.storage.k8s.io/pod.name': 'a\u0000b' }), 'NUL');
  });
});

describe('10. file modes, text and path lengths', () => {
  it('a filePermission with setgid mounts with the permission bits only (as the driver writes it for the reference)', async () => {
    const result = await provider.client.mount(request({ objects: objects(['objectName: db\nobjectType: secret\nfilePermission: "2644"']) }));
    expect(result.files.map((f) => f.mode)).toEqual([0o644]);
  });

  it.each([
    ['a driver permission with setuid', { permission: String(0o4644) }, 'MountRequest.permission'],
    ['a lone surrogate in an attribute', { attributes: { tenantID: 'x\udc00' } }, 'lone UTF-16 surrogate'],
    ['an objectAlias segment longer than NAME_MAX', { objects: objects([`objectName: db\nobjectType: secret\nobjectAlias: ${'a'.repeat(256)}`]) }, 'NAME_MAX'],
    ['an objectAlias longer than PATH_MAX', { objects: objects([`objectName: db\nobjectType: secret\nobjectAlias: ${Array(20).fill('d'.repeat(250)).join('/')}`]) }, 'PATH_MAX'],
  ])('%s is refused', async (_name, change, fragment) => {
    const base = request();
    const attributes = { ...base.attributes, ...('attributes' in change ? change.attributes : {}), ...('objects' in change ? { objects: change.objects } : {}) };
    const before = azureRequests();
    const err = await rejectionOf(
      rawMount(provider.socketPath, {
        attributes: JSON.stringify(attributes),
        secrets: '{}',
        targetPath: '/var/lib/kubelet/pods/x/volumes/kubernetes.io~csi/v/mount',
        permission: 'permission' in change ? change.permission : '420',
      }),
    );
    expect(err.code).toBe(grpcStatus.INVALID_ARGUMENT);
    expect(err.details).toContain(fragment);
    expect(azureRequests()).toBe(before);
  });
});

describe('11. cloudEnvFileName reads only a small regular file under --cloud-env-file-dir', () => {
  const stack = (file: string): MountRequestInput => request({ cloudName: 'AzureStackCloud', cloudEnvFileName: file, keyvaultName: 'stack-kv' });
  const good = {
    name: 'AzureStackCloud',
    activeDirectoryEndpoint: 'https://login.microsoftonline.com/',
    keyVaultEndpoint: 'https://management.azure.com/',
    keyVaultDNSSuffix: STACK_SUFFIX,
  };

  beforeAll(() => {
    writeFileSync(join(cloudDir, 'stack.json'), JSON.stringify(good));
    writeFileSync(join(outside, 'secret.txt'), `${CANARY}\n`);
    writeFileSync(join(cloudDir, 'broken.json'), `{"keyVaultDNSSuffix": "${CANARY}`);
    symlinkSync(join(outside, 'secret.txt'), join(cloudDir, 'escape.json'));
    symlinkSync('/dev/zero', join(cloudDir, 'zero.json'));
    mkdirSync(join(cloudDir, 'folder.json'));
    const big = openSync(join(cloudDir, 'big.json'), 'w');
    ftruncateSync(big, 1024 * 1024 * 1024); // 1 GiB, sparse
    closeSync(big);
    for (let i = 0; i < 6; i++) execFileSync('mkfifo', [join(cloudDir, `fifo${i}.json`)]);
  });

  it('mounts with a file in the allowed directory; the token audience stays the vault\'s own', async () => {
    const result = await provider.client.mount(stack(join(cloudDir, 'stack.json')));
    expect(result.files[0]!.contents.toString()).toBe('stack-value');
    // keyVaultEndpoint named another resource: no token for it leaves the node (the vault's challenge decides).
    const resources = azure.imds.requests.map((r) => r.query['resource']).filter(Boolean);
    expect(resources).toContain(`https://${STACK_SUFFIX}`);
    expect(resources.some((r) => r!.includes('management.azure.com'))).toBe(false);
  });

  it.each(['/etc/shadow', '/proc/self/environ', '/proc/self/cmdline', '/proc/self/fd/2', '/dev/zero', '/dev/ptmx', '<outside>/secret.txt', 'relative.json'])(
    '%s, outside the directory, is refused without touching it',
    async (given) => {
      const path = given.replace('<outside>', outside);
      const details = await refusedUpFront(stack(path), 'is not an absolute path under', '--cloud-env-file-dir');
      expect(details).not.toContain(CANARY);
      expect(details).not.toMatch(/ENOENT|EACCES|EISDIR/);
    },
  );

  it('inside it, a missing file, a folder, a symlink out, /dev/zero, a 1 GiB file and a FIFO all get the same answer', async () => {
    // Growth, not the absolute RSS: earlier tests in this file leave the heap as large as their inputs made it.
    const rssBefore = provider.rssBytes();
    const answers = [];
    for (const name of ['missing.json', 'folder.json', 'escape.json', 'zero.json', 'big.json', 'fifo0.json']) {
      const err = await rejectionOf(provider.client.mount(stack(join(cloudDir, name)), { deadlineMs: 20_000 }));
      expect(err.code).toBe(grpcStatus.FAILED_PRECONDITION);
      expect(err.details).not.toContain(CANARY);
      answers.push(err.details.replace(name, '<file>'));
    }
    expect(new Set(answers).size).toBe(1);
    expect(answers[0]).toContain('regular file of at most 64 KiB');
    // Reading /dev/zero or the 1 GiB file whole would add hundreds of MiB.
    expect(provider.rssBytes() - rssBefore).toBeLessThan(100 * 1024 * 1024);
  });

  it('five FIFOs at once do not exhaust the provider: the next mount, DNS and /healthz still work, and SIGTERM still stops it', async () => {
    const p = await startProvider({ env: azure.providerEnv(), args: [`--cloud-env-file-dir=${cloudDir}`] });
    try {
      const fifos = await Promise.all([1, 2, 3, 4, 5].map((i) => rejectionOf(p.client.mount(stack(join(cloudDir, `fifo${i}.json`))))));
      for (const err of fifos) expect(err.code).toBe(grpcStatus.FAILED_PRECONDITION);
      const result = await p.client.mount(request());
      expect(result.files).toHaveLength(1);
      const health = await fetch(`http://127.0.0.1:${p.healthzPort}/healthz`);
      expect(health.status).toBe(200);
    } finally {
      const exit = await p.stop('SIGTERM', 15_000);
      expect(exit.code).toBe(0);
    }
  }, 60_000);

  it('a file that is not JSON is refused without quoting it', async () => {
    const err = await rejectionOf(provider.client.mount(stack(join(cloudDir, 'broken.json'))));
    expect(err.code).toBe(grpcStatus.INVALID_ARGUMENT);
    expect(err.details).toContain('is not valid JSON');
    expect(err.details).not.toContain(CANARY);
    expect(provider.logs()).not.toContain(CANARY);
  });
});

describe('13. /healthz and /metrics listen where --healthz-address and --prometheus-address say', () => {
  it('binds both to the given address (default: every address)', async () => {
    const p = await startProvider({ env: azure.providerEnv(), args: ['--healthz-address=127.0.0.1', '--prometheus-address=127.0.0.1'] });
    try {
      expect((await fetch(`http://127.0.0.1:${p.healthzPort}/healthz`)).status).toBe(200);
      expect((await fetch(`http://127.0.0.1:${p.prometheusPort}/metrics`)).status).toBe(200);
      // Not on the IPv6 loopback: the listener is on 127.0.0.1 only.
      await expect(fetch(`http://[::1]:${p.healthzPort}/healthz`)).rejects.toThrow();
      expect(p.logs()).toMatch(/serving health checks.*127\.0\.0\.1/);
    } finally {
      await p.stop();
    }
  }, 60_000);
});
