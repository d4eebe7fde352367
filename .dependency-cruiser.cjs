/**
 * The layer rule, checked by `npm run lint` (dependency-cruiser over src/, type-only imports included).
 *
 * Leaves — errors.ts, util/, observability/, content/ and spec/ (the domain: the mount's types, the ports to Key
 * Vault and the cloud table) — import nothing above them. mount/ sees only the leaves. Nothing imports main.ts, the
 * one module that sees everything. No module cycles, no cycles between folders.
 *
 * What the tree still breaks, if anything, is listed in .dependency-cruiser-known-violations.json (the baseline):
 * those are reported as warnings, anything new fails. Regenerate it with `npm run lint:baseline` only when a listed
 * violation is fixed, never to admit a new one.
 */
const LEAVES = [
  '^src/errors\\.ts$',
  '^src/util/',
  '^src/observability/',
  '^src/content/',
  '^src/spec/',
];

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'leaf-imports-only-leaves',
      comment: 'A leaf (errors, util, observability, content, spec) imports only leaves.',
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
      comment: 'Folders form a hierarchy: a folder that imports another is never imported back, directly or not.',
      severity: 'error',
      scope: 'folder',
      from: { path: '^src/' },
      to: { circular: true },
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
