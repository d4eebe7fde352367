/**
 * scripts/pin-base-images.sh, the step of the documented image build that pins the base images by digest: it must ask
 * the registry tool for exactly the tags the Dockerfiles name (after their ARG defaults and overrides), and print build
 * arguments that pin every stage. The registry is out of reach here, so `crane` is a stand-in on PATH that records
 * what it is asked and answers as crane does (one digest a line).
 */
import { execFile, execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { repoRoot } from '../support/driver-client';
import { parseDockerfile } from './support/dockerfile';

const run = promisify(execFile);
const ROOT = repoRoot();
const SCRIPT = join(ROOT, 'scripts', 'pin-base-images.sh');

let work: string;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'pin-base-images-'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** A crane on PATH answering `answer(ref)` to `crane digest <ref>`, and the refs it was asked for. */
function fakeCrane(name: string, answer: string): { path: string; asked: () => string[] } {
  const dir = join(work, name);
  const log = join(work, `${name}.log`);
  writeFileSync(log, '');
  mkdirSync(dir);
  writeFileSync(join(dir, 'crane'), `#!/bin/sh\n[ "$1" = digest ] || exit 2\necho "$2" >> '${log}'\necho '${answer}'\n`);
  chmodSync(join(dir, 'crane'), 0o755);
  return { path: `${dir}:${process.env['PATH'] ?? '/usr/bin:/bin'}`, asked: () => readFileSync(log, 'utf8').trim().split('\n').filter(Boolean) };
}

/** The build arguments the script prints, as a map. */
function buildArgsOf(stdout: string): Record<string, string> {
  const words = stdout.trim().split(/\s+/);
  const args: Record<string, string> = {};
  for (let i = 0; i < words.length; i += 2) {
    expect(words[i]).toBe('--build-arg');
    const [name, value] = words[i + 1]!.split(/=(.*)/s) as [string, string];
    args[name] = value;
  }
  return args;
}

const DIGEST = `sha256:${'4f'.repeat(32)}`;

describe.each([
  ['Dockerfile', [], ['node:22-bookworm-slim', 'gcr.io/distroless/nodejs22-debian12:nonroot']],
  ['windows.Dockerfile', [], ['node:22-bookworm-slim', 'mcr.microsoft.com/windows/nanoserver:ltsc2022']],
  ['windows.Dockerfile', ['WINDOWS_VERSION=ltsc2019'], ['node:22-bookworm-slim', 'mcr.microsoft.com/windows/nanoserver:ltsc2019']],
])('%s %s', (dockerfile, overrides, tags) => {
  it('resolves exactly the tags its FROM lines name, and its output pins every stage by digest', async () => {
    const crane = fakeCrane(`ok-${dockerfile}-${overrides.length}`, DIGEST);
    const { stdout, stderr } = await run('bash', [SCRIPT, join(ROOT, dockerfile), ...overrides], { env: { PATH: crane.path } });
    expect(crane.asked()).toEqual(tags);
    // What the build log shows: each tag with the digest it was pinned to.
    for (const tag of tags) expect(stderr).toContain(`${tag} is ${DIGEST}`);

    const text = readFileSync(join(ROOT, dockerfile), 'utf8');
    const byTag = parseDockerfile(text, Object.fromEntries(overrides.map((o) => o.split('=') as [string, string])));
    const pinned = parseDockerfile(text, { ...Object.fromEntries(overrides.map((o) => o.split('=') as [string, string])), ...buildArgsOf(stdout) });
    // Without the arguments the stages use the tags; with them, the same tags at the digests.
    expect(byTag.map((s) => s.image)).toEqual(tags);
    expect(pinned.map((s) => s.image)).toEqual(tags.map((t) => `${t}@${DIGEST}`));
  });
});

describe('when no digest can be had, the build stops before it starts', () => {
  it('fails, printing no build argument, on an answer that is not a sha256 digest', async () => {
    const crane = fakeCrane('bad', 'MANIFEST_UNKNOWN: manifest unknown');
    const failed = await run('bash', [SCRIPT, join(ROOT, 'Dockerfile')], { env: { PATH: crane.path } }).catch((e: { code: number; stdout: string; stderr: string }) => e);
    expect(failed).toMatchObject({ code: 1, stdout: '' });
    expect((failed as { stderr: string }).stderr).toContain('node:22-bookworm-slim resolved to "MANIFEST_UNKNOWN: manifest unknown", not a sha256 digest');
  });

  it('fails naming the tools it needs when neither crane nor docker is installed', async () => {
    const bin = join(work, 'bare-bin');
    mkdirSync(bin);
    for (const tool of ['bash', 'tr']) symlinkSync(execFileSync('sh', ['-c', `command -v ${tool}`]).toString().trim(), join(bin, tool));
    const failed = await run(join(bin, 'bash'), [SCRIPT, join(ROOT, 'Dockerfile')], { env: { PATH: bin } }).catch((e: { code: number; stdout: string; stderr: string }) => e);
    expect(failed).toMatchObject({ code: 1, stdout: '' });
    expect((failed as { stderr: string }).stderr).toContain('neither crane nor docker (buildx) is installed; cannot resolve node:22-bookworm-slim');
  });

  it('refuses a FROM line without a digest argument (a new stage must be pinnable too)', async () => {
    const file = join(work, 'Dockerfile.unpinnable');
    writeFileSync(file, 'ARG NODE_MAJOR=22\nFROM node:${NODE_MAJOR}-bookworm-slim AS build\n');
    const crane = fakeCrane('unpinnable', DIGEST);
    const failed = await run('bash', [SCRIPT, file], { env: { PATH: crane.path } }).catch((e: { code: number; stderr: string }) => e);
    expect(failed).toMatchObject({ code: 1 });
    expect((failed as { stderr: string }).stderr).toContain('has no ${…_DIGEST} argument to pin it with');
  });
});
