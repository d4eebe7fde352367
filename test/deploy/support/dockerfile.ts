/**
 * Runs a Dockerfile's steps without Docker, for machines with no container engine: each stage's WORKDIR becomes a
 * temporary directory, COPY copies from the build context (minus .dockerignore) or from an earlier stage, RUN runs
 * with `sh -c` there. It knows the few instructions our Dockerfile uses and fails on any other, so the Dockerfile
 * cannot grow a step this runner silently skips. What it cannot reproduce is the base images: RUN uses this machine's
 * Node.js and npm.
 */
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, posix, relative } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface Instruction {
  op: string;
  args: string;
  /** --from=… and similar flags of COPY. */
  flags: Record<string, string>;
  line: number;
}

export interface Stage {
  name: string;
  /** The FROM image, with ARG defaults substituted. */
  image: string;
  instructions: Instruction[];
}

/** `buildArgs` override the global ARG defaults in FROM lines, as `docker build --build-arg` does. */
export function parseDockerfile(text: string, buildArgs: Record<string, string> = {}): Stage[] {
  const args: Record<string, string> = {};
  const stages: Stage[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const start = i + 1;
    let line = lines[i]!;
    if (/^\s*(#|$)/.test(line)) continue;
    while (line.endsWith('\\') && i + 1 < lines.length) line = line.slice(0, -1) + ' ' + lines[++i]!.trim();
    const m = /^\s*([A-Za-z]+)\s+(.*)$/.exec(line);
    if (!m) throw new Error(`Dockerfile line ${start}: cannot parse "${line}"`);
    const op = m[1]!.toUpperCase();
    let rest = m[2]!.trim();
    const flags: Record<string, string> = {};
    for (let f = /^--([a-z-]+)=(\S+)\s+/.exec(rest); f; f = /^--([a-z-]+)=(\S+)\s+/.exec(rest)) {
      flags[f[1]!] = f[2]!;
      rest = rest.slice(f[0].length);
    }
    if (op === 'ARG' && stages.length === 0) {
      const [name, value = ''] = rest.split('=', 2) as [string, string?];
      args[name] = Object.hasOwn(buildArgs, name) ? buildArgs[name]! : value;
      continue;
    }
    if (op === 'FROM') {
      const from = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(rest);
      if (!from) throw new Error(`Dockerfile line ${start}: cannot parse FROM "${rest}"`);
      const image = from[1]!.replace(/\$\{(\w+)\}|\$(\w+)/g, (_, a: string, b: string) => args[a ?? b] ?? '');
      stages.push({ name: from[2] ?? String(stages.length), image, instructions: [] });
      continue;
    }
    const stage = stages[stages.length - 1];
    if (!stage) throw new Error(`Dockerfile line ${start}: ${op} before FROM`);
    stage.instructions.push({ op, args: rest, flags, line: start });
  }
  return stages;
}

/** .dockerignore patterns (no "!" exceptions): `*` and `?` within a path segment, `**` across segments. */
export function dockerignore(text: string): (relativePath: string) => boolean {
  const patterns = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((p) => {
      if (p.startsWith('!')) throw new Error(`.dockerignore exceptions ("${p}") are not supported by this runner`);
      const pattern = posix.normalize(p.replace(/^\/+/, ''));
      let source = '';
      for (let i = 0; i < pattern.length; i++) {
        const c = pattern[i]!;
        if (c === '*' && pattern[i + 1] === '*') {
          const slash = pattern[i + 2] === '/';
          source += slash ? '(?:.*/)?' : '.*';
          i += slash ? 2 : 1;
        } else if (c === '*') source += '[^/]*';
        else if (c === '?') source += '[^/]';
        else source += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
      }
      // A pattern also excludes everything below what it names.
      return new RegExp(`^${source}(?:/.*)?$`);
    });
  return (path) => patterns.some((re) => re.test(path));
}

export interface BuildResult {
  /** Each stage's WORKDIR, by stage name, as a directory on this machine. */
  workdirs: Record<string, string>;
  /** The last stage's ENTRYPOINT (exec form). */
  entrypoint: string[];
  /** The last stage's ENV. */
  env: Record<string, string>;
  /** The last stage's LABELs, ARG defaults (or build args) substituted. */
  labels: Record<string, string>;
  user: string | undefined;
}

export interface BuildOptions {
  dockerfile: string;
  context: string;
  /** Where the stages' directories are made; `<root>/<stage>/<WORKDIR>`. */
  root: string;
  /** Extra environment for RUN (PATH and HOME come from this process). */
  env?: Record<string, string>;
  /** --build-arg values. */
  buildArgs?: Record<string, string>;
  log?: (line: string) => void;
}

export async function runDockerfile(options: BuildOptions): Promise<BuildResult> {
  const stages = parseDockerfile(readFileSync(options.dockerfile, 'utf8'));
  const ignored = existsSync(join(options.context, '.dockerignore'))
    ? dockerignore(readFileSync(join(options.context, '.dockerignore'), 'utf8'))
    : () => false;
  const workdirs: Record<string, string> = {};
  /** Maps an absolute path inside a stage to this machine. */
  const hostPath = (stage: string, inside: string): string => join(options.root, stage, inside);
  const result: BuildResult = { workdirs, entrypoint: [], env: {}, labels: {}, user: undefined };

  for (const stage of stages) {
    let workdir = '/';
    const env: Record<string, string> = {};
    const stageArgs: Record<string, string> = {};
    const labels: Record<string, string> = {};
    let entrypoint: string[] = [];
    let user: string | undefined;
    for (const step of stage.instructions) {
      const where = `Dockerfile line ${step.line} (${step.op})`;
      options.log?.(`[${stage.name}] ${step.op} ${step.args}`);
      switch (step.op) {
        case 'WORKDIR':
          workdir = posix.resolve(workdir, step.args);
          mkdirSync(hostPath(stage.name, workdir), { recursive: true });
          workdirs[stage.name] = hostPath(stage.name, workdir);
          break;
        case 'COPY': {
          const parts = step.args.split(/\s+/);
          const dest = posix.resolve(workdir, parts.pop()!);
          for (const source of parts) {
            const from = step.flags['from'];
            const src = from ? hostPath(from, posix.resolve('/', source)) : join(options.context, source);
            if (!existsSync(src)) throw new Error(`${where}: ${source} does not exist`);
            if (!from && ignored(relative(options.context, src).split('\\').join('/'))) throw new Error(`${where}: ${source} is excluded by .dockerignore`);
            // COPY dir dest copies the directory's content; COPY file dir/ puts the file into dir.
            const target = statSync(src).isDirectory() || !step.args.trim().endsWith('/')
              ? hostPath(stage.name, dest)
              : hostPath(stage.name, posix.join(dest, posix.basename(source)));
            mkdirSync(dirname(target), { recursive: true });
            cpSync(src, target, {
              recursive: true,
              filter: (path) => from !== undefined || !ignored(relative(options.context, path).split('\\').join('/')),
            });
          }
          break;
        }
        case 'RUN': {
          if (step.args.startsWith('[')) throw new Error(`${where}: use the shell form for RUN`);
          const { stdout, stderr } = await run('sh', ['-c', step.args], {
            cwd: hostPath(stage.name, workdir),
            env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: process.env['HOME'] ?? '/tmp', ...options.env, ...env },
            maxBuffer: 64 * 1024 * 1024,
          });
          options.log?.(stdout + stderr);
          break;
        }
        case 'ENV': {
          const m = /^(\w+)=(.*)$/.exec(step.args);
          if (!m) throw new Error(`${where}: use ENV NAME=value`);
          env[m[1]!] = m[2]!;
          break;
        }
        case 'ARG': {
          const [name, value = ''] = step.args.split('=', 2) as [string, string?];
          stageArgs[name] = options.buildArgs?.[name] ?? value;
          break;
        }
        case 'LABEL': {
          const substitute = (v: string): string => v.replace(/\$\{(\w+)\}/g, (_, n: string) => stageArgs[n] ?? '');
          for (const m of step.args.matchAll(/([\w.-]+)="([^"]*)"/g)) labels[m[1]!] = substitute(m[2]!);
          break;
        }
        case 'USER':
          user = step.args;
          break;
        case 'ENTRYPOINT':
          entrypoint = JSON.parse(step.args) as string[];
          break;
        default:
          throw new Error(`${where}: this runner does not know ${step.op}`);
      }
    }
    Object.assign(result, { entrypoint, env, labels, user });
  }
  return result;
}
