import { join } from 'node:path';

/**
 * The package's root, where package.json, proto/ and native/ are: this module runs from src/util under ts-jest and
 * from dist/src/util compiled (in the repository and in both images, which keep that layout).
 */
export function packageRoot(): string {
  return __dirname.includes(join('dist', 'src')) ? join(__dirname, '..', '..', '..') : join(__dirname, '..', '..');
}
