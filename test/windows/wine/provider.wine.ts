/**
 * The real provider (bin/csi-provider-azure.js) in the official Windows node.exe under Wine, started as the Windows
 * DaemonSet starts it: --endpoint=unix://C:\provider\azure.sock. Wine has no AF_UNIX, so the staged image carries the
 * loopback-TCP build of the addon at the product's addon path; the provider's code is unchanged and does not know.
 * The driver-like client runs natively and reaches it over loopback TCP (the address the addon writes at the path).
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { repoRoot } from '../../support/driver-client';
import { createTestClient } from '../support/grpc-client';
import { eventually, grpcTarget } from '../support/peers';
import { driveC, prepareWine, runNodeExe, stopWine, winPath, type Wine, type WineProcess } from '../support/wine';
import { buildStage, tcpImage, type Stage } from '../support/wine-stage';

const ENDPOINT = 'unix://C:\\provider\\azure.sock';

let wine: Wine;
let stage: Stage;
let image: string;
let socketFile: string;
let logs: string;
const running: WineProcess[] = [];

beforeAll(() => {
  wine = prepareWine();
  stage = buildStage();
  image = tcpImage(stage);
  socketFile = driveC(wine, 'provider', 'azure.sock');
  mkdirSync(dirname(socketFile), { recursive: true });
  rmSync(socketFile, { force: true });
  logs = mkdtempSync(join(tmpdir(), 'wine-provider-'));
});

afterEach(async () => {
  for (const p of running.splice(0)) await p.kill();
});

afterAll(() => {
  if (wine) stopWine(wine);
  if (socketFile) rmSync(socketFile, { force: true }); // the killed provider's stale file
  for (const dir of [stage?.root, image, logs]) if (dir) rmSync(dir, { recursive: true, force: true });
});

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

interface Provider {
  process: WineProcess;
  healthzPort: number;
  target: string;
}

async function startProvider(name: string): Promise<Provider> {
  const healthzPort = await freePort();
  const prometheusPort = await freePort();
  const before = existsSync(socketFile) ? readFileSync(socketFile, 'utf8') : '';
  const p = runNodeExe(
    wine,
    [winPath(join(image, 'bin', 'csi-provider-azure.js')), `--endpoint=${ENDPOINT}`, `--healthz-port=${healthzPort}`, `--prometheus-port=${prometheusPort}`],
    join(logs, `${name}.log`),
  );
  running.push(p);
  // Serving once the addon has published a fresh address at the socket path (not while a stale one is being replaced:
  // between its removal and the new file there is no file at all).
  await eventually(
    () => (existsSync(socketFile) && readFileSync(socketFile, 'utf8') !== before) || p.child.exitCode !== null,
    Boolean,
    60_000,
  ).catch(() => undefined);
  if (p.child.exitCode !== null || !existsSync(socketFile)) throw new Error(`the provider did not start:\n${p.output()}`);
  return { process: p, healthzPort, target: grpcTarget('tcp-loopback', socketFile) };
}

/** GET /healthz, retried while the port is not open yet; the last answer. */
async function getHealthz(port: number): Promise<{ status: number; body: string } | undefined> {
  let answer: { status: number; body: string } | undefined;
  for (const deadline = Date.now() + 10_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 200))) {
    answer = await fetch(`http://127.0.0.1:${port}/healthz`).then(
      async (response) => ({ status: response.status, body: await response.text() }),
      () => undefined,
    );
    if (answer?.status === 200) break;
  }
  return answer;
}

const validAttributes = {
  'csi.storage.k8s.io/pod.name': 'web-0',
  'csi.storage.k8s.io/pod.namespace': 'shop',
  useVMManagedIdentity: 'true',
  keyvaultName: 'shop-kv',
  tenantID: '11111111-1111-1111-1111-111111111111',
  objects: 'array: []\n',
};

describe('the provider in node.exe under Wine', () => {
  it(`starts with --endpoint=${ENDPOINT} and serves Version, Mount and /healthz through the addon`, async () => {
    const provider = await startProvider('first');
    const client = createTestClient(provider.target);
    try {
      const version = (JSON.parse(readFileSync(join(repoRoot(), 'package.json'), 'utf8')) as { version: string }).version;
      expect(await client.version()).toEqual({
        version: 'v1alpha1',
        runtimeName: 'secrets-store-csi-driver-provider-azure',
        runtimeVersion: version,
      });
      // A mount with nothing to fetch succeeds after validating every parameter, without any network call.
      expect(await client.mount(validAttributes)).toMatchObject({ files: [], objectVersion: [] });
      // The mount path's validation and the error mapping answer from inside node.exe.
      const { keyvaultName: _omitted, ...withoutVault } = validAttributes;
      await expect(client.mount(withoutVault)).rejects.toMatchObject({
        code: grpc.status.INVALID_ARGUMENT,
        details: expect.stringContaining('keyvaultName'),
      });
    } finally {
      client.close();
    }
    // /healthz performs its own Health/Check over the socket, through the addon's client side.
    expect(await getHealthz(provider.healthzPort)).toEqual({ status: 200, body: 'ok' });
    expect(provider.process.output()).toContain('serving the CSI driver');
  });

  it('replaces the socket file that a killed provider left behind', async () => {
    const first = await startProvider('killed');
    await first.process.kill();
    expect(existsSync(socketFile)).toBe(true); // stale: nobody removed it
    const second = await startProvider('restarted');
    const client = createTestClient(second.target);
    try {
      expect((await client.version()).version).toBe('v1alpha1');
    } finally {
      client.close();
    }
  });
});
