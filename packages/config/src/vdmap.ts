/**
 * Virtual domain file (guide, "Virtual Domains"; the format is the same in all releases):
 *   vdmap NAME IPADDR
 *   NAME:Property value
 * The name only ties an address to its properties. Properties are the parameters the table marks
 * `virtualDomain` (Table 13.1) and override the global ones for connections accepted on that
 * address.
 */
import { type ConfigValues, type ParamName, findParameter, suggestName } from './parameters.js';
import type { ConfigProblem } from './types.js';
import { type Result, err, ok } from './types.js';
import { normalizeAddress, parseValue } from './values.js';

export interface VirtualDomain {
  name: string;
  /** The listening address, normalised (normalizeAddress): compare with a normalised local address. */
  address: string;
  /** Line of the `vdmap` line. */
  line: number;
  /** Raw property values by canonical name. */
  overrides: Partial<Record<ParamName, string>>;
  /** The same, parsed. */
  values: Partial<ConfigValues>;
  /** Line of each property, for messages. */
  lines: Partial<Record<ParamName, number>>;
}

/** Unquote a property value: `"…"` with `\"` and `\\` escapes, else the text as is. */
function unquote(v: string): Result<string, string> {
  if (!v.startsWith('"')) return ok(v);
  let out = '';
  for (let i = 1; i < v.length; i++) {
    const c = v[i];
    if (c === '\\' && (v[i + 1] === '"' || v[i + 1] === '\\')) {
      out += v[i + 1];
      i++;
    } else if (c === '"') {
      return i === v.length - 1 ? ok(out) : err('text after the closing double quote');
    } else {
      out += c;
    }
  }
  return err('unterminated double quote');
}

export function parseVdmap(
  text: string,
  fileName: string,
): Result<VirtualDomain[], ConfigProblem[]> {
  const problems: ConfigProblem[] = [];
  const domains = new Map<string, VirtualDomain>();
  const byAddress = new Map<string, VirtualDomain>();
  const lines = text.split('\n');
  lines.forEach((rawLine, k) => {
    const lineNo = k + 1;
    const where = `${fileName}:${lineNo}`;
    const line = rawLine.replace(/\r$/, '').trim();
    if (line === '' || line.startsWith('#')) return;

    const head = /^vdmap\s+(\S+)\s+(\S+)\s*$/.exec(line);
    if (head) {
      const [, name = '', addr = ''] = head;
      const address = normalizeAddress(addr);
      if (address === undefined) {
        problems.push({ where, message: `'${addr}' is not an IPv4 or IPv6 address` });
        return;
      }
      const prevName = domains.get(name);
      if (prevName) {
        problems.push({
          where,
          message: `vdmap ${name} is already defined at line ${prevName.line}`,
        });
        return;
      }
      const prevAddr = byAddress.get(address);
      if (prevAddr) {
        problems.push({
          where,
          message: `address ${address} is already mapped to ${prevAddr.name} at line ${prevAddr.line}`,
        });
        return;
      }
      const vd: VirtualDomain = {
        name,
        address,
        line: lineNo,
        overrides: {},
        values: {},
        lines: {},
      };
      domains.set(name, vd);
      byAddress.set(address, vd);
      return;
    }
    if (/^vdmap\b/.test(line)) {
      problems.push({ where, message: 'expected: vdmap NAME IPADDR' });
      return;
    }

    // `s`: a value may hold U+2028/U+2029, which `.` would not match (found by the property test).
    const prop = /^([^:\s]+):(\S+)(?:\s+(.*))?$/s.exec(line);
    if (!prop) {
      problems.push({
        where,
        message: `expected 'vdmap NAME IPADDR' or 'NAME:Property value', got '${line}'`,
      });
      return;
    }
    const [, name = '', propName = '', rawValue = ''] = prop;
    const vd = domains.get(name);
    if (vd === undefined) {
      problems.push({ where, message: `'${name}' has no vdmap line before it` });
      return;
    }
    const spec = findParameter(propName);
    if (spec === undefined || !spec.virtualDomain) {
      const hint = spec === undefined ? suggestName(propName) : undefined;
      const hintOk = hint !== undefined && findParameter(hint)?.virtualDomain;
      problems.push({
        where,
        message:
          spec === undefined
            ? `unknown property '${propName}'${hintOk ? ` (did you mean ${hint}?)` : ''}`
            : `${spec.name} cannot be set for a virtual domain (Table 13.1)`,
      });
      return;
    }
    if (vd.overrides[spec.name] !== undefined) {
      problems.push({
        where,
        message: `${name}:${spec.name} is already set at line ${vd.lines[spec.name]}`,
      });
      return;
    }
    const unq = unquote(rawValue.trim());
    if (!unq.ok) {
      problems.push({ where, message: `${spec.name}: ${unq.error}` });
      return;
    }
    const parsed = parseValue(spec, unq.value);
    if (!parsed.ok) {
      problems.push({ where, message: parsed.error });
      return;
    }
    vd.overrides[spec.name] = unq.value;
    (vd.values as Record<string, unknown>)[spec.name] = parsed.value;
    vd.lines[spec.name] = lineNo;
  });
  return problems.length > 0 ? err(problems) : ok([...domains.values()]);
}

/**
 * What is legal but probably wrong. Guide, Table 13.1: BindDN/BindPass "is ignored if the LdapUrl
 * property is not set".
 */
export function vdmapWarnings(
  domains: readonly VirtualDomain[],
  fileName: string,
): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  for (const vd of domains) {
    if (vd.overrides.LdapUrl !== undefined) continue;
    for (const n of ['BindDN', 'BindPass'] as const) {
      const line = vd.lines[n];
      if (line !== undefined)
        out.push({
          where: `${fileName}:${line}`,
          message: `${vd.name}:${n} is ignored without ${vd.name}:LdapUrl`,
        });
    }
  }
  return out;
}

/** The virtual domain for a connection accepted on this local address, if any. */
export function findVirtualDomain(
  domains: readonly VirtualDomain[],
  localAddress: string,
): VirtualDomain | undefined {
  const a = normalizeAddress(localAddress);
  return a === undefined ? undefined : domains.find((d) => d.address === a);
}

/**
 * The configuration for connections on a virtual domain's address: its properties over the
 * global ones (guide: "virtual domain properties override global configuration parameters"),
 * except BindDN/BindPass, which apply only together with the domain's own LdapUrl.
 *
 * Decision: a domain with its own LdapUrl binds with its own BindDN/BindPass only (anonymously
 * when it sets none): the global service password is never sent to another domain's directory.
 */
export function applyVirtualDomain(global: ConfigValues, vd: VirtualDomain): ConfigValues {
  const merged: Record<string, unknown> = { ...global };
  if (vd.values.LdapUrl !== undefined) {
    merged['BindDN'] = undefined;
    merged['BindPass'] = undefined;
  }
  for (const [k, v] of Object.entries(vd.values)) {
    if ((k === 'BindDN' || k === 'BindPass') && vd.values.LdapUrl === undefined) continue;
    merged[k] = v;
  }
  return merged as ConfigValues;
}
