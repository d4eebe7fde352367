/**
 * A grpc-js server fed only through serveOverAddon (no bindAsync at all), with the provider's real service definitions,
 * called by grpc-js clients the way the driver dials. Native builds of the addon: AF_UNIX and the loopback-TCP variant.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { loadAddon, serveOverAddon, type AddonServer, type AfUnixAddon } from '../../src/server/windows-socket';
import { createDriverClient } from '../support/driver-client';
import { buildAddon, removeAddonBuilds, type AddonTarget } from './support/addon-build';
import { createTestClient } from './support/grpc-client';
import { grpcTarget, settled, sha256 } from './support/peers';
import { createTestServer, mountFileContents } from './support/test-services';

afterAll(removeAddonBuilds);

const MiB = 1024 * 1024;

function shutdown(server: grpc.Server, graceMs: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, graceMs);
    server.tryShutdown(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

describe.each<[AddonTarget, AfUnixAddon['family']]>([
  ['native', 'unix'],
  ['native-tcptest', 'tcp-loopback'],
])('gRPC through the addon built as %s', (target, family) => {
  let addonPath: string;
  let addon: AfUnixAddon;
  let dir: string;
  let path: string;
  let server: grpc.Server;
  let serving: AddonServer;

  beforeAll(async () => {
    addonPath = buildAddon(target);
    addon = loadAddon(addonPath);
    dir = mkdtempSync(join(tmpdir(), 'af-unix-grpc-'));
    path = join(dir, 'azure.sock');
    server = createTestServer();
    serving = await serveOverAddon(server, path, { addonPath });
  });

  afterAll(async () => {
    await serving.close();
    await shutdown(server, 5000);
    await settled(addon, { listeners: 0, connections: 0, threads: 0 });
    rmSync(dir, { recursive: true, force: true });
  });

  it('reports its address as unix://<path>', () => {
    expect(serving.address).toBe(`unix://${path}`);
  });

  if (family === 'unix') {
    it('answers Version and Health for the driver-like client (unix:<path>, authority localhost)', async () => {
      const client = createDriverClient(path);
      try {
        expect(await client.version()).toMatchObject({ version: 'v1alpha1', runtimeName: 'secrets-store-csi-driver-provider-azure' });
        expect(await client.healthCheck()).toBe('SERVING');
      } finally {
        client.close();
      }
    });
  }

  it('returns a 3 MiB Mount response intact', async () => {
    const client = createTestClient(grpcTarget(family, path));
    try {
      const size = 3 * MiB;
      const response = await client.mount({ size: String(size) });
      expect(response.objectVersion).toEqual([{ id: 'secret/blob', version: String(size) }]);
      expect(response.files).toHaveLength(1);
      expect(sha256(Buffer.from(response.files[0]!.contents))).toBe(sha256(mountFileContents(size)));
    } finally {
      client.close();
    }
  });

  it('serves 100 concurrent clients, each on its own connection, and releases them when they leave', async () => {
    const clients = Array.from({ length: 100 }, () => createTestClient(grpcTarget(family, path)));
    try {
      const answers = await Promise.all(clients.map((c) => c.mount({ size: String(64 * 1024) })));
      expect(answers.every((a) => a.files[0]!.contents.length === 64 * 1024)).toBe(true);
      expect(addon.stats().connections).toBe(100);
    } finally {
      for (const c of clients) c.close();
    }
    // Each client's end makes grpc-js's HTTP/2 session destroy our Duplex, which closes the socket and its threads.
    await settled(addon, { listeners: 1, connections: 0, threads: 1 }, 10_000);
  });
});

describe('shutting down a server served through the addon', () => {
  it('stops accepting, drains, and leaves no socket file, socket or thread behind', async () => {
    const addonPath = buildAddon('native');
    const addon = loadAddon(addonPath);
    const dir = mkdtempSync(join(tmpdir(), 'af-unix-grpc-'));
    const path = join(dir, 'azure.sock');
    const server = createTestServer();
    const serving = await serveOverAddon(server, path, { addonPath });
    const client = createDriverClient(path);
    expect((await client.version()).version).toBe('v1alpha1');

    await serving.close();
    await shutdown(server, 5000);
    client.close();

    await settled(addon, { listeners: 0, connections: 0, threads: 0 });
    expect(existsSync(path)).toBe(false);
    rmSync(dir, { recursive: true, force: true });
  });
});
