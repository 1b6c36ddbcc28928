/**
 * The successors' configuration files (iPlanet Messaging Server 5 to Oracle Communications
 * Messaging Server 7, NOTES.md): `ImapProxyAService.cfg` / `PopProxyAService.cfg`, one per
 * protocol, and `AService.cfg`, the services to start and options both share. One line each:
 *   default:Name value
 *   default:Name "value with spaces"
 *   # comment
 * `default` is the section; the Sun guides say it "indicates the default section" so that several
 * instances can share a file. Reading is liberal, as the guides' own samples need: a quoted value
 * may run on over the next lines (their Capability and ServerDownAlert examples wrap), names and
 * sections are taken as written. Any other line is reported with its number.
 */
import { findParameter } from './parameters.js';
import type { ConfigProblem, ListenAddress, Protocol } from './types.js';
import { type Result, err, ok } from './types.js';
import { parseValue } from './values.js';

export interface SuccessorEntry {
  /** `default`, or another section name. */
  section: string;
  /** The parameter name as written. */
  name: string;
  /** The value, unquoted (empty when none was given). */
  value: string;
  /** Line of the name (a continued quoted value starts there). */
  line: number;
}

export interface SuccessorFile {
  fileName: string;
  entries: SuccessorEntry[];
  /** Lines read liberally (a quoted value continued on the next line). */
  warnings: (ConfigProblem & { name: string })[];
}

// `s`: U+2028/U+2029 are not line ends in these files, and `.` must match them.
const ENTRY_RE = /^([^\s:#"]+):([A-Za-z][A-Za-z0-9_]*)(?:\s+(.*))?$/s;

/**
 * A quoted value: `\"` and `\\` are escapes, every other character (a Windows path's `\`)
 * is itself. Returns the value and what follows the closing quote, or undefined when the quote
 * is not closed in `text`.
 */
function readQuoted(text: string): { value: string; rest: string } | undefined {
  let out = '';
  for (let i = 1; i < text.length; i++) {
    const c = text[i];
    if (c === '\\' && (text[i + 1] === '"' || text[i + 1] === '\\')) {
      out += text[i + 1];
      i++;
    } else if (c === '"') {
      return { value: out, rest: text.slice(i + 1) };
    } else {
      out += c;
    }
  }
  return undefined;
}

/** Read a `*AService.cfg` file. Never throws; every bad line is one problem with its number. */
export function parseSuccessorFile(
  text: string,
  fileName: string,
): Result<SuccessorFile, ConfigProblem[]> {
  const problems: ConfigProblem[] = [];
  const entries: SuccessorEntry[] = [];
  const warnings: SuccessorFile['warnings'] = [];
  const lines = text.replace(/^\uFEFF/, '').split('\n');
  for (let k = 0; k < lines.length; k++) {
    const lineNo = k + 1;
    const where = `${fileName}:${lineNo}`;
    const line = (lines[k] ?? '').replace(/\r$/, '').trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = ENTRY_RE.exec(line);
    if (m === null) {
      problems.push({ where, message: `expected 'default:Name value', got '${line}'` });
      continue;
    }
    const [, section = '', name = '', rawValue = ''] = m;
    let value = rawValue.trim();
    if (value.startsWith('"')) {
      let joined = value;
      let q = readQuoted(joined);
      let last = k;
      // The guides' samples wrap long quoted values; read on until the quote closes, but never
      // into the next entry, a blank line or a comment (a forgotten quote stays one error).
      while (q === undefined && last + 1 < lines.length) {
        const next = (lines[last + 1] ?? '').replace(/\r$/, '').trim();
        if (next === '' || next.startsWith('#') || ENTRY_RE.test(next)) break;
        last++;
        joined = `${joined.trimEnd()} ${next}`;
        q = readQuoted(joined);
      }
      if (q === undefined) {
        problems.push({ where, message: `${name}: unterminated double quote` });
        k = last;
        continue;
      }
      const rest = q.rest.trim();
      if (rest !== '' && !rest.startsWith('#')) {
        problems.push({
          where: `${fileName}:${last + 1}`,
          message: `${name}: text after the closing double quote: '${rest}'`,
        });
        k = last;
        continue;
      }
      if (last > k)
        warnings.push({
          where,
          name,
          message: `the quoted value runs on to line ${last + 1}; read as one line`,
        });
      k = last;
      value = q.value;
    }
    entries.push({ section, name, value, line: lineNo });
  }
  return problems.length > 0 ? err(problems) : ok({ fileName, entries, warnings });
}

// ---- ServiceList (AService.cfg) ----

/** What a ServiceList item starts: the two we proxy, the SMTP proxy, or something else. */
export type SuccessorService = Protocol | 'smtp' | 'other';

export interface ServiceListItem {
  /** As written: a library path (`/opt/SUNWmsgsr/lib/ImapProxyAService`) or a name (`imapproxy`). */
  service: string;
  kind: SuccessorService;
  /** The ports after `@`, in order (`143|993`); empty when the item has none. */
  ports: ListenAddress[];
}

const SERVICE_KINDS: readonly [RegExp, SuccessorService][] = [
  [/^imap(?:4)?proxy(?:aservice)?$/, 'imap'],
  [/^pop(?:3)?proxy(?:aservice)?$/, 'pop3'],
  [/^(?:smtp|submit)proxy(?:aservice)?$/, 'smtp'],
];

function serviceKind(service: string): SuccessorService {
  // A library path on Unix or Windows, with or without its extension.
  const base = (service.split(/[/\\]/).pop() ?? '')
    .replace(/\.(?:so|sl|dll|dylib)$/i, '')
    .toLowerCase();
  return SERVICE_KINDS.find(([re]) => re.test(base))?.[1] ?? 'other';
}

const LISTEN_SPEC = findParameter('ListenPort');

/**
 * `imapproxy@143|993 popproxy@110|995` (the guides: "the list of all IMAP and POP server ports
 * regardless of whether or not they are secure"; SSLPorts says which are TLS). Items are
 * separated by white space, ports by `|` (a `,` is read too); a port may be `IP:port`.
 */
export function parseServiceList(value: string): Result<ServiceListItem[], string> {
  const items: ServiceListItem[] = [];
  for (const word of value.split(/\s+/).filter((w) => w !== '')) {
    const at = word.lastIndexOf('@');
    const service = at < 0 ? word : word.slice(0, at);
    if (service === '') return err(`'${word}' names no service`);
    const ports = parsePortList(at < 0 ? '' : word.slice(at + 1));
    if (!ports.ok) return err(`'${word}': ${ports.error}`);
    items.push({ service, kind: serviceKind(service), ports: ports.value });
  }
  return ok(items);
}

/** `143|993`, `993`, `10.0.0.1:993|[::1]:993`: listening addresses as ListenPort reads them. */
export function parsePortList(text: string): Result<ListenAddress[], string> {
  const out: ListenAddress[] = [];
  if (LISTEN_SPEC === undefined) return err('no ListenPort parameter');
  for (const item of text.split(/[|,\s]+/).filter((s) => s !== '')) {
    const p = parseValue(LISTEN_SPEC, item);
    if (!p.ok) return err(`'${item}' is not a port or IP:port`);
    out.push(p.value as ListenAddress);
  }
  return ok(out);
}
