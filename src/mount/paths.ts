import { invalidArgument } from '../errors';

/** Linux's limits: a file name of at most 255 bytes, a path of at most 4096 (the driver adds its target path). */
export const NAME_MAX_BYTES = 255;
export const PATH_MAX_BYTES = 4095;

/**
 * Why a file path from a SecretProviderClass cannot be written into the volume, or undefined when it can. Paths are
 * relative to the volume: the driver joins them to the target path, so an absolute path or a `..` would escape it.
 */
export function checkFilePath(path: string): string | undefined {
  if (path === '') return 'is empty';
  if (path.includes('\0')) return 'contains a NUL character';
  if (path.startsWith('/') || path.startsWith('\\') || /^[A-Za-z]:/.test(path)) {
    return 'must be a relative path inside the volume, not an absolute one';
  }
  const segments = path.split(/[/\\]/);
  if (segments.some((s) => s === '..')) return 'must not contain ".." (it would escape the volume)';
  if (segments.some((s) => s === '' || s === '.')) return 'must not contain empty or "." path segments';
  // Refused here, not left to fail in the driver's write after every object was fetched.
  if (segments.some((s) => Buffer.byteLength(s) > NAME_MAX_BYTES)) return `has a path segment longer than ${NAME_MAX_BYTES} bytes (NAME_MAX)`;
  if (Buffer.byteLength(path) > PATH_MAX_BYTES) return `is longer than ${PATH_MAX_BYTES} bytes (PATH_MAX)`;
  return undefined;
}

/**
 * A path as the driver writes it: it cleans every path first (Go's path.Clean), so `./a`, `a//b` and `a/` name the
 * files `a`, `a/b` and `a`. Only `.` and empty segments go; `..` is refused by checkFilePath.
 */
export function normalizeFilePath(path: string): string {
  if (path.startsWith('/')) return path; // absolute: left for checkFilePath to refuse
  return path
    .split('/')
    .filter((segment) => segment !== '' && segment !== '.')
    .join('/');
}

/**
 * Records the files of one mount. Two objects writing the same path are allowed, as the driver allows them (the later
 * file wins): `claim` returns the earlier owner so the caller can warn. One object's file being another's folder
 * (version history writes `<file>/0`, which would clash with an object named `<file>`) is refused: the driver cannot
 * write both, so that mount fails with the reference too.
 */
export class FilePathRegistry {
  private readonly owners = new Map<string, string>();
  private readonly folders = new Map<string, string>();

  /** Claims `path` for `owner`; returns the previous owner when another object already writes the same path. */
  claim(path: string, owner: string): string | undefined {
    const earlier = this.owners.get(path);
    if (earlier !== undefined) {
      this.owners.set(path, owner);
      return earlier;
    }
    const folderOwner = this.folders.get(path);
    if (folderOwner !== undefined) {
      throw invalidArgument(
        `${owner} writes the file "${path}", which ${folderOwner} needs as a folder: give one of them a different objectAlias`,
      );
    }
    const segments = path.split('/');
    for (let i = 1; i < segments.length; i++) {
      const folder = segments.slice(0, i).join('/');
      const fileOwner = this.owners.get(folder);
      if (fileOwner !== undefined) {
        throw invalidArgument(
          `${owner} writes "${path}" inside "${folder}", which ${fileOwner} writes as a file: give one of them a different objectAlias`,
        );
      }
      this.folders.set(folder, owner);
    }
    this.owners.set(path, owner);
    return undefined;
  }
}
