/**
 * Where the installed runtime is: the files that `MMPRoot/bin/ImapProxy`, `MMPRoot/bin/PopProxy`
 * and `MMPRoot/mmp-setup` (Table 13.6) run. Found from this module's own location, so the
 * installer depends on no other package's code:
 * - the Debian package (`scripts/package`) bundles each executable into one file beside the
 *   others (`/usr/lib/mmp/ImapProxy.mjs`, `PopProxy.mjs`, `mmp-setup.mjs`), and this code is
 *   inside one of them;
 * - a checkout runs the workspace's build output (`packages/proxy/dist/bin/*.js`,
 *   `packages/setup/dist/bin/mmp-setup.js`).
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Protocol } from '@mmp/config';

export interface Runtime {
  /** The entry file each launcher runs. */
  readonly proxies: Readonly<Record<Protocol, string>>;
  readonly setup: string;
  /** `bundle`: the package's self-contained files; `checkout`: a workspace's build output. */
  readonly kind: 'bundle' | 'checkout';
  /** Entry files that do not exist (a checkout not built yet). */
  readonly missing: readonly string[];
}

export const BUNDLE_FILES = {
  imap: 'ImapProxy.mjs',
  pop3: 'PopProxy.mjs',
  setup: 'mmp-setup.mjs',
} as const;

export function findRuntime(here: string = import.meta.url): Runtime {
  const dir = dirname(fileURLToPath(here));
  const bundle = {
    proxies: { imap: join(dir, BUNDLE_FILES.imap), pop3: join(dir, BUNDLE_FILES.pop3) },
    setup: join(dir, BUNDLE_FILES.setup),
  };
  if ([bundle.proxies.imap, bundle.proxies.pop3, bundle.setup].every((f) => existsSync(f)))
    return { ...bundle, kind: 'bundle', missing: [] };
  // packages/setup/dist/runtime.js → packages/{proxy,setup}/dist/bin/
  const packages = join(dir, '..', '..');
  const checkout = {
    proxies: {
      imap: join(packages, 'proxy', 'dist', 'bin', 'ImapProxy.js'),
      pop3: join(packages, 'proxy', 'dist', 'bin', 'PopProxy.js'),
    },
    setup: join(packages, 'setup', 'dist', 'bin', 'mmp-setup.js'),
  };
  const all = [checkout.proxies.imap, checkout.proxies.pop3, checkout.setup];
  return { ...checkout, kind: 'checkout', missing: all.filter((f) => !existsSync(f)) };
}
