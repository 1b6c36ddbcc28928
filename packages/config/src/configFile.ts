/**
 * `ImapMMP.config` / `PopMMP.config` (NOTES.md decision): a file the start script sources with
 * /bin/sh and the proxy also reads itself, so the reader accepts only the part of the POSIX shell
 * language whose meaning it can reproduce exactly:
 *   Name="value"      then   export Name       (or  export Name="value")
 *   Name='value'             setenv Name value (csh)
 *   # comments, blank lines, `;` between commands on one line.
 * Quoting follows POSIX XCU 2.2: single quotes are literal; in double quotes `\` escapes only
 * `$ \` " \`` and newline. `$` and backquotes (expansions) are refused: the shell would expand
 * them and the reader could not agree.
 */
import { allParameters, findParameter, suggestName, type ParamName } from './parameters.js';
import type { ConfigProblem, Protocol } from './types.js';
import { type Result, err, ok } from './types.js';

export interface ShellAssignment {
  name: string;
  raw: string;
  line: number;
  /** How it was written; `export` alone (no value) is not reported. */
  form: 'assign' | 'export' | 'setenv';
}

const NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

interface Word {
  text: string;
  /** Any part was quoted or escaped (so `=` inside it is not an assignment sign). */
  quotedAt: number;
}

/**
 * Lex the restricted shell grammar into commands (lists of words), each with its line number.
 * Returns problems for anything outside the grammar.
 */
function lexShell(
  text: string,
  fileName: string,
): { commands: { words: Word[]; line: number }[]; problems: ConfigProblem[] } {
  const commands: { words: Word[]; line: number }[] = [];
  const problems: ConfigProblem[] = [];
  let i = 0;
  let line = 1;
  const n = text.length;
  let words: Word[] = [];
  let cmdLine = 1;
  const endCommand = (): void => {
    if (words.length > 0) commands.push({ words, line: cmdLine });
    words = [];
  };
  const skipToEol = (): void => {
    while (i < n && text[i] !== '\n') i++;
  };

  while (i < n) {
    const c = text[i] ?? '';
    if (c === '\n') {
      endCommand();
      line++;
      i++;
      continue;
    }
    if (c === ' ' || c === '\t' || c === '\r') {
      i++;
      continue;
    }
    if (c === ';') {
      endCommand();
      i++;
      continue;
    }
    if (c === '#') {
      skipToEol();
      continue;
    }
    if (c === '\\' && text[i + 1] === '\n') {
      // Line continuation between words.
      i += 2;
      line++;
      continue;
    }
    // A word.
    if (words.length === 0) cmdLine = line;
    const startLine = line;
    let out = '';
    let quotedAt = -1;
    let bad: string | undefined;
    while (i < n && bad === undefined) {
      const ch = text[i] ?? '';
      if (ch === ' ' || ch === '\t' || ch === '\n' || ch === ';') break;
      if (ch === '\r' && text[i + 1] === '\n') break;
      if (ch === "'") {
        if (quotedAt < 0) quotedAt = out.length;
        const close = text.indexOf("'", i + 1);
        if (close < 0) {
          bad = 'unterminated single quote';
          break;
        }
        const lit = text.slice(i + 1, close);
        line += lit.split('\n').length - 1;
        out += lit;
        i = close + 1;
        continue;
      }
      if (ch === '"') {
        if (quotedAt < 0) quotedAt = out.length;
        i++;
        let closed = false;
        while (i < n) {
          const d = text[i] ?? '';
          if (d === '"') {
            closed = true;
            i++;
            break;
          }
          if (d === '\\') {
            const e = text[i + 1] ?? '';
            if (e === '\n') {
              line++;
              i += 2;
              continue;
            }
            if ('$`"\\'.includes(e) && e !== '') {
              out += e;
              i += 2;
              continue;
            }
            out += '\\';
            i++;
            continue;
          }
          if (d === '$' || d === '`') {
            bad = `'${d}' (shell expansion) is not supported; escape it as \\${d}`;
            break;
          }
          if (d === '\n') line++;
          out += d;
          i++;
        }
        if (bad === undefined && !closed) bad = 'unterminated double quote';
        continue;
      }
      if (ch === '\\') {
        const e = text[i + 1];
        if (e === undefined) {
          i++;
          continue;
        }
        if (e === '\n') {
          line++;
          i += 2;
          continue;
        }
        if (quotedAt < 0) quotedAt = out.length;
        out += e;
        i += 2;
        continue;
      }
      if ('$`|&<>()'.includes(ch)) {
        bad = `'${ch}' is not supported outside quotes`;
        break;
      }
      out += ch;
      i++;
    }
    if (bad !== undefined) {
      problems.push({ where: `${fileName}:${startLine}`, message: bad });
      // Resynchronise at the next line.
      skipToEol();
      words = [];
      continue;
    }
    words.push({ text: out, quotedAt });
  }
  endCommand();
  return { commands, problems };
}

