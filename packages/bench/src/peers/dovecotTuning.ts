// Our tuning of the test bed's Dovecot stores, as an override layer over the configuration
// @mmp/testbed writes: many clients per imap/pop3 process (so that tens of thousands of idle
// sessions need only tens of processes), a login process per core kept alive, quiet auth logs.
import { readFile, writeFile } from 'node:fs/promises';
import type { Store } from '@mmp/testbed';

export interface DovecotTuning {
  /** clients per imap / pop3 process */
  clientLimit: number;
  /** imap / pop3 processes per store */
  processLimit: number;
  /** login processes kept ready (one per core) */
  loginProcesses: number;
}

export const DEFAULT_TUNING: DovecotTuning = {
  clientLimit: 1000,
  processLimit: 100,
  loginProcesses: 2,
};

function replaceOnce(text: string, pattern: RegExp, replacement: string, what: string): string {
  const matches = text.match(new RegExp(pattern.source, `${pattern.flags.replace('g', '')}g`));
  if (matches === null || matches.length === 0) {
    throw new Error(`Dovecot tuning: the test bed's configuration has no ${what} any more`);
  }
  return text.replace(
    new RegExp(pattern.source, `${pattern.flags.replace('g', '')}g`),
    replacement,
  );
}

/** The test bed's dovecot.conf, tuned. Throws if the expected settings are not there. */
export function tuneDovecotConf(conf: string, t: DovecotTuning = DEFAULT_TUNING): string {
  let out = conf;
  for (const service of ['imap', 'pop3']) {
    out = replaceOnce(
      out,
      new RegExp(`^service ${service} \\{\\n(?:  [^\\n]*\\n)*?\\}`, 'm'),
      [
        `service ${service} {`,
        `  process_limit = ${t.processLimit}`,
        `  client_limit = ${t.clientLimit}`,
        '  vsz_limit = 2G',
        '}',
      ].join('\n'),
      `service ${service} block`,
    );
  }
  out = replaceOnce(
    out,
    /^( {2}process_min_avail = )\d+$/m,
    `$1${t.loginProcesses}`,
    'login process_min_avail',
  );
  out = replaceOnce(
    out,
    /^default_client_limit = \d+$/m,
    'default_client_limit = 20000',
    'default_client_limit',
  );
  out = out.replace(/^auth_verbose = yes$/m, 'auth_verbose = no');
  return `${out.trimEnd()}\n# tuned by @mmp/bench\n`;
}

/** Rewrite each store's configuration and restart it. */
export async function tuneStores(
  stores: readonly Store[],
  t: DovecotTuning = DEFAULT_TUNING,
): Promise<void> {
  await Promise.all(
    stores.map(async (store) => {
      const conf = await readFile(store.configFile, 'utf8');
      const tuned = tuneDovecotConf(conf, t);
      await store.stop();
      await writeFile(store.configFile, tuned);
      await store.start();
    }),
  );
}
