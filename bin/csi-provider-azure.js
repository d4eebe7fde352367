#!/usr/bin/env node
'use strict';
// The installed command. The TypeScript sources are compiled to dist/ by `npm run build` (the image ships dist/).

// First, the heap cap from the container's memory limit (src/cli/heap-cap.ts): re-execute this same process with it
// where Node can (process.execve, Node 22.15+ on Linux); the second run finds the flag and goes on. Without execve
// (Windows), a limit named by the environment (the chart sets it) runs the provider as a child with the cap.
const { heapCapArgv, limitFromEnv, MEMORY_LIMIT_ENV } = require('../dist/src/cli/heap-cap.js');
const memoryLimitEnv = process.env[MEMORY_LIMIT_ENV];
const argv = heapCapArgv({
  execArgv: process.execArgv,
  nodeOptions: process.env.NODE_OPTIONS,
  constrainedMemory: typeof process.constrainedMemory === 'function' ? process.constrainedMemory() : 0,
  memoryLimitEnv,
  totalMemory: require('node:os').totalmem(),
  execPath: process.execPath,
  argv: process.argv,
});
if (argv && typeof process.execve === 'function' && process.platform !== 'win32') {
  process.execve(process.execPath, argv, process.env);
} else if (argv && limitFromEnv(memoryLimitEnv) !== undefined) {
  require('../dist/src/cli/run-capped.js').runCapped(argv);
} else {
  require('../dist/src/main.js').main(process.argv.slice(2));
}