/** Parse `Name=value` from a word; the `=` must be unquoted and the name plain. */
function asAssignment(w: Word): { name: string; value: string } | undefined {
  const eq = w.text.indexOf('=');
  if (eq <= 0 || (w.quotedAt >= 0 && w.quotedAt <= eq)) return undefined;
  const name = w.text.slice(0, eq);
  return NAME_RE.test(name) ? { name, value: w.text.slice(eq + 1) } : undefined;
}

/**
 * Read the shell grammar into assignments, whatever the names. Used for the MMP config files and
 * for /etc/netscape.mmp.conf.
 */
export function parseShellAssignments(
  text: string,
  fileName: string,
): Result<ShellAssignment[], ConfigProblem[]> {
  const r = readShell(text, fileName);
  return r.problems.length > 0 ? err(dedupe(r.problems)) : ok(r.assignments);
}

/** Both the good assignments and the problems, so one bad line does not hide the others. */
function readShell(
  text: string,
  fileName: string,
): { assignments: ShellAssignment[]; problems: ConfigProblem[] } {
  const lexed = lexShell(text, fileName);
  const problems: ConfigProblem[] = [...lexed.problems];
  const out: ShellAssignment[] = [];
  for (const { words, line } of lexed.commands) {
    const where = `${fileName}:${line}`;
    const [first, ...rest] = words;
    if (first === undefined) continue;
    if (first.text === 'export' && first.quotedAt < 0) {
      if (rest.length === 0) problems.push({ where, message: "'export' needs a name" });
      for (const w of rest) {
        const a = asAssignment(w);
        if (a) out.push({ name: a.name, raw: a.value, line, form: 'export' });
        else if (!NAME_RE.test(w.text) || w.quotedAt >= 0)
          problems.push({ where, message: `'export ${w.text}': not a variable name` });
      }
      continue;
    }
    if (first.text === 'setenv' && first.quotedAt < 0) {
      const [name, value, ...extra] = rest;
      if (name === undefined || !NAME_RE.test(name.text) || name.quotedAt >= 0) {
        problems.push({ where, message: "'setenv' needs a variable name" });
        continue;
      }
      if (extra.length > 0) {
        problems.push({ where, message: `'setenv ${name.text}': quote values with spaces` });
        continue;
      }
      out.push({ name: name.text, raw: value?.text ?? '', line, form: 'setenv' });
      continue;
    }
    const a = asAssignment(first);
    if (a === undefined || rest.length > 0) {
      const shown = words.map((w) => w.text).join(' ');
      problems.push({
        where,
        message:
          a === undefined
            ? `expected Name="value", export Name or setenv Name value, got '${shown}'`
            : `'${shown}': quote values with spaces; only one assignment per command`,
      });
      continue;
    }
    out.push({ name: a.name, raw: a.value, line, form: 'assign' });
  }
  return { assignments: out, problems };
}

export interface ConfigEntry {
  raw: string;
  line: number;
}

/**
 * Read an MMP config file into canonical parameter names (aliases normalised). Later lines win,
 * as they do when the shell sources the file. Values are not validated here (resolve does that,
 * naming this file and line).
 */
