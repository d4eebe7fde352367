/**
 * The README's "Install on AKS" block, run as written from a fresh copy of the repository: bash, the real Helm.
 * What cannot run here is replaced at its edge, never in the text:
 *  - `az` and `docker` are stand-ins on PATH that record their arguments (no Azure, no Docker engine here);
 *  - the driver chart repository (https://kubernetes-sigs.github.io/…) is served by a local TLS server, reached through
 *    HTTPS_PROXY (a CONNECT proxy) with the test CA in SSL_CERT_FILE, as Helm (Go) reads them: Helm sees the real URL;
 *    the chart it downloads is the rendering stand-in of support/helm.ts, packaged;
 *  - `helm install` has no cluster: a wrapper runs `helm template` with the same arguments (same dependency check,
 *    same schema validation, same rendering).
 */
import { execFile } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { startConnectProxy, type ConnectProxy } from '../support/connect-proxy';
import { repoRoot } from '../support/driver-client';
import { createTestPki } from '../support/pki';
import { CHART_DIR, helmBinary, KUBE_VERSION, parseManifests, runHelm, type K8sObject } from './support/helm';

jest.setTimeout(120_000);

const run = promisify(execFile);
const REPO_HOST = 'kubernetes-sigs.github.io';
const REPO_URL = `https://${REPO_HOST}/secrets-store-csi-driver/charts`;
const STAND_IN_DRIVER_CHART = join(__dirname, 'fixtures', 'secrets-store-csi-driver');

/** The first ```sh block of the README's "## Install on AKS" section. */
function installBlock(): string {
  const readme = readFileSync(join(repoRoot(), 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Install on AKS'));
  const m = /```sh\n([\s\S]*?)```/.exec(section);
  if (!m) throw new Error('no sh block in the README section "Install on AKS"');
  return m[1]!;
}

let work: string;
let repoServer: Server;
let proxy: ConnectProxy;
let caFile: string;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'readme-install-'));
  // The chart repository: the stand-in driver chart packaged, and an index that points at the real URL.
  const repoDir = join(work, 'repo');
  mkdirSync(repoDir);
  await runHelm(work, ['package', STAND_IN_DRIVER_CHART, '--destination', repoDir]);
  await runHelm(work, ['repo', 'index', repoDir, '--url', REPO_URL]);
  const pki = createTestPki('readme install test CA');
  caFile = pki.writeCaFile(join(work, 'ca'));
  const cert = pki.issueServerCert([REPO_HOST]);
  repoServer = createServer({ cert: cert.certPem, key: cert.keyPem }, (req, res) => {
    const path = (req.url ?? '').replace(/^\/secrets-store-csi-driver\/charts\//, '');
    const file = join(repoDir, path);
    if (!/^[\w.-]+$/.test(path) || !existsSync(file)) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200).end(readFileSync(file));
  });
  await new Promise<void>((resolve) => repoServer.listen(0, '127.0.0.1', resolve));
  const repoPort = (repoServer.address() as AddressInfo).port;
  proxy = await startConnectProxy({ route: (host, port) => (host === REPO_HOST && port === 443 ? { host: '127.0.0.1', port: repoPort } : undefined) });
});

afterAll(async () => {
  await proxy?.close();
  await new Promise<void>((resolve) => (repoServer ? repoServer.close(() => resolve()) : resolve()));
  rmSync(work, { recursive: true, force: true });
});

