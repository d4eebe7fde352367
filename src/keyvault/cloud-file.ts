/**
 * Reads the custom cloud's environment file a SecretProviderClass names in `cloudEnvFileName`. Any SecretProviderClass
 * author, in any namespace, chooses that path, and the provider reads it with its own rights on every node; so the
 * read is fenced in (see readCloudEnvironmentFile).
 * Per mount and never through a process-wide variable (the reference's AZURE_ENVIRONMENT_FILEPATH races between
 * mounts).
 */
import { constants } from 'node:fs';
import { open, realpath } from 'node:fs/promises';
import { isAbsolute, resolve, sep } from 'node:path';
import { ProviderError } from '../errors';
import { parseCloudEnvironment, type Cloud } from '../spec/clouds';

/** Cloud environment files are a few hundred bytes; anything above this is not one. */
export const MAX_CLOUD_FILE_BYTES = 64 * 1024;
/** Reading a small local file takes microseconds; a read that takes this long is stuck (e.g. a hung network mount). */
export const CLOUD_FILE_TIMEOUT_MS = 2_000;

export interface CloudFilePolicy {
  /** The only directory (and its sub-folders) cloud files are read from. */
  dir: string;
  maxBytes?: number;
  timeoutMs?: number;
}

/**
 * The fences:
 *  - only under one directory the operator allows (--cloud-env-file-dir; the chart mounts the cloud file there),
 *    checked on the path as given and again on the path with symlinks resolved;
 *  - only a regular file, checked on the opened descriptor (never a FIFO, a terminal, a device or /proc entry), opened
 *    without following a last symlink and without blocking;
 *  - at most MAX_BYTES read, whatever the file claims to be, and the whole read bounded in time;
 *  - a refusal never quotes the file's content and reads the same whether the path is missing, unreadable, a folder
 *    or too large, so it cannot be used to learn which files exist on the node.
 */
export async function readCloudEnvironmentFile(path: string, policy: CloudFilePolicy): Promise<Cloud> {
  const dir = resolve(policy.dir);
  const shown = JSON.stringify(path.slice(0, 300));
  if (path.includes('\0') || !isAbsolute(path) || !isInside(resolve(path), dir)) {
    // Decided on the text alone, before touching the file system: says nothing about what exists.
    throw new ProviderError(
      'InvalidArgument',
      `cloudEnvFileName ${shown} is not an absolute path under ${dir}, the only directory the provider reads cloud ` +
        `environment files from (--cloud-env-file-dir): put the file there (Helm value linux.cloudEnvFile mounts a ` +
        'host file into it) and name it in cloudEnvFileName',
    );
  }
  const maxBytes = policy.maxBytes ?? MAX_CLOUD_FILE_BYTES;
  const timeoutMs = policy.timeoutMs ?? CLOUD_FILE_TIMEOUT_MS;
  const refused = (cause: unknown): ProviderError =>
    new ProviderError(
      'FailedPrecondition',
      `cloudEnvFileName ${shown} cannot be used: the provider reads only a regular file of at most ${maxBytes / 1024} KiB ` +
        `under ${dir} that it can open within ${timeoutMs / 1000}s; mount the cloud environment file into the provider ` +
        'pods there (Helm value linux.cloudEnvFile), or fix cloudEnvFileName',
      { cause },
    );

  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('timed out')), timeoutMs);
  });
  let bytes: Buffer;
  try {
    bytes = await Promise.race([readFenced(resolve(path), dir, maxBytes), timeout]);
  } catch (err) {
    throw refused(err);
  } finally {
    clearTimeout(timer);
  }
  return parseCloudEnvironment(bytes.toString('utf8'), path.slice(0, 300));
}

function isInside(path: string, dir: string): boolean {
  return path.startsWith(dir.endsWith(sep) ? dir : dir + sep);
}

/** The file's bytes, or a rejection for anything that is not a small regular file inside `dir`. */
async function readFenced(path: string, dir: string, maxBytes: number): Promise<Buffer> {
  // Symlinks inside the directory may not lead out of it.
  const [real, realDir] = await Promise.all([realpath(path), realpath(dir)]);
  if (!isInside(real, realDir)) throw new Error('resolves outside the allowed directory');
  // O_NONBLOCK: opening a FIFO must not wait for a writer; O_NOCTTY: a terminal must not become ours.
  const handle = await open(real, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW | constants.O_NOCTTY);
  try {
    // Checked on the descriptor, not the path: what was opened is what is read.
    const stat = await handle.stat();
    if (!stat.isFile()) throw new Error('not a regular file');
    if (stat.size > maxBytes) throw new Error('too large');
    // Read at most one byte more than allowed, whatever the size said (a file may grow while it is read).
    const buffer = Buffer.alloc(maxBytes + 1);
    let length = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, null);
      if (bytesRead === 0) break;
      length += bytesRead;
      if (length > maxBytes) throw new Error('too large');
    }
    return buffer.subarray(0, length);
  } finally {
    await handle.close();
  }
}
