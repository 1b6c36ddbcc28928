/**
 * `ImapProxy [install] [options]` / `PopProxy [install] [options]` (guide, Table 13.4). The flags
 * come from the parameter table; the only flags written here are the ones that are not
 * parameters: `-n instance`, our `-f FILE`, and bare `-h` (list).
 *
 * Beside the guide's short flags, every parameter has a long form derived from its name (the
 * guide: any parameter can be given on the command line): `--UidAttr=mail`, `--UidAttr mail`,
 * aliases too (`--SearchFormat`); a boolean alone means yes (`--PreAuth`), `--PreAuth=no` no.
 */
import {
  allParameters,
  findParameter,
  programName,
  suggestName,
  type ParamName,
  type ParameterSpec,
} from './parameters.js';
import type { ConfigProblem, Protocol, ValueKind } from './types.js';
import { type Result, err, ok } from './types.js';
import { KIND_FORMS } from './values.js';

export interface CommandLine {
  /** `install`: print config-file lines for the options instead of running (guide). */
  install: boolean;
  /** Bare `-h`: list every parameter with its value and origin. */
  list: boolean;
  /** `-n instance`. */
  instance?: string;
  /** `-f FILE` (ours): read this config file. */
  configFile?: string;
  /** Raw values by canonical name; validated by resolveConfig. */
  values: Partial<Record<ParamName, string>>;
  /** The flag that set each value (`-p`, `-s`, `--UidAttr`), for messages. */
  flags: Partial<Record<ParamName, string>>;
}

/** `--Name` of a parameter: its canonical spelling or an alias, exactly (names are case-sensitive). */
export const LONG_PREFIX = '--';

/** The parameter a `--Name[=value]` argument names, and the value after `=` if any. */
function splitLong(arg: string): { name: string; value?: string } {
  const body = arg.slice(LONG_PREFIX.length);
  const eq = body.indexOf('=');
  return eq < 0 ? { name: body } : { name: body.slice(0, eq), value: body.slice(eq + 1) };
}

function isKnownLong(arg: string): boolean {
  return arg.startsWith(LONG_PREFIX) && findParameter(splitLong(arg).name) !== undefined;
}

export const INSTANCE_FLAG = '-n';
export const CONFIG_FILE_FLAG = '-f';
export const LIST_FLAG = '-h';
export const INSTALL_WORD = 'install';

type Spec = ParameterSpec & { name: ParamName };

function flagTable(): Map<string, Spec> {
  const m = new Map<string, Spec>();
  for (const p of allParameters()) if (p.flag !== undefined) m.set(p.flag, p);
  return m;
}

/** The parameters a flag sets positionally (`-s`), in position order. */
function positionalsOf(flag: string): Spec[] {
  return allParameters()
    .filter((p) => p.positional?.flag === flag)
    .sort((a, b) => (a.positional?.index ?? 0) - (b.positional?.index ?? 0));
}

function knownFlags(): string[] {
  return [...flagTable().keys(), INSTANCE_FLAG, CONFIG_FILE_FLAG];
}

export function parseCommandLine(
  protocol: Protocol,
  argv: readonly string[],
): Result<CommandLine, ConfigProblem> {
  const flags = flagTable();
  const known = new Set(knownFlags());
  const cl: CommandLine = { install: false, list: false, values: {}, flags: {} };
  const fail = (where: string, message: string): { ok: false; error: ConfigProblem } =>
    err({ where, message: `${message} (${programName(protocol)} -h lists the options)` });

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    const next = argv[i + 1];
    const takeValue = (): string | undefined => {
      // A known flag right after is a forgotten value, not a value (`-D -w secret`).
      if (next === undefined || known.has(next) || isKnownLong(next)) return undefined;
      i++;
      return next;
    };

    if (arg.startsWith(LONG_PREFIX)) {
      const { name, value } = splitLong(arg);
      const named = findParameter(name);
      const flag = `${LONG_PREFIX}${name}`;
      if (named === undefined) {
        const hint = name === '' ? undefined : suggestName(name);
        // Never echo what follows `=`: a misspelt --BindPas=… carries a password.
        return fail(
          flag,
          `unknown option '${flag}'${hint ? ` (did you mean ${LONG_PREFIX}${hint}?)` : ''}`,
        );
      }
      let v = value;
      // A boolean alone is yes (getopt's optional arguments also need `=`).
      if (v === undefined && named.kind === 'boolean') v = 'yes';
      if (v === undefined) v = takeValue();
      if (v === undefined)
        return fail(
          flag,
          `${flag} needs ${named.metavar ?? named.choices?.join('|') ?? KIND_FORMS[named.kind]}`,
        );
      cl.values[named.name] = v;
      cl.flags[named.name] = flag;
      continue;
    }

    if (arg === INSTALL_WORD) {
      cl.install = true;
      continue;
    }
    if (arg === LIST_FLAG) {
      // Guide: bare `-h` lists; `-h host[:port]` sets LDAPHost. A following word that is not a
      // flag is the host.
      if (next !== undefined && !next.startsWith('-')) {
        const spec = flags.get(LIST_FLAG);
        if (spec) {
          cl.values[spec.name] = next;
          cl.flags[spec.name] = LIST_FLAG;
        }
        i++;
      } else {
        cl.list = true;
      }
      continue;
    }
    if (arg === INSTANCE_FLAG || arg === CONFIG_FILE_FLAG) {
      const v = takeValue();
      if (v === undefined || v === '') return fail(arg, `${arg} needs a value`);
      if (arg === INSTANCE_FLAG) {
        // The name becomes a directory (MMP_name): keep it to one path component.
        if (!/^[A-Za-z0-9._-]+$/.test(v) || v === '.' || v === '..')
          return fail(arg, `instance name '${v}' may hold only letters, digits, '.', '_' and '-'`);
        cl.instance = v;
      } else {
        cl.configFile = v;
      }
      continue;
    }
    const spec = flags.get(arg);
    if (spec === undefined) {
      if (arg.startsWith('-')) {
        const hint = closestFlag(arg, [...known, LIST_FLAG]);
        return fail(arg, `unknown option '${arg}'${hint ? ` (did you mean ${hint}?)` : ''}`);
      }
      const prev = argv[i - 1];
      const boolFlag =
        prev !== undefined && prev.startsWith(LONG_PREFIX) && !prev.includes('=')
          ? findParameter(splitLong(prev).name)
          : undefined;
      // `--PreAuth no`: a boolean's value needs `=`.
      const hint = boolFlag?.kind === 'boolean' ? ` (write ${prev}=${arg})` : '';
      return fail(arg, `unexpected argument '${arg}'${hint}`);
    }
    const positionals = positionalsOf(arg);
    if (spec.flagValue !== undefined) {
      cl.values[spec.name] = spec.flagValue;
      cl.flags[spec.name] = arg;
    } else {
      const v = takeValue();
      if (v === undefined)
        return fail(arg, `${arg} needs ${spec.metavar ?? 'a value'} (${spec.name})`);
      cl.values[spec.name] = v;
      cl.flags[spec.name] = arg;
    }
    if (positionals.length > 0) {
      // Guide, -s: six values in Table 13.5 order; "" for an empty one.
      const names = positionals.map((p) => p.name).join(' ');
      if (argv.length - (i + 1) < positionals.length)
        return fail(arg, `${arg} needs ${positionals.length} values: ${names}`);
      for (const p of positionals) {
        i++;
        cl.values[p.name] = argv[i] ?? '';
        cl.flags[p.name] = `${arg} (${p.name})`;
      }
    }
  }
  return ok(cl);
}

