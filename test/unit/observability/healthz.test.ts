/** /healthz in process: concurrent probes share one check, and a socket that never answers fails within the timeout. */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../../../src/observability/logger';
import { startHealthz } from '../../../src/server/healthz';
import type { RunningHttpEndpoint } from '../../../src/server/http-endpoint';
import { createSocketProbe, type ProbeResult } from '../../../src/server/socket-probe';

const logger = createLogger({ json: true, verbosity: 0, destination: { write: () => undefined } });

async function get(port: number, path = '/healthz'): Promise<{ status: number; body: string }> {
  const response = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: response.status, body: await response.text() };
}

describe('startHealthz', () => {
  let endpoint: RunningHttpEndpoint | undefined;
  afterEach(async () => {
    await endpoint?.close();
    endpoint = undefined;
  });

  it('runs one check for many concurrent probes, and a new one for the next probe', async () => {
    let calls = 0;
    let release!: (r: ProbeResult) => void;
    const probe = (): Promise<ProbeResult> => {
      calls++;
      return new Promise((resolve) => (release = resolve));
    };
    endpoint = await startHealthz({ port: 0, path: '/healthz', timeoutMs: 1000, probe, logger });
    const answers = Array.from({ length: 20 }, () => get(endpoint!.port));
    await new Promise((r) => setTimeout(r, 200));
    expect(calls).toBe(1);
    release({ ok: false, reason: 'the provider socket does not accept connections' });
    for (const answer of await Promise.all(answers)) {
      expect(answer).toEqual({ status: 503, body: 'the provider socket does not accept connections\n' });
    }
    const next = get(endpoint.port);
    await new Promise((r) => setTimeout(r, 100));
    release({ ok: true });
    expect(await next).toEqual({ status: 200, body: 'ok' });
    expect(calls).toBe(2);
  });

  it('answers 503 when the check itself throws, without its text', async () => {
    endpoint = await startHealthz({
      port: 0,
      path: '/live',
      timeoutMs: 1000,
      probe: () => Promise.reject(new Error('secret detail /var/run/x')),
      logger,
    });
    expect(await get(endpoint.port, '/live')).toEqual({ status: 503, body: 'the health check could not run\n' });
    expect((await get(endpoint.port, '/healthz')).status).toBe(404);
  });
});

describe('createSocketProbe', () => {
  let dir: string;
  let server: Server | undefined;
  const sockets = new Set<Socket>();
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'csi-probe-'));
  });
  afterEach(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    server = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  it('fails within the timeout on a socket that accepts but never answers', async () => {
    const path = join(dir, 'azure.sock');
    server = createServer((socket) => sockets.add(socket)); // never speaks HTTP/2
    await new Promise<void>((r) => server!.listen(path, r));
    const started = Date.now();
    const result = await createSocketProbe({ kind: 'unix', path })(300);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(result).toEqual({ ok: false, reason: 'the provider did not answer a health check on its socket within 300ms' });
  });

  it('fails at once when nothing listens', async () => {
    const result = await createSocketProbe({ kind: 'unix', path: join(dir, 'missing.sock') })(2000);
    expect(result).toEqual({ ok: false, reason: 'the provider socket does not accept connections' });
  });
});
