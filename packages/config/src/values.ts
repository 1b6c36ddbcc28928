/**
 * Text ↔ typed value, per value kind. The same parser reads defaults, config files, environment,
 * command line, vdmap properties and installer answers, so a value means the same everywhere.
 */
import { isIP } from 'node:net';
import { parseDn } from './dn.js';
import type { ParameterSpec } from './parameters.js';
import { parseSearchFormat } from './searchFormat.js';
import type {
  HostPort,
  IpNetwork,
  ListenAddress,
  SearchTemplate,
  ValueKind,
  ValueKinds,
} from './types.js';
import { type Result, err, ok } from './types.js';

/** What each kind accepts, for messages and usage text. */
export const KIND_FORMS: Record<ValueKind, string> = {
  string: 'a single line of text',
  port: 'a port 1–65535',
  listen: '[IP:]port with port 1–65535',
  integer: 'an integer',
  boolean: 'yes or no',
  path: 'a file path',
  list: 'a comma-separated list',
  dn: 'an LDAP DN such as o=example.com',
  ldapUrl: 'ldap[s]://HOST[:PORT]/BASEDN (space-separated for several)',
  searchFormat: 'an LDAP filter with % escapes such as (uid=%s)',
  hostList: 'host[:port] (space-separated for several)',
  chars: 'a string of delimiter characters',
  choice: 'one of the listed values',
  networks: 'comma-separated IP networks such as 10.0.0.0/8, 192.0.2.7, ::1',
};

const TRUE = new Set(['yes', 'y', 'true', 'on', '1']);
const FALSE = new Set(['no', 'n', 'false', 'off', '0']);

type Parsed = ValueKinds[ValueKind];

/** Parse a raw value for a parameter. */
export function parseValue<S extends ParameterSpec>(
  spec: S,
  raw: string,
): Result<ValueKinds[S['kind']], string> {
  const shown = spec.secret ? '******' : raw;
  const fail = (form: string, why?: string): { ok: false; error: string } =>
    err(`${spec.name}: expected ${form}, got '${shown}'${why ? ` (${why})` : ''}`);
  // Every parameter is one line: a CR or LF in a banner or capability would inject protocol
  // lines (RFC 3501 2.2), and a config file could not hold it on one line either.
  if (/[\r\n\0]/.test(raw)) return fail(formFor(spec), 'line breaks and NUL are not allowed');
  const r = parseKind(spec, raw);
  if (!r.ok) return fail(formFor(spec), r.error || undefined);
  return r as Result<ValueKinds[S['kind']], string>;
}

function formFor(spec: ParameterSpec): string {
  if (spec.kind === 'integer') {
    if (spec.min !== undefined && spec.max !== undefined)
      return `an integer ${spec.min}–${spec.max}`;
    if (spec.min !== undefined) return `an integer ≥ ${spec.min}`;
  }
  if (spec.kind === 'chars' && spec.max === 1) return 'a single character';
  if (spec.kind === 'choice' && spec.choices !== undefined)
    return `one of ${spec.choices.join(', ')}`;
  if (spec.kind === 'list' && spec.choices !== undefined)
    return `a comma-separated list of ${spec.choices.join(', ')}`;
  return KIND_FORMS[spec.kind];
}

function parseKind(spec: ParameterSpec, raw: string): Result<Parsed, string> {
  const v = raw.trim();
  switch (spec.kind) {
    case 'string':
    case 'path':
      return ok(raw);
    case 'port':
      return parsePort(v);
    case 'integer': {
      if (!/^-?\d+$/.test(v)) return err('');
      const n = Number(v);
      if (spec.min !== undefined && n < spec.min) return err(`below ${spec.min}`);
      if (spec.max !== undefined && n > spec.max) return err(`above ${spec.max}`);
      return ok(n);
    }
    case 'boolean': {
      const l = v.toLowerCase();
      if (TRUE.has(l)) return ok(true);
      if (FALSE.has(l)) return ok(false);
      return err('');
    }
    case 'listen':
      return parseListen(v);
    case 'list': {
      const items = v
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== '');
      if (spec.choices === undefined) return ok(items);
      // A list of choices: each item one of them (any case; the table's spelling is kept).
      const chosen: string[] = [];
      for (const item of items) {
        const choice = spec.choices.find((c) => c.toLowerCase() === item.toLowerCase());
        if (choice === undefined) return err(`'${item}' is not one of ${spec.choices.join(', ')}`);
        if (!chosen.includes(choice)) chosen.push(choice);
      }
      return ok(chosen);
    }
    case 'dn': {
      const d = parseDn(v);
      return d.ok ? ok(v) : err(d.error);
    }
    case 'ldapUrl': {
      if (v === '') return ok('');
      const urls = parseLdapUrls(v);
      return urls.ok ? ok(v.split(/\s+/).join(' ')) : err(urls.error);
    }
    case 'searchFormat':
      return parseSearchFormat(v);
    case 'hostList':
      return parseHostList(v);
    case 'chars': {
      if (/\s/.test(raw)) return err('white space is not a delimiter');
      const len = [...raw].length;
      if (spec.min !== undefined && len < spec.min) return err(`at least ${spec.min}`);
      if (spec.max !== undefined && len > spec.max) return err(`at most ${spec.max}`);
      return ok(raw);
    }
    case 'choice': {
      const choice = spec.choices?.find((c) => c.toLowerCase() === v.toLowerCase());
      return choice === undefined ? err('') : ok(choice);
    }
    case 'networks':
      return parseNetworks(v);
  }
}

