#!/usr/bin/env node
// The `sluice` command of the installed package. It runs the compiled JavaScript in dist/
// (`npm run build`, which `prepare` runs on `npm ci` and `npm pack`): Node does not strip
// TypeScript types in files under node_modules, which is where an installed package lives.
import { existsSync } from 'node:fs';

const main = new URL('../dist/main.js', import.meta.url);
if (!existsSync(main)) {
  process.stderr.write('sluice: dist/main.js is missing; build it with `npm run build`\n');
  process.exit(3);
}
await import(main.href);
