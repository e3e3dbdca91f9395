#!/usr/bin/env node
// The meter-sync command: runs its compiled form, dist/cli/meter-sync.js (scripts/build-cli.ts).
'use strict';

const FLOOR = 24;
const major = Number(process.versions.node.split('.')[0]);
if (major < FLOOR) {
  process.stderr.write(
    `meter-sync: needs Node.js ${FLOOR} or later; this is ${process.version} (see the README, "On a fresh machine")\n`,
  );
  process.exit(2);
}

let cli;
try {
  cli = require('../dist/cli/meter-sync.js');
} catch (error) {
  if (error.code !== 'MODULE_NOT_FOUND' || !String(error.message).includes('dist/cli/meter-sync.js'))
    throw error;
  process.stderr.write('meter-sync: not built in this checkout; run `npm run build` (or `npm install`)\n');
  process.exit(2);
}
cli.run(process.argv.slice(2));
