#!/usr/bin/env node
'use strict';
// The installed command. The TypeScript sources are compiled to dist/ by `npm run build` (the image ships dist/).
require('../dist/src/main.js').main(process.argv.slice(2));
