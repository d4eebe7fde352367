/**
 * The layer rule, checked by `npm run lint` (dependency-cruiser over src/, type-only imports included).
 *
 * Leaves — errors.ts, util/, observability/, content/ and the domain (mount/types.ts, mount/ports.ts,
 * keyvault/clouds.ts: the domain types, the ports and the cloud table) — import nothing above them. mount/ sees only
 * the leaves. Nothing imports main.ts, the one module that sees everything. No module cycles, no cycles between
 * folders.
 *
 * What the tree breaks today is listed in .dependency-cruiser-known-violations.json (the baseline, to be removed by
 * the re-layout that moves the domain into a leaf folder of its own): those are reported as warnings, anything new
 * fails. Regenerate it with `npm run lint:baseline` only when a listed violation is fixed, never to admit a new one.
 */
const LEAVES = [
  '^src/errors\\.ts$',
  '^src/util/',
  '^src/observability/',
  '^src/content/',
  '^src/mount/types\\.ts$',
  '^src/mount/ports\\.ts$',
  '^src/keyvault/clouds\\.ts$',
];

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'leaf-imports-only-leaves',
      comment: 'A leaf (errors, util, observability, content, the domain types, ports and cloud table) imports only leaves.',
      severity: 'error',
      from: { path: LEAVES },
      to: { path: '^src/', pathNot: LEAVES },
    },
    {
      name: 'mount-sees-only-leaves',
      comment: 'mount/ sees the domain, content and the shared leaves: never identity, keyvault, kube, server or cli.',
      severity: 'error',
      from: { path: '^src/mount/' },
      to: { path: '^src/(identity|keyvault|kube|server|cli)/|^src/main\\.ts$' },
    },
    {
      name: 'only-main-sees-everything',
      comment: 'main.ts wires the provider together; nothing imports it.',
      severity: 'error',
      from: { path: '^src/' },
      to: { path: '^src/main\\.ts$' },
    },
    {
      name: 'no-module-cycles',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'no-folder-cycles',
      comment:
        'Folders form a hierarchy: a folder that imports another is never imported back, directly or not. ' +
        'Baseline: identity, keyvault and mount form a cycle today, only because the domain modules live inside mount/ ' +
        'and keyvault/; they are exempt here until the re-layout moves the domain out (rule below keeps it at that).',
      severity: 'error',
      scope: 'folder',
      from: { path: '^src/', pathNot: '^src/(identity|keyvault|mount)$' },
      to: { circular: true },
    },
    {
      name: 'known-cycle-into-mount-only-for-the-domain',
      comment:
        'Baseline companion of no-folder-cycles, to be removed by the re-layout: within the known cycle, identity and ' +
        'keyvault import from mount/ only the domain types and the ports.',
      severity: 'error',
      from: { path: '^src/(identity|keyvault)/' },
      to: { path: '^src/mount/', pathNot: LEAVES },
    },
    {
      name: 'known-cycle-into-keyvault-only-for-the-cloud-table',
      comment:
        'Baseline companion of no-folder-cycles, to be removed by the re-layout: identity imports from keyvault/ only ' +
        'the cloud table (keyvault → identity is the layering itself).',
      severity: 'error',
      from: { path: '^src/identity/' },
      to: { path: '^src/keyvault/', pathNot: LEAVES },
    },
  ],
  options: {
    // Type-only imports count: `import type` still says which layer a module knows about.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^src/types/' },
    includeOnly: '^src/',
  },
};
