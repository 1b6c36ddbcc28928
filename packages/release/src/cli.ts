#!/usr/bin/env node
/**
 * `scripts/package [--out DIR]`: build mmp_<version>_all.deb from this checkout (after `pnpm
 * build`) into DIR (default: the checkout's dist/). Prints the package's path.
 */
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { buildPackage } from './build.js';

const checkout = fileURLToPath(new URL('../../..', import.meta.url));
let out: string;
try {
  const { values } = parseArgs({ options: { out: { type: 'string' } }, strict: true });
  out = resolve(values.out ?? resolve(checkout, 'dist'));
} catch (e) {
  process.stderr.write(
    `scripts/package: ${(e as Error).message} (usage: scripts/package [--out DIR])\n`,
  );
  process.exit(2);
}
const r = await buildPackage({ checkout, outDir: out });
if (!r.ok) {
  process.stderr.write(`scripts/package: ${r.error}\n`);
  process.exit(1);
}
process.stdout.write(`${r.value}\n`);
