import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  base32HexNoPadding,
  clusterIdFromSubjectAltName,
  discoverSniName,
  identityBindingSniName,
} from '../../../src/identity/token-proxy-sni';
import { createServiceAccountIssuer, startIdentityBindingProxy, type IdentityBindingProxy } from '../../support/entra';
import { createTestPki, type TestPki } from '../../support/pki';
import { createTokenRegistry } from '../../support/tokens';

describe('the identity binding server name', () => {
  it('is base32hex (RFC 4648 test vectors), without padding', () => {
    const vectors: Array<[string, string]> = [
      ['', ''],
      ['f', 'CO'],
      ['fo', 'CPNG'],
      ['foo', 'CPNMU'],
      ['foob', 'CPNMUOG'],
      ['fooba', 'CPNMUOJ1'],
      ['foobar', 'CPNMUOJ1E8'],
    ];
    for (const [input, output] of vectors) expect(base32HexNoPadding(Buffer.from(input))).toBe(output);
  });

  it('matches values computed independently (Python hashlib + base64.b32hexencode)', () => {
    expect(identityBindingSniName('696995ccb303450001b31a18')).toBe('aeaf29ip1hi5q38ebc3u4daum81u0unk52t5bg50j25234fmuj78g.ests.aks');
    expect(identityBindingSniName('abc123def456')).toBe('avimke6u6l2eeq8qc1cneuaq4sl2e1av9t4clqgun97le32hub670.ests.aks');
    expect(identityBindingSniName('x').split('.')[0]).toHaveLength(53);
  });

  it('takes the cluster id from the API server certificate\'s hcp-kubernetes SAN', () => {
    expect(
      clusterIdFromSubjectAltName('DNS:kubernetes, DNS:hcp-kubernetes.696995ccb303450001b31a18.svc.cluster.local, IP Address:10.0.0.1'),
    ).toBe('696995ccb303450001b31a18');
    expect(clusterIdFromSubjectAltName('DNS:kubernetes, DNS:hcp-kubernetes..svc.cluster.local')).toBeUndefined();
    expect(clusterIdFromSubjectAltName(undefined)).toBeUndefined();
  });
});

describe('discovering the server name from the API server', () => {
  let pki: TestPki;
  let proxy: IdentityBindingProxy;
  let dir: string;

  beforeAll(async () => {
    pki = createTestPki('cluster CA');
    proxy = await startIdentityBindingProxy({
      pki,
      tokens: createTokenRegistry(),
      clusterId: '696995ccb303450001b31a18',
      issuer: createServiceAccountIssuer(),
      bindings: [],
    });
    dir = mkdtempSync(join(tmpdir(), 'sni-'));
  });

  afterAll(async () => {
    await proxy.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('connects with the API server name, verifies against the service account CA, and derives the proxy name', async () => {
    const caFile = pki.writeCaFile(dir);
    await expect(discoverSniName({ host: '127.0.0.1', port: proxy.port, caFile })).resolves.toBe(proxy.sniName);
    expect(proxy.handshakes.at(-1)).toBe('kubernetes.default.svc.cluster.local');
  });

  it('fails when the CA cannot be read, or does not trust the API server', async () => {
    await expect(discoverSniName({ host: '127.0.0.1', port: proxy.port, caFile: join(dir, 'missing.crt') })).rejects.toThrow(
      /missing\.crt cannot be read \(ENOENT\)/,
    );
    const other = join(dir, 'other-ca.crt');
    writeFileSync(other, createTestPki('another CA').caCertPem);
    await expect(discoverSniName({ host: '127.0.0.1', port: proxy.port, caFile: other })).rejects.toThrow(/TLS connection to the API server/);
  });
});
