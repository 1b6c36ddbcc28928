/**
 * Where the ImapProxy / PopProxy executables are, found at run time through Node's own module
 * resolution (so a workspace link, a global install and a packed tarball all work), and written
 * as absolute paths into the start scripts: an init system has no PATH worth trusting.
 */
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { PROTOCOLS, type Protocol, type Result, err, ok, programName } from '@mmp/config';

const PROXY_PACKAGE = '@mmp/proxy';

export interface ProxyBins {
  readonly bins: Record<Protocol, string>;
  /** Bins named by the package but not built yet (the scripts will work once they are). */
  readonly missing: readonly string[];
}

export function findProxyBins(): Result<ProxyBins, string> {
  const require = createRequire(import.meta.url);
  // The package does not export its package.json, so look for it along the resolution paths
  // instead of require.resolve('@mmp/proxy/package.json').
  const dirs = require.resolve.paths(PROXY_PACKAGE) ?? [];
  const pkgJson = dirs
    .map((d) => join(d, PROXY_PACKAGE, 'package.json'))
    .find((f) => existsSync(f));
  if (pkgJson === undefined) return err(`cannot find the ${PROXY_PACKAGE} package`);
  const root = dirname(realpathSync(pkgJson));
  let bin: unknown;
  try {
    bin = (JSON.parse(readFileSync(pkgJson, 'utf8')) as { bin?: unknown }).bin;
  } catch (e) {
    return err(`${pkgJson}: ${(e as Error).message}`);
  }
  if (bin === null || typeof bin !== 'object') return err(`${pkgJson}: no "bin" field`);
  const bins = {} as Record<Protocol, string>;
  const missing: string[] = [];
  for (const p of PROTOCOLS) {
    const rel = (bin as Record<string, unknown>)[programName(p)];
    if (typeof rel !== 'string') return err(`${pkgJson}: "bin" has no ${programName(p)}`);
    const abs = join(root, rel);
    if (!existsSync(abs)) missing.push(abs);
    bins[p] = abs;
  }
  return ok({ bins, missing });
}
