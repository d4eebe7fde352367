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
 * Records the files of one mount and rejects two objects writing the same path, or one object's file being another's
 * folder (version history writes `<file>/0`, which would clash with an object named `<file>`).
 */
export class FilePathRegistry {
  private readonly owners = new Map<string, string>();
  private readonly folders = new Map<string, string>();

  claim(path: string, owner: string): void {
    const clash = this.owners.get(path) ?? this.folders.get(path);
    if (clash !== undefined) {
      throw invalidArgument(
        `${owner} and ${clash} both write the file "${path}": give one of them a different objectAlias`,
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
  }
}