describe("the README's install block", () => {
  let rendered: K8sObject[];
  let calls: string[];
  let clone: string;

  beforeAll(async () => {
    // A fresh clone: the chart as committed (no charts/ dependency directory), the Dockerfile.
    clone = join(work, 'clone');
    mkdirSync(join(clone, 'charts'), { recursive: true });
    cpSync(CHART_DIR, join(clone, 'charts', 'csi-secrets-store-provider-azure'), { recursive: true });
    rmSync(join(clone, 'charts', 'csi-secrets-store-provider-azure', 'charts'), { recursive: true, force: true });
    cpSync(join(repoRoot(), 'Dockerfile'), join(clone, 'Dockerfile'));
    cpSync(join(repoRoot(), 'scripts', 'pin-base-images.sh'), join(clone, 'scripts', 'pin-base-images.sh'));

    const bin = join(work, 'bin');
    mkdirSync(bin);
    const log = join(work, 'calls.log');
    const output = join(work, 'install.yaml');
    for (const tool of ['az', 'docker']) {
      writeFileSync(join(bin, tool), `#!/bin/sh\necho "${tool} $*" >> '${log}'\n`);
      chmodSync(join(bin, tool), 0o755);
    }
    // The registry's answer to `crane digest` (no registry here): one digest per base image.
    writeFileSync(join(bin, 'crane'), `#!/bin/sh\necho "crane $*" >> '${log}'\necho "sha256:${'d'.repeat(64)}"\n`);
    chmodSync(join(bin, 'crane'), 0o755);
    writeFileSync(
      join(bin, 'helm'),
      [
        '#!/bin/sh',
        `echo "helm $*" >> '${log}'`,
        // No cluster here: install becomes template (same dependency check, schema and rendering).
        `if [ "$1" = install ]; then shift; exec '${helmBinary()}' template --kube-version ${KUBE_VERSION} "$@" > '${output}'; fi`,
        `exec '${helmBinary()}' "$@"`,
        '',
      ].join('\n'),
    );
    chmodSync(join(bin, 'helm'), 0o755);

    await run('bash', ['-euo', 'pipefail', '-c', installBlock()], {
      cwd: clone,
      env: {
        PATH: `${bin}:${process.env['PATH'] ?? '/usr/bin:/bin'}`,
        HOME: join(work, 'home'),
        HELM_CACHE_HOME: join(work, 'helm-cache'),
        HELM_CONFIG_HOME: join(work, 'helm-config'),
        HELM_DATA_HOME: join(work, 'helm-data'),
        HTTPS_PROXY: proxy.url,
        SSL_CERT_FILE: caFile,
      },
    });
    rendered = parseManifests(readFileSync(output, 'utf8'));
    calls = readFileSync(log, 'utf8').trim().split('\n');
  });

  it('disables the AKS add-on first, then builds the image on digest-pinned base images and pushes it', () => {
    expect(calls[0]).toBe('az aks disable-addons --addons azure-keyvault-secrets-provider --resource-group my-rg --name my-aks');
    // The base images are pinned to the digests the registry gives for the Dockerfile's tags.
    const pin = `@sha256:${'d'.repeat(64)}`;
    expect(calls.slice(1, 5)).toEqual([
      'crane digest node:22-bookworm-slim',
      'crane digest gcr.io/distroless/nodejs22-debian12:nonroot',
      `docker build --build-arg BUILD_IMAGE_DIGEST=${pin} --build-arg RUNTIME_IMAGE_DIGEST=${pin} -t myregistry.azurecr.io/provider-azure:0.1.0 .`,
      'docker push myregistry.azurecr.io/provider-azure:0.1.0',
    ]);
  });

  it('fetches the driver chart from its repository (through the proxy) into the chart, as Chart.lock pins it', () => {
    expect(proxy.tunnels).toContain(`${REPO_HOST}:443`);
    // `helm dependency build` refuses a lock out of step with Chart.yaml; it leaves a matching one as it is.
    expect(readFileSync(join(clone, 'charts', 'csi-secrets-store-provider-azure', 'Chart.lock'), 'utf8')).toBe(
      readFileSync(join(CHART_DIR, 'Chart.lock'), 'utf8'),
    );
    expect(existsSync(join(clone, 'charts', 'csi-secrets-store-provider-azure', 'charts', 'secrets-store-csi-driver-1.5.6.tgz'))).toBe(true);
  });

  it('installs the provider with the pushed image and the driver', () => {
    const ds = rendered.find((o) => o.kind === 'DaemonSet' && o.metadata.name === 'csi-provider-azure-csi-secrets-store-provider-azure');
    expect(ds).toBeDefined();
    const image = (ds!['spec'] as { template: { spec: { containers: Array<{ image: string }> } } }).template.spec.containers[0]!.image;
    expect(image).toBe('myregistry.azurecr.io/provider-azure:0.1.0');
    expect(rendered.some((o) => o.kind === 'ConfigMap' && o.metadata.name === 'stand-in-secrets-store-csi-driver-values')).toBe(true);
    expect(rendered.every((o) => o.metadata.namespace === 'kube-system')).toBe(true);
  });

  it('pushes the tag the chart installs by default (the chart appVersion)', () => {
    const chart = parse(readFileSync(join(CHART_DIR, 'Chart.yaml'), 'utf8')) as { appVersion: string };
    expect(calls[4]).toBe(`docker push myregistry.azurecr.io/provider-azure:${chart.appVersion}`);
  });
});

describe('without the dependency step', () => {
  it('Helm refuses the chart from a clone, with or without secrets-store-csi-driver.install=false (why the step is there)', async () => {
    const clone = join(work, 'bare');
    cpSync(CHART_DIR, clone, { recursive: true });
    rmSync(join(clone, 'charts'), { recursive: true, force: true });
    for (const extra of [[], ['--set', 'secrets-store-csi-driver.install=false']]) {
      await expect(runHelm(work, ['template', 'x', clone, ...extra])).rejects.toMatchObject({
        stderr: expect.stringContaining('missing in charts/ directory: secrets-store-csi-driver'),
      });
    }
  });
});