/** `10.0.0.0/8, 192.0.2.7, 2001:db8::/32`: every item an address with an optional prefix. */
function parseNetworks(v: string): Result<IpNetwork[], string> {
  const out: IpNetwork[] = [];
  for (const item of v.split(',').map((s) => s.trim())) {
    if (item === '') continue;
    const [addr = '', prefixText, extra] = item.split('/');
    const address = normalizeAddress(addr);
    if (address === undefined || extra !== undefined) return err(`'${item}' is not an IP network`);
    const family = isIP(address) === 4 ? 4 : 6;
    const max = family === 4 ? 32 : 128;
    if (prefixText !== undefined && !/^\d{1,3}$/.test(prefixText)) {
      return err(`'${item}': the prefix is not a number`);
    }
    const prefix = prefixText === undefined ? max : Number(prefixText);
    if (prefix > max) return err(`'${item}': a prefix of at most ${max}`);
    out.push({ address, family, prefix });
  }
  return ok(out);
}

/** `10.0.0.0/8`, or the bare address for a single host. */
export function formatNetwork(n: IpNetwork): string {
  return n.prefix === (n.family === 4 ? 32 : 128) ? n.address : `${n.address}/${n.prefix}`;
}

function parsePort(v: string): Result<number, string> {
  if (!/^\d{1,5}$/.test(v)) return err('');
  const n = Number(v);
  return n >= 1 && n <= 65535 ? ok(n) : err('out of range');
}

const HOSTNAME_RE =
  /^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?$/;

/** A bind/connect host: an IP literal (IPv6 without brackets here) or a DNS name. */
function validHost(h: string): boolean {
  return isIP(h) !== 0 || HOSTNAME_RE.test(h);
}

/** Split `host:port`, `[v6]:port`, `port` (when portOnlyAllowed), or `host`. */
function splitHostPort(v: string): Result<{ host?: string; port?: string }, string> {
  if (v.startsWith('[')) {
    const close = v.indexOf(']');
    if (close < 0) return err("missing ']'");
    const host = v.slice(1, close);
    if (isIP(host) !== 6) return err(`'${host}' is not an IPv6 address`);
    const rest = v.slice(close + 1);
    if (rest === '') return ok({ host });
    if (!rest.startsWith(':')) return err(`unexpected '${rest}'`);
    return ok({ host, port: rest.slice(1) });
  }
  const colons = v.split(':').length - 1;
  if (colons > 1) return err('write IPv6 addresses in brackets, as [::1]:143');
  if (colons === 1) {
    const [host = '', port = ''] = v.split(':');
    return ok({ host, port });
  }
  return ok({ host: v });
}

function parseListen(v: string): Result<ListenAddress, string> {
  if (/^\d+$/.test(v)) {
    const p = parsePort(v);
    return p.ok ? ok({ port: p.value }) : p;
  }
  const hp = splitHostPort(v);
  if (!hp.ok) return hp;
  const { host, port } = hp.value;
  if (port === undefined) return err('the port is missing');
  const p = parsePort(port);
  if (!p.ok) return err('bad port');
  // `*:143` and `0.0.0.0`-style wildcards mean every address, like a bare port.
  if (host === '*' || host === '') return ok({ port: p.value });
  if (host === undefined || !validHost(host)) return err(`bad address '${host ?? ''}'`);
  return ok({ host, port: p.value });
}

function parseHostList(v: string): Result<HostPort[], string> {
  const items = v.split(/[\s,]+/).filter((s) => s !== '');
  if (items.length === 0) return err('no host given');
  const out: HostPort[] = [];
  for (const item of items) {
    const hp = splitHostPort(item);
    if (!hp.ok) return hp;
    const { host = '', port } = hp.value;
    if (!validHost(host)) return err(`bad host '${host}'`);
    if (port === undefined) {
      out.push({ host });
      continue;
    }
    const p = parsePort(port);
    if (!p.ok) return err(`bad port in '${item}'`);
    out.push({ host, port: p.value });
  }
  return ok(out);
}

