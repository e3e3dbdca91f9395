#!/usr/bin/env node
// The meter-sync command: runs the TypeScript CLI through tsx's loader.
require('tsx/cjs');
const { main } = require('../lib/cli/main.ts');

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
