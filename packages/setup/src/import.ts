/**
 * `mmp-setup --import DIR_OR_FILE`: an instance from another multiplexor's configuration, the
 * successors' `*AService.cfg` (iPlanet 5 to Oracle 7) or a 4.x `ImapMMP.config` / `PopMMP.config`
 * taken from another host. The config package maps their names and checks their values
 * (`planMigrationFromText`, `planMigrationFromConfigFiles`); this module finds the files, checks
 * what only this host can say (the files the values name exist here, LogDir is a directory here),
 * prints the plan, and hands the values on as an answers file: the same merge, dialogue,
 * validators and atomic writer as `--answers` from then on.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import {
  type ConfigFileText,
  type ConfigProblem,
  INSTALLER_PARAMETERS,
  type MigrationNote,
  type MigrationPlan,
  PROTOCOLS,
  type ParamName,
  type Protocol,
  type Result,
  SUCCESSOR_FILES,
  configFileName,
  err,
  ok,
  planMigrationFromConfigFiles,
  planMigrationFromText,
} from '@mmp/config';
import type { AnswersFile } from './answers.js';
import {
  PROTOCOL_LABEL,
  findSpec,
  isSecret,
  mustExist,
  tableOrder,
  validateValue,
} from './table.js';

/** What a file is: one of the successors' three, or one of our (4.x) two. */
type SourceKey = 'aservice' | Protocol;
type Family = 'successor' | 'config';

export interface ImportSource {
  readonly family: Family;
  readonly key: SourceKey;
  readonly path: string;
  readonly text: string;
}

/** The file names, as their releases write them; matched without regard to case. */
const KNOWN: readonly { family: Family; key: SourceKey; name: string }[] = [
  { family: 'successor', key: 'aservice', name: SUCCESSOR_FILES.aservice },
  { family: 'successor', key: 'imap', name: SUCCESSOR_FILES.imap },
  { family: 'successor', key: 'pop3', name: SUCCESSOR_FILES.pop3 },
  ...PROTOCOLS.map((p) => ({ family: 'config' as const, key: p, name: configFileName(p) })),
];
const KNOWN_NAMES = KNOWN.map((k) => k.name).join(', ');

/**
 * The files to import: each argument a directory (the known names in it) or a file (its name
 * says what it is; a copy's suffix, `ImapMMP.config.orig`, is fine). One kind at a time, each file
 * once.
 */
