#!/usr/bin/env node
// mmp-testbed start [--json-file PATH] [--stores N] [--bulk-users N] [--no-tls] [--keep]
//                   [--replicated-directory]
//   Start the test bed, print its description as JSON on stdout (and to PATH), keep running
//   until SIGINT or SIGTERM, then stop everything.
// mmp-testbed selftest [--stores N]
//   Start, check every store with curl (IMAP and POP3) and the directory with ldapsearch, stop.
import { writeFile, rename } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { startTestbed, type TestbedOptions } from './testbed.js';
import { selftest } from './selftest.js';

const USAGE = `usage: mmp-testbed start [--json-file PATH] [--stores N] [--bulk-users N] [--no-tls] [--keep] [--ldap-log-level LEVEL] [--replicated-directory]
       mmp-testbed selftest [--stores N] [--bulk-users N]`;

function fail(message: string): never {
  process.stderr.write(`mmp-testbed: ${message}\n${USAGE}\n`);
  process.exit(2);
}

async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        'json-file': { type: 'string' },
        stores: { type: 'string' },
        'bulk-users': { type: 'string' },
        'no-tls': { type: 'boolean' },
        keep: { type: 'boolean' },
        'ldap-log-level': { type: 'string' },
        'replicated-directory': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (error) {
    fail(error instanceof Error ? error.message : String(error));
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const integer = (name: string, value: string | undefined): number | undefined => {
    if (value === undefined) return undefined;
    if (!/^\d+$/.test(value)) fail(`--${name} needs a whole number, got ${JSON.stringify(value)}`);
    return Number(value);
  };
  const options: TestbedOptions = {
    stores: integer('stores', values.stores),
    bulkUsers: integer('bulk-users', values['bulk-users']),
    tls: values['no-tls'] ? false : undefined,
    keep: values.keep ? true : undefined,
    ldapLogLevel: values['ldap-log-level'],
    replicatedDirectory: values['replicated-directory'] ? true : undefined,
  };
  const [command, ...rest] = positionals;
  if (rest.length > 0) fail(`unexpected argument ${JSON.stringify(rest[0])}`);

  if (command === 'selftest') {
    const report = await selftest(options, (line) => process.stdout.write(`${line}\n`));
    return report.ok ? 0 : 1;
  }
  if (command !== 'start')
    fail(command === undefined ? 'missing command' : `unknown command ${command}`);

  // Listen before starting, so that a signal during the start is not lost.
  let stopRequested = false;
  let wake: () => void = () => undefined;
  const stopSignal = new Promise<void>((resolve) => {
    wake = resolve;
  });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => {
      stopRequested = true;
      wake();
    });
  }
  const testbed = await startTestbed(options);
  const json = `${JSON.stringify(testbed.describe(), null, 2)}\n`;
  const jsonFile = values['json-file'];
  if (jsonFile !== undefined) {
    // write then rename, so a reader polling for the file never sees half of it
    await writeFile(`${jsonFile}.tmp`, json);
    await rename(`${jsonFile}.tmp`, jsonFile);
  }
  process.stdout.write(json);
  // Signal listeners do not keep Node's event loop alive (the servers are unref'ed): a timer does.
  const keepAlive = setInterval(() => undefined, 1 << 30);
  if (!stopRequested) await stopSignal;
  clearInterval(keepAlive);
  await testbed.stop();
  process.stderr.write('mmp-testbed: stopped\n');
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(
      `mmp-testbed: ${error instanceof Error ? error.message : String(error)}\n`,
    );
    process.exit(1);
  },
);
