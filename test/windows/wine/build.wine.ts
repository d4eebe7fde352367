/** The Windows builds of the addon (mingw-w64 against node-api-headers): they compile, link, and import only what
 * node.exe and a stock Windows provide. */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { buildAddon, removeAddonBuilds, type AddonTarget } from '../support/addon-build';

afterAll(removeAddonBuilds);

function importedDlls(dll: string): string[] {
  const dump = execFileSync('x86_64-w64-mingw32-objdump', ['-p', dll], { encoding: 'utf8' });
  return [...dump.matchAll(/DLL Name:\s*(\S+)/g)].map((m) => m[1]!.toUpperCase()).sort();
}

describe.each<AddonTarget>(['win32-x64', 'win32-x64-tcptest'])('the %s build', (target) => {
  let dll: string;

  beforeAll(() => {
    dll = buildAddon(target);
  });

  it('is a 64-bit Windows DLL', () => {
    const header = readFileSync(dll);
    expect(header.subarray(0, 2).toString('latin1')).toBe('MZ');
    const pe = header.readUInt32LE(0x3c);
    expect(header.subarray(pe, pe + 4).toString('latin1')).toBe('PE\0\0');
    expect(header.readUInt16LE(pe + 4)).toBe(0x8664); // IMAGE_FILE_MACHINE_AMD64
  });

  it('imports only NODE.EXE, KERNEL32, msvcrt and WS2_32', () => {
    expect(importedDlls(dll)).toEqual(['KERNEL32.DLL', 'MSVCRT.DLL', 'NODE.EXE', 'WS2_32.DLL']);
  });

  it('exports the Node-API module entry points', () => {
    const dump = execFileSync('x86_64-w64-mingw32-objdump', ['-p', dll], { encoding: 'utf8' });
    expect(dump).toContain('napi_register_module_v1');
    expect(dump).toContain('node_api_module_get_api_version_v1');
  });
});
