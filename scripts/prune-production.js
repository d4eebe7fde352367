#!/usr/bin/env node
'use strict';
/**
 * Drops from a production node_modules (after `npm prune --omit=dev`) the packages a DaemonSet never loads, and every
 * dependency only they needed, as package-lock.json records the tree:
 *  - @azure/msal-browser: the browser build of MSAL; @azure/identity's Node build never requires it (only its
 *    browserFlows module does, which the Node entry point does not load);
 *  - open: imported lazily by @azure/identity's InteractiveBrowserCredential only, to open a browser for a login;
 *  - @types/*: type declarations, never loaded at run time.
 * Then, in every remaining package, the files Node never reads when it runs JavaScript: type declarations (*.d.ts,
 * *.d.mts, *.d.cts) and source maps (*.js.map, …; read only under --enable-source-maps, and a missing map there only
 * means an unmapped stack trace). They were half of the tree's bytes.
 * Fails if a named package is no longer in the tree, so a dependency update that changes the picture is noticed.
 *
 *   node scripts/prune-production.js [app dir]      (default: the current directory)
 */
const { existsSync, readdirSync, readFileSync, rmSync } = require('node:fs');
const { join } = require('node:path');

const DROP = ['node_modules/@azure/msal-browser', 'node_modules/open'];
const dir = process.argv[2] ?? process.cwd();
const lock = JSON.parse(readFileSync(join(dir, 'package-lock.json'), 'utf8'));
const packages = Object.fromEntries(Object.entries(lock.packages).filter(([path, p]) => path !== '' && !p.dev));

/** Where Node would resolve `name` from the package at `from` (nearest node_modules upwards). */
function resolve(from, name) {
  for (let base = from; ; ) {
    const candidate = `${base ? `${base}/` : ''}node_modules/${name}`;
    if (packages[candidate]) return candidate;
    if (!base) return undefined;
    const i = base.lastIndexOf('/node_modules/');
    base = i < 0 ? '' : base.slice(0, i);
  }
}

const dropped = new Set(Object.keys(packages).filter((path) => /(^|\/)node_modules\/@types\//.test(path)));
for (const path of DROP) {
  if (!packages[path]) throw new Error(`prune-production: ${path} is not in package-lock.json any more; review the list`);
  dropped.add(path);
}
// Keep what the remaining packages reach from the root; drop the rest (what only the dropped ones needed).
const reachable = new Set();
const visit = (path) => {
  if (reachable.has(path) || dropped.has(path)) return;
  reachable.add(path);
  const p = packages[path];
  for (const name of Object.keys({ ...p.dependencies, ...p.optionalDependencies, ...p.peerDependencies })) {
    const target = resolve(path, name);
    if (target) visit(target);
  }
};
for (const name of Object.keys(lock.packages[''].dependencies ?? {})) visit(`node_modules/${name}`);
let removed = 0;
for (const path of Object.keys(packages)) {
  if (reachable.has(path) || !existsSync(join(dir, path))) continue;
  rmSync(join(dir, path), { recursive: true, force: true });
  removed++;
}
console.log(`prune-production: removed ${removed} packages a DaemonSet never loads`);

const NEVER_READ = /\.(d\.[cm]?ts|[cm]?js\.map|d\.[cm]?ts\.map)$/;
let files = 0;
const sweep = (path) => {
  for (const entry of readdirSync(path, { withFileTypes: true })) {
    const child = join(path, entry.name);
    if (entry.isDirectory()) sweep(child);
    else if (entry.isFile() && NEVER_READ.test(entry.name)) {
      rmSync(child);
      files++;
    }
  }
};
sweep(join(dir, 'node_modules'));
console.log(`prune-production: removed ${files} type declaration and source map files`);
