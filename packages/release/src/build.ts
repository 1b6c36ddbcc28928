/**
 * Build `mmp_<version>_all.deb` from a built checkout: each executable bundled by esbuild into
 * one self-contained file (nothing refers to the build tree or its node_modules), the launchers
 * on PATH, the systemd templates, the logrotate snippet, the `-h` texts in the doc directory,
 * and the maintainer scripts of debian.ts; then `dpkg-deb --root-owner-group --build` (no
 * fakeroot needed).
 */
import { chmod, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { execa } from 'execa';
import { NODE_FLAGS, PROTOCOLS, type Result, err, ok, programName } from '@mmp/config';
import { BUNDLE_FILES, SETUP_PROGRAM, launcherScript } from '@mmp/setup';
import {
  BIN_DIR,
  CONFFILES,
  DOC_DIR,
  LIB_DIR,
  LOGROTATE_FILE,
  PACKAGE,
  UNIT_DIR,
  controlFile,
  copyright,
  logrotate,
  postinst,
  postrm,
  templateUnit,
  templateUnitName,
} from './debian.js';

export interface BuildInput {
  /** The checkout's root (its packages/*\/dist must be built). */
  readonly checkout: string;
  /** Where the .deb is written. */
  readonly outDir: string;
}

/** The entry files of a checkout's build and the bundle each becomes. */
function entries(checkout: string): { entry: string; bundle: string }[] {
  return [
    ...PROTOCOLS.map((p) => ({
      entry: join(checkout, 'packages', 'proxy', 'dist', 'bin', `${programName(p)}.js`),
      bundle: BUNDLE_FILES[p],
    })),
    {
      entry: join(checkout, 'packages', 'setup', 'dist', 'bin', `${SETUP_PROGRAM}.js`),
      bundle: BUNDLE_FILES.setup,
    },
  ];
}

const exists = (p: string): Promise<boolean> =>
  stat(p).then(
    () => true,
    () => false,
  );

async function write(path: string, content: string | Buffer, mode: number): Promise<void> {
  await writeFile(path, content);
  await chmod(path, mode);
}

/** Total size in KiB of the regular files under `dir` (the control file's Installed-Size). */
async function sizeKiB(dir: string): Promise<number> {
  let bytes = 0;
  for (const e of await readdir(dir, { recursive: true, withFileTypes: true }))
    if (e.isFile()) bytes += (await stat(join(e.parentPath, e.name))).size;
  return Math.ceil(bytes / 1024);
}

export async function buildPackage(input: BuildInput): Promise<Result<string, string>> {
  const list = entries(input.checkout);
  for (const { entry } of list)
    if (!(await exists(entry))) return err(`${entry} does not exist: run pnpm build first`);
  const version = (
    JSON.parse(
      await readFile(join(input.checkout, 'packages', 'proxy', 'package.json'), 'utf8'),
    ) as {
      version: string;
    }
  ).version;

  const root = await mkdtemp(join(tmpdir(), 'mmp-package-'));
  try {
    // The tree's root becomes "./" in the package: not mkdtemp's 0700.
    await chmod(root, 0o755);
    const lib = join(root, LIB_DIR);
    const bin = join(root, BIN_DIR);
    const doc = join(root, DOC_DIR);
    const units = join(root, UNIT_DIR);
    const debian = join(root, 'DEBIAN');
    for (const d of [lib, bin, doc, units, join(root, 'etc', 'logrotate.d'), debian])
      await mkdir(d, { recursive: true, mode: 0o755 });

    // One file per executable. ESM with a require() for the CommonJS dependencies (pino,
    // ldapts' asn1), Node 20 syntax; the installer's writer inside the proxies (install -n) is
    // loaded on demand.
    for (const { entry, bundle } of list) {
      const r = await build({
        entryPoints: [entry],
        outfile: join(lib, bundle),
        bundle: true,
        platform: 'node',
        format: 'esm',
        target: 'node20',
        legalComments: 'eof',
        logLevel: 'error',
        banner: {
          js: "import { createRequire as __mmpCreateRequire } from 'node:module'; const require = __mmpCreateRequire(import.meta.url);",
        },
      });
      if (r.errors.length > 0) return err(`esbuild ${entry}: ${r.errors[0]?.text ?? ''}`);
      await chmod(join(lib, bundle), 0o644);
    }

    for (const p of PROTOCOLS)
      await write(
        join(bin, programName(p)),
        launcherScript(programName(p), `${LIB_DIR}/${BUNDLE_FILES[p]}`, NODE_FLAGS),
        0o755,
      );
    await write(
      join(bin, SETUP_PROGRAM),
      launcherScript(SETUP_PROGRAM, `${LIB_DIR}/${BUNDLE_FILES.setup}`, []),
      0o755,
    );
    for (const p of PROTOCOLS)
      await write(join(units, templateUnitName(p)), templateUnit(p), 0o644);
    await write(join(root, LOGROTATE_FILE), logrotate(), 0o644);

    // The -h texts, from the bundles themselves, with no configuration around them.
    for (const p of PROTOCOLS) {
      const h = await execa('node', [join(lib, BUNDLE_FILES[p]), '-h'], {
        extendEnv: false,
        env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin' },
        reject: false,
      });
      if (h.exitCode !== 0) return err(`${programName(p)} -h failed: ${h.stderr}`);
      await write(join(doc, `${programName(p)}-h.txt`), `${h.stdout}\n`, 0o644);
    }
    const setupHelp = await execa('node', [join(lib, BUNDLE_FILES.setup), '--help'], {
      reject: false,
    });
    if (setupHelp.exitCode !== 0) return err(`mmp-setup --help failed: ${setupHelp.stderr}`);
    await write(join(doc, 'mmp-setup-help.txt'), setupHelp.stdout, 0o644);
    await write(
      join(doc, 'README.md'),
      await readFile(join(input.checkout, 'README.md'), 'utf8'),
      0o644,
    );
    await write(join(doc, 'copyright'), copyright(), 0o644);

    await write(join(debian, 'control'), controlFile(version, await sizeKiB(root)), 0o644);
    await write(join(debian, 'conffiles'), CONFFILES, 0o644);
    await write(join(debian, 'postinst'), postinst(), 0o755);
    await write(join(debian, 'postrm'), postrm(), 0o755);

    await mkdir(input.outDir, { recursive: true });
    const deb = join(input.outDir, `${PACKAGE}_${version}_all.deb`);
    const r = await execa('dpkg-deb', ['--root-owner-group', '-Zxz', '--build', root, deb], {
      reject: false,
    });
    if (r.exitCode !== 0) return err(`dpkg-deb: ${r.stderr || r.stdout}`);
    return ok(deb);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}