export interface LdapUrl {
  secure: boolean;
  host: string;
  /** Absent: 389 for ldap, 636 for ldaps. */
  port?: number;
  /** The base DN (percent-decoded, RFC 4516 2); empty when absent. */
  baseDn: string;
}

/** Parse one or more space-separated `ldap[s]://HOST[:PORT]/BASEDN` (RFC 4516). */
export function parseLdapUrls(v: string): Result<LdapUrl[], string> {
  const out: LdapUrl[] = [];
  for (const item of v.split(/\s+/).filter((s) => s !== '')) {
    const m = /^(ldaps?):\/\/([^/?]*)(?:\/([^?]*))?(\?.*)?$/i.exec(item);
    if (!m) return err(`'${item}' is not an ldap:// or ldaps:// URL`);
    const [, scheme = '', hostport = '', dnPart = '', extra] = m;
    if (extra !== undefined && extra !== '')
      return err(`attributes, scope and filter are not supported in '${item}'`);
    if (hostport === '') return err(`'${item}' has no host`);
    const hp = splitHostPort(hostport);
    if (!hp.ok) return hp;
    const { host = '', port } = hp.value;
    if (!validHost(host)) return err(`bad host '${host}'`);
    let baseDn: string;
    try {
      baseDn = decodeURIComponent(dnPart);
    } catch {
      return err(`bad percent-encoding in '${item}'`);
    }
    const dn = parseDn(baseDn);
    if (!dn.ok) return err(`bad base DN in '${item}': ${dn.error}`);
    const url: LdapUrl = { secure: scheme.toLowerCase() === 'ldaps', host, baseDn };
    if (port !== undefined) {
      const p = parsePort(port);
      if (!p.ok) return err(`bad port in '${item}'`);
      url.port = p.value;
    }
    out.push(url);
  }
  if (out.length === 0) return err('no URL given');
  return ok(out);
}

const bracket = (host: string): string => (isIP(host) === 6 ? `[${host}]` : host);

export function formatHostPort(hp: HostPort): string {
  return hp.port === undefined ? bracket(hp.host) : `${bracket(hp.host)}:${hp.port}`;
}

/** The inverse of parseValue: parseValue(spec, formatValue(spec, v)) gives v back. */
export function formatValue<S extends ParameterSpec>(
  spec: S,
  value: ValueKinds[S['kind']],
): string {
  const v: Parsed = value;
  switch (spec.kind) {
    case 'boolean':
      return v === true ? 'yes' : 'no';
    case 'listen': {
      const l = v as ListenAddress;
      return l.host === undefined ? String(l.port) : `${bracket(l.host)}:${l.port}`;
    }
    case 'list':
      return (v as string[]).join(',');
    case 'hostList':
      return (v as HostPort[]).map(formatHostPort).join(' ');
    case 'networks':
      return (v as IpNetwork[]).map(formatNetwork).join(',');
    case 'searchFormat':
      return (v as SearchTemplate).text;
    default:
      return String(v);
  }
}

/** formatValue, with secrets masked: for listings and logs. */
export function displayValue<S extends ParameterSpec>(
  spec: S,
  value: ValueKinds[S['kind']] | undefined,
): string {
  if (value === undefined) return '(not set)';
  if (spec.secret) return '******';
  return formatValue(spec, value);
}

/**
 * A canonical text form of an IP address for comparing addresses: IPv4-mapped IPv6
 * (`::ffff:10.0.0.1`, what a dual-stack socket reports) becomes IPv4, IPv6 is compressed and
 * lower-cased (RFC 5952 4). Undefined when not an IP literal (zone ids are refused).
 */
export function normalizeAddress(address: string): string | undefined {
  let a = address.trim();
  if (a.startsWith('[') && a.endsWith(']')) a = a.slice(1, -1);
  const family = isIP(a);
  if (family === 4) return a;
  if (family !== 6 || a.includes('%')) return undefined;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(a);
  if (mapped?.[1] !== undefined && isIP(mapped[1]) === 4) return mapped[1];
  // The WHATWG URL serializer prints IPv6 in RFC 5952 form.
  const host = new URL(`http://[${a}]/`).hostname.slice(1, -1);
  const m2 = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(host);
  if (m2?.[1] !== undefined && m2[2] !== undefined) {
    const hi = parseInt(m2[1], 16);
    const lo = parseInt(m2[2], 16);
    return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  }
  return host;
}