export function parseConfigFile(
  text: string,
  fileName: string,
): Result<Map<ParamName, ConfigEntry>, ConfigProblem[]> {
  const { assignments, problems } = readShell(text, fileName);
  const entries = new Map<ParamName, ConfigEntry>();
  for (const a of assignments) {
    const spec = findParameter(a.name);
    if (spec === undefined) {
      const hint = suggestName(a.name);
      problems.push({
        where: `${fileName}:${a.line}`,
        message: `unknown parameter '${a.name}'${hint ? ` (did you mean ${hint}?)` : ''}`,
      });
      continue;
    }
    entries.set(spec.name, { raw: a.raw, line: a.line });
  }
  return problems.length > 0 ? err(dedupe(problems)) : ok(entries);
}

function dedupe(problems: ConfigProblem[]): ConfigProblem[] {
  const seen = new Set<string>();
  return problems
    .filter((p) => {
      const key = `${p.where}\0${p.message}`;
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    })
    .sort((a, b) => lineOf(a.where) - lineOf(b.where));
}
const lineOf = (where: string): number => Number(/:(\d+)$/.exec(where)?.[1] ?? 0);

/**
 * Single-quote for /bin/sh: everything is literal between single quotes, and a `'` is written as
 * `'\''` (close, escaped quote, reopen). POSIX XCU 2.2.2.
 */
export function shellQuote(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

export interface WriteOptions {
  /** Comment lines put first (each prefixed with `# `). */
  header?: string;
}

/**
 * Write a config file, canonical names in table order, `Name='value'` then `export Name`.
 * Throws a RangeError for a value with a line break: parseValue refuses those, so getting one
 * here is a bug in the caller. (The file holds passwords: create it with mode 0600.)
 */
export function writeConfigFile(
  protocol: Protocol,
  values: Partial<Record<ParamName, string>>,
  options: WriteOptions = {},
): string {
  const lines: string[] = [];
  const header =
    options.header ??
    `${protocol === 'imap' ? 'ImapMMP' : 'PopMMP'}.config: sourced by /bin/sh, read by the proxy.`;
  for (const h of header.split('\n')) lines.push(h === '' ? '#' : `# ${h}`);
  for (const { name: spec } of allParameters()) {
    const v = values[spec];
    if (v === undefined) continue;
    if (/[\r\n\0]/.test(v))
      throw new RangeError(`${spec}: a value cannot hold a line break or NUL`);
    lines.push(`${spec}=${shellQuote(v)}`, `export ${spec}`);
  }
  return lines.join('\n') + '\n';
}

// ---- /etc/netscape.mmp.conf ----

export const DEFAULT_MMP_ROOT = '/opt/mmp';
export const DEFAULT_MMP_CONF_FILE = '/etc/netscape.mmp.conf';

/** Read the multiplexor's conf file (ours: one line `MMPRoot='/opt/mmp'`). */
export function readMmpConf(text: string, fileName: string): Result<string, ConfigProblem[]> {
  const parsed = parseShellAssignments(text, fileName);
  if (!parsed.ok) return parsed;
  const root = parsed.value.filter((a) => a.name === 'MMPRoot').pop();
  if (root === undefined || root.raw === '')
    return err([{ where: fileName, message: "no MMPRoot='/path' line" }]);
  return ok(root.raw);
}

export function writeMmpConf(root: string): string {
  return `# Where the Messaging Multiplexor is installed.\nMMPRoot=${shellQuote(root)}\nexport MMPRoot\n`;
}

/** MMPRoot/MMP_instanceName (guide, Table 13.6). */
export function instanceDir(root: string, name: string): string {
  return `${root.replace(/\/+$/, '')}/MMP_${name}`;
}

export function configFileName(protocol: Protocol): 'ImapMMP.config' | 'PopMMP.config' {
  return protocol === 'imap' ? 'ImapMMP.config' : 'PopMMP.config';
}