function closestFlag(arg: string, flags: readonly string[]): string | undefined {
  const lower = arg.toLowerCase();
  const exact = flags.find((f) => f.toLowerCase() === lower);
  if (exact) return exact;
  // Flags are short: only a one-letter slip is a useful hint.
  return flags.find((f) => f.length > 2 && (f.startsWith(arg) || arg.startsWith(f)));
}

/** Placeholders for usage rows of parameters without a Table 13.4 metavar. */
const KIND_METAVARS: Record<ValueKind, string> = {
  string: 'str',
  port: 'port',
  listen: '[IP:]port',
  integer: 'num',
  boolean: 'yes|no',
  path: 'file',
  list: 'a,b,...',
  dn: 'dn',
  ldapUrl: 'url ...',
  searchFormat: 'format',
  hostList: 'host[:port] ...',
  networks: 'net[/len],...',
  chars: 'chars',
  choice: 'value',
};

/** The left column of a parameter's usage row: its short flag (if any) and its long form. */
function usageLeft(p: Spec): string {
  const arg = p.metavar ?? p.choices?.join('|') ?? KIND_METAVARS[p.kind];
  const long =
    p.kind === 'boolean' ? `${LONG_PREFIX}${p.name}[=no]` : `${LONG_PREFIX}${p.name} ${arg}`;
  // `-s` takes six values: its own row shows them.
  if (p.flag === undefined || p.positional !== undefined || positionalsOf(p.flag).length > 0)
    return `    ${long}`;
  return `${p.flag}, ${long}`;
}

/** Usage text: every parameter's short flag (Table 13.4) and long form, generated from the table. */
export function usageText(protocol: Protocol): string {
  const prog = programName(protocol);
  const rows: [string, string][] = [];
  for (const p of allParameters()) {
    if (!p.protocols.includes(protocol) || p.vdmapOnly) continue;
    const def = p.defaults[protocol];
    const extra = def !== undefined && !p.secret ? ` [${def}]` : '';
    const also = p.aliases.map((a) => `${LONG_PREFIX}${a}`).join(', ');
    rows.push([usageLeft(p), `${p.help}${extra}${also ? ` (also ${also})` : ''}`]);
    const positionals = p.flag === undefined ? [] : positionalsOf(p.flag);
    if (positionals.length > 0)
      rows.push([
        `${p.flag} ${positionals.map((q) => q.name).join(' ')}`,
        `${p.name}=yes and its ${positionals.length} values in Table 13.5 order ("" for none)`,
      ]);
  }
  rows.push([
    `${INSTANCE_FLAG} instance`,
    'Use the instance MMPRoot/MMP_instance and its config file',
  ]);
  rows.push([`${CONFIG_FILE_FLAG} file`, "Read this config file instead of the instance's"]);
  rows.push([LIST_FLAG, 'List every parameter with its current value and where it came from']);
  const width = Math.min(34, Math.max(...rows.map((r) => r[0].length)) + 2);
  const lines = [
    `Usage: ${prog} [install] [options]`,
    '',
    'install  print config-file lines for the options instead of starting',
    '',
    'Options: -x VALUE, --Name=VALUE and --Name VALUE are equivalent; a --Name of a yes/no',
    'parameter alone means yes. Each parameter may also be set as an environment variable of the',
    'same name.',
  ];
  for (const [f, h] of rows) {
    lines.push(
      f.length + 2 > width ? `  ${f}\n  ${' '.repeat(width)}${h}` : `  ${f.padEnd(width)}${h}`,
    );
  }
  return lines.join('\n') + '\n';
}
