/** `csi-provider-azure check` on files: the mount's parser, one line per problem, the exit status. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCheck } from '../../../src/cli/check';

const dir = mkdtempSync(join(tmpdir(), 'check-'));
const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

function spc(name: string, parameters: Record<string, unknown>, provider = 'azure'): string {
  return JSON.stringify({ apiVersion: 'secrets-store.csi.x-k8s.io/v1', kind: 'SecretProviderClass', metadata: { name, namespace: 'shop' }, spec: { provider, parameters } });
}

async function check(argv: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCheck(argv, { out: (l) => out.push(l), err: (l) => err.push(l), env: {} });
  return { code, out, err };
}

const objects = 'array:\n  - |\n    objectName: db\n    objectType: secret\n';

it('passes valid classes of every identity mode and skips other providers', async () => {
  const path = file(
    'ok.yaml',
    [
      spc('node', { useVMManagedIdentity: 'true', keyvaultName: 'kv1', tenantID: TENANT, objects }),
      spc('wi', { clientID: '00000000-0000-4000-8000-000000000001', keyvaultName: 'kv1', tenantID: TENANT, objects }),
      spc('sp', { keyvaultName: 'kv1', tenantID: TENANT, objects }),
      spc('vault', { roleName: 'x' }, 'vault'),
    ].join('\n---\n'),
  );
  const result = await check([path]);
  expect(result).toEqual({ code: 0, out: [], err: ['3 SecretProviderClasses checked, 0 with problems'] });
});

it('prints one line per problem, naming source, class and the parser\'s message, and exits 1', async () => {
  const path = file(
    'bad.yaml',
    [
      spc('bad-type', { useVMManagedIdentity: 'true', keyvaultName: 'kv1', tenantID: TENANT, objects: objects.replace('secret', 'password') }),
      spc('not-string', { useVMManagedIdentity: true, keyvaultName: 'kv1', tenantID: TENANT }),
      spc('unknown-field', { useVMManagedIdentity: 'true', keyvaultName: 'kv1', tenantID: TENANT, objects: `${objects}    objectColour: red\n` }),
    ].join('\n---\n'),
  );
  const result = await check([path]);
  expect(result.code).toBe(1);
  expect(result.out).toHaveLength(3);
  expect(result.out[0]).toMatch(new RegExp(`^${path}#1: shop/bad-type: .*objectType`));
  expect(result.out[1]).toBe(`${path}#2: shop/not-string: parameters useVMManagedIdentity must be strings (quote them in YAML)`);
  expect(result.out[2]).toMatch(/#3: shop\/unknown-field: warning: .*objectColour/);
  expect(result.err).toEqual(['3 SecretProviderClasses checked, 2 with problems']);
});

it('exits 2 on usage errors and unreadable files', async () => {
  expect((await check([])).code).toBe(2);
  expect((await check(['--nope'])).code).toBe(2);
  expect((await check([join(dir, 'missing.yaml')])).err[0]).toContain('ENOENT');
});

it('checks cacheTTL as a duration, without a node maximum to hold it to', async () => {
  const path = file(
    'cache.yaml',
    [
      spc('cached', { useVMManagedIdentity: 'true', keyvaultName: 'kv1', tenantID: TENANT, cacheTTL: '5m', objects }),
      spc('typo', { useVMManagedIdentity: 'true', keyvaultName: 'kv1', tenantID: TENANT, cacheTTL: '5 minutes', objects }),
    ].join('\n---\n'),
  );
  const result = await check([path]);
  expect(result.code).toBe(1);
  expect(result.out).toHaveLength(1);
  expect(result.out[0]).toContain('typo');
  expect(result.out[0]).toContain('cacheTTL "5 minutes" is not a duration');
});