export function readImportSources(args: readonly string[]): Result<ImportSource[], string[]> {
  const problems: string[] = [];
  const sources: ImportSource[] = [];
  const take = (path: string, family: Family, key: SourceKey): void => {
    const same = sources.find((s) => s.family === family && s.key === key);
    if (same !== undefined) {
      problems.push(`${same.path} and ${path} are both ${nameOf(family, key)}: import one`);
      return;
    }
    try {
      sources.push({ family, key, path, text: readFileSync(path, 'utf8') });
    } catch (e) {
      problems.push(`${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  };
  for (const arg of args) {
    const path = resolve(arg);
    let isDir: boolean;
    try {
      isDir = statSync(path).isDirectory();
    } catch {
      problems.push(`${arg}: no such file or directory`);
      continue;
    }
    if (isDir) {
      const names = readdirSync(path);
      const found = KNOWN.flatMap((k) => {
        const n = names.find((f) => f.toLowerCase() === k.name.toLowerCase());
        return n === undefined ? [] : [{ ...k, file: join(path, n) }];
      });
      if (found.length === 0) problems.push(`${arg}: holds none of ${KNOWN_NAMES}`);
      for (const f of found) take(f.file, f.family, f.key);
      continue;
    }
    const lower = basename(path).toLowerCase();
    const k = KNOWN.find((x) => lower.startsWith(x.name.toLowerCase()));
    if (k === undefined)
      problems.push(`${arg}: not one of ${KNOWN_NAMES} (its name says which it is)`);
    else take(path, k.family, k.key);
  }
  const families = new Set(sources.map((s) => s.family));
  if (families.size > 1)
    problems.push(
      `${sources.map((s) => basename(s.path)).join(', ')}: the successors' *AService.cfg and ImapMMP.config/PopMMP.config are two configurations; import one of them`,
    );
  return problems.length > 0 ? err(problems) : ok(sources);
}

const nameOf = (family: Family, key: SourceKey): string =>
  KNOWN.find((k) => k.family === family && k.key === key)?.name ?? key;

export interface ImportPlan {
  readonly sources: readonly string[];
  /** The protocols the import starts (ServiceList, else the files given). */
  readonly services: readonly Protocol[];
  /** RunAsUser of a file mmp wrote. */
  readonly user?: string;
  /** Checked values per protocol, paths absolute. */
  readonly values: Record<Protocol, Partial<Record<ParamName, string>>>;
  /** `ImapProxyAService.cfg:10 (SearchFormat)` per value. */
  readonly origins: Record<Protocol, Partial<Record<ParamName, string>>>;
  readonly notes: readonly MigrationNote[];
}

/**
 * Map and check the files. Errors are one line each: a line the readers refuse, a value the
 * validators refuse, a file a value names that is not on this host. A parameter `overridden`
 * (`--set`) is neither checked nor imported: the option's value replaces it.
 */
export function planImport(
  sources: readonly ImportSource[],
  overridden: AnswersFile['values'] = { imap: {}, pop3: {} },
): Result<ImportPlan, string[]> {
  const texts: Partial<Record<SourceKey, ConfigFileText>> = {};
  for (const s of sources) texts[s.key] = { text: s.text, fileName: basename(s.path) };
  const planned: Result<MigrationPlan, ConfigProblem[]> =
    sources[0]?.family === 'config'
      ? planMigrationFromConfigFiles(texts)
      : planMigrationFromText(texts);
  if (!planned.ok) return err(planned.error.map((p) => `${p.where}: ${p.message}`));

  // Relative paths were relative to where the file was: its directory here.
  const dirOf = new Map(sources.map((s) => [basename(s.path), dirname(s.path)]));
  const problems: string[] = [];
  const notes: MigrationNote[] = [...planned.value.notes];
  const services: Protocol[] = [];
  const values: ImportPlan['values'] = { imap: {}, pop3: {} };
  const origins: ImportPlan['origins'] = { imap: {}, pop3: {} };
  let user: string | undefined;
  for (const p of PROTOCOLS) {
    const plan = planned.value.protocols[p];
    if (plan === undefined) continue;
    if (!plan.enabled) {
      notes.push({
        where: SUCCESSOR_FILES.aservice,
        protocol: p,
        name: 'ServiceList',
        kind: 'no-equivalent',
        message: `does not start the ${PROTOCOL_LABEL[p]} proxy: its settings are not imported`,
      });
      continue;
    }
    services.push(p);
    for (const [name, raw] of Object.entries(plan.values) as [ParamName, string][]) {
      const origin = plan.origins[name] ?? name;
      const where = origin.split(' ')[0] ?? origin;
      const from = dirOf.get(where.replace(/:\d+$/, '')) ?? '.';
      if (name === INSTALLER_PARAMETERS.runAsUser) {
        user = raw;
        continue;
      }
      if (name === INSTALLER_PARAMETERS.logDir && !isDirectoryHere(raw)) {
        // The old host's log directory: the instance gets its own (mmp-setup makes it).
        notes.push({
          where,
          protocol: p,
          name,
          kind: 'changed',
          message: `'${raw}' is not a directory on this host: not imported (a new instance logs to the directory mmp-setup makes for it; an existing one keeps its LogDir)`,
        });
        continue;
      }
      const spec = findSpec(name);
      if (name in overridden[p]) continue;
      const abs =
        spec.kind === 'path' && raw.trim() !== '' && !isAbsolute(raw) ? resolve(from, raw) : raw;
      if (mustExist(spec) !== undefined && abs.trim() !== '' && !existsSync(abs)) {
        problems.push(
          `${where}: ${name}: ${abs} is not on this host: copy it there, or add --set ${name}=FILE`,
        );
        continue;
      }
      const checked = validateValue(spec, abs, { cwd: from });
      if (!checked.ok) problems.push(`${where}: ${checked.error}`);
      else {
        values[p][name] = checked.value;
        origins[p][name] = origin;
      }
    }
  }
  if (problems.length > 0) return err(problems);
  // AService.cfg's values are each protocol's: a note the same for both is said once.
  const key = (n: MigrationNote): string => `${n.where}\0${n.name}\0${n.message}`;
  const pop = new Set(notes.filter((n) => n.protocol === 'pop3').map(key));
  const both = new Set(notes.filter((n) => n.protocol === 'imap' && pop.has(key(n))).map(key));
  const shared = notes.flatMap((n): MigrationNote[] => {
    if (!both.has(key(n))) return [n];
    if (n.protocol === 'pop3') return [];
    return [{ where: n.where, name: n.name, kind: n.kind, message: n.message }];
  });
  if (services.length === 0)
    return err([
      `${sources.map((s) => basename(s.path)).join(', ')}: starts neither the IMAP nor the POP3 proxy; nothing to import`,
    ]);
  return ok({
    sources: sources.map((s) => s.path),
    services,
    values,
    origins,
    notes: shared,
    ...(user !== undefined ? { user } : {}),
  });
}

function isDirectoryHere(path: string): boolean {
  if (!isAbsolute(path)) return false;
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** The plan as the answers `--answers` would have given (services, values, instance, user). */
export function importAnswers(plan: ImportPlan, instance: string | undefined): AnswersFile {
  return {
    services: plan.services,
    values: {
      imap: { ...plan.values.imap },
      pop3: { ...plan.values.pop3 },
    },
    ...(instance !== undefined ? { instance } : {}),
    ...(plan.user !== undefined ? { user: plan.user } : {}),
  };
}

const KIND_LABEL: Record<MigrationNote['kind'], string> = {
  'no-equivalent': 'no equivalent',
  changed: 'changed',
  action: 'to do',
  unknown: 'unknown',
  info: 'info',
};

/** What will be imported, where each value comes from, and one line per note. */
export function planText(plan: ImportPlan): string {
  const lines = [`Import from ${plan.sources.join(', ')}:`];
  for (const p of plan.services) {
    lines.push(`${PROTOCOL_LABEL[p]} (${configFileName(p)}):`);
    const names = tableOrder().filter((n) => plan.values[p][n] !== undefined);
    if (names.length === 0) lines.push('  (nothing; defaults)');
    const shown = names.map(
      (n) => `${n}=${isSecret(n) ? '******' : JSON.stringify(plan.values[p][n])}`,
    );
    const width = Math.min(60, Math.max(...shown.map((s) => s.length)));
    names.forEach((n, i) => {
      const s = shown[i] ?? '';
      lines.push(`  ${s.padEnd(width)}  ${plan.origins[p][n] ?? ''}`);
    });
  }
  if (plan.notes.length > 0) {
    lines.push(`Not carried over, or changed (${plan.notes.length}):`);
    for (const n of plan.notes) {
      const proto = n.protocol === undefined ? '' : ` (${PROTOCOL_LABEL[n.protocol]})`;
      lines.push(`  ${n.where} ${n.name}${proto} [${KIND_LABEL[n.kind]}]: ${n.message}`);
    }
  }
  return `${lines.join('\n')}\n`;
}
