#!/usr/bin/env node
/**
 * mmp-setup, the Multiplexor Installer (guide, Table 13.6). See cli.ts; this file only connects
 * the process to it.
 */
import { main } from '../cli.js';

// Ctrl-C at a prompt is seen by inquirer as a key (the terminal is in raw mode); a SIGINT or
// SIGTERM outside a prompt (while files are written) aborts, and apply rolls back before exit.
const controller = new AbortController();
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => controller.abort());

const code = await main({
  argv: process.argv.slice(2),
  env: process.env,
  cwd: process.cwd(),
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
  signal: controller.signal,
});
process.exitCode = code;
