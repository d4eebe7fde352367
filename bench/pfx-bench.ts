/**
 * How long the PFX → PEM conversion of a certificate-backed secret takes: base64 decoding, MAC check, decryption,
 * key and certificate conversion and chain ordering — everything convertCertificateSecret does for one mount.
 *
 * Input: the 4-certificate OpenSSL fixtures (leaf, two intermediates, root; RSA 2048) in the two encryptions that
 * matter: the legacy one (RC2-40 certificates, 3DES key, SHA-1 MAC, as Windows and `openssl -legacy` write) and
 * OpenSSL 3's default (PBES2 AES-256-CBC, SHA-256 MAC).
 *
 * Run after `npm run build`:  node dist/bench/pfx-bench.js [runs=500]
 * The conversion is synchronous CPU work on the event loop, so these figures are also how long one conversion
 * blocks every other mount and health check of the provider.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { convertCertificateSecret } from '../src/content/certificate-secret';

const FIXTURES = [
  { file: 'chain4-rc2.p12', encryption: 'legacy: RC2-40 certs, 3DES key, SHA-1 MAC' },
  { file: 'chain4-aes256.p12', encryption: 'OpenSSL 3: PBES2 AES-256-CBC, SHA-256 MAC' },
];

function fixtureDir(): string {
  // dist/bench/pfx-bench.js → the repository root is two levels up; ts-node style runs sit one level up.
  for (const dir of [resolve(__dirname, '..', '..'), resolve(__dirname, '..'), process.cwd()]) {
    const candidate = join(dir, 'test', 'fixtures', 'content');
    if (existsSync(join(candidate, FIXTURES[0]!.file))) return candidate;
  }
  throw new Error('test/fixtures/content/*.p12 not found: run from the repository (see make-fixtures.sh)');
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

function main(): void {
  const runs = Number(process.argv[2] ?? 500);
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`runs must be a positive integer, got ${process.argv[2]}`);
  const dir = fixtureDir();
  const opts = {
    format: 'pem',
    encoding: 'utf-8',
    constructPemChain: true,
    writeCertAndKeyInSeparateFiles: false,
  } as const;

  const rows = FIXTURES.map(({ file, encryption }) => {
    const secret = { value: readFileSync(join(dir, file)).toString('base64'), contentType: 'application/x-pkcs12' };
    const check = convertCertificateSecret(secret, opts);
    if (check.warnings.length > 0) throw new Error(`${file}: unexpected warnings ${check.warnings.join('; ')}`);
    for (let i = 0; i < Math.min(20, runs); i++) convertCertificateSecret(secret, opts); // warm-up (JIT)

    const times: number[] = [];
    for (let i = 0; i < runs; i++) {
      const start = process.hrtime.bigint();
      convertCertificateSecret(secret, opts);
      times.push(Number(process.hrtime.bigint() - start) / 1e6);
    }
    times.sort((a, b) => a - b);
    const round = (ms: number) => Math.round(ms * 100) / 100;
    return {
      pfx: file,
      encryption,
      runs,
      'median ms': round(percentile(times, 50)),
      'p99 ms': round(percentile(times, 99)),
      'min ms': round(times[0]!),
      'max ms': round(times[times.length - 1]!),
    };
  });

  console.log(`PFX → PEM (4 certificates, RSA 2048), Node ${process.version}`);
  console.table(rows);
}

main();
