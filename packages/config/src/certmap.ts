/**
 * certmap.conf: the Netscape format shared with the directory and web servers, plus the
 * multiplexor's `FROM=TO` extension (guide, "Certificate-Based Client Authentication"):
 *   certmap default default
 *   default:DNComps
 *   default:FilterComps e=mail
 *   certmap NAME ISSUER-DN
 *   NAME:FilterComps ou=uid
 * A map applies to certificates whose issuer DN equals its ISSUER-DN; `default` catches the rest.
 */
import { canonicalAttrType, escapeDnValue, normalizeDn, parseDn } from './dn.js';
import { escapeFilterValue } from './searchFormat.js';
import type { ConfigProblem } from './types.js';
import { type Result, err, ok } from './types.js';

export interface AttrMapping {
  /** Attribute of the certificate subject (canonical lower case: `cn`, `ou`, `e`, …). */
  from: string;
  /** LDAP attribute it is searched as. */
  to: string;
}

export interface CertMap {
  name: string;
  /** The issuer DN as written; undefined for the `default` map. */
  issuerDn?: string;
  line: number;
  /**
   * Absent: the subject DN is the user's entry DN. Empty: search from BaseDN. Otherwise the base
   * DN is built from these subject components.
   */
  dnComps?: AttrMapping[];
  /** Subject components the search filter is built from; absent or empty: no filter. */
  filterComps?: AttrMapping[];
  /** `verifycert on`: compare the presented certificate with the entry's userCertificate. */
  verifyCert?: boolean;
  /** `CmapLdapAttr`: attribute holding the subject DN, searched instead of building a DN. */
  cmapLdapAttr?: string;
  /** Other properties (library, InitFn, …) kept but not used: the MMP has no plug-ins (guide). */
  other: Record<string, string>;
}

export interface CertMapConfig {
  maps: CertMap[];
}

const ATTR_RE = /^(?:[A-Za-z][A-Za-z0-9-]*|\d+(?:\.\d+)+)$/;

/** Netscape certmap searches the certificate's `e` (PKCS #9 emailAddress) as `mail`. */
const DEFAULT_FILTER_TARGET: Record<string, string> = { e: 'mail' };

function parseComps(value: string, forFilter: boolean): Result<AttrMapping[], string> {
  const out: AttrMapping[] = [];
  for (const item of value.split(/[\s,]+/).filter((s) => s !== '')) {
    const [from = '', to, extra] = item.split('=');
    if (extra !== undefined || !ATTR_RE.test(from) || (to !== undefined && !ATTR_RE.test(to)))
      return err(`'${item}' is not an attribute or FROM=TO pair`);
    const f = canonicalAttrType(from);
    out.push({ from: f, to: to ?? (forFilter ? (DEFAULT_FILTER_TARGET[f] ?? f) : f) });
  }
  return ok(out);
}

export function parseCertmap(
  text: string,
  fileName: string,
): Result<CertMapConfig, ConfigProblem[]> {
  const problems: ConfigProblem[] = [];
  const maps = new Map<string, CertMap & { issuerKey?: string }>();
  const issuers = new Map<string, string>();
  text.split('\n').forEach((rawLine, k) => {
    const lineNo = k + 1;
    const where = `${fileName}:${lineNo}`;
    const line = rawLine.replace(/\r$/, '').trim();
    if (line === '' || line.startsWith('#')) return;

    // `s`: U+2028/U+2029 are not line ends here, and `.` must match them.
    const head = /^certmap\s+(\S+)\s+(.+)$/is.exec(line);
    if (head) {
      const [, name = '', issuer = ''] = head;
      if (maps.has(name)) {
        problems.push({
          where,
          message: `certmap ${name} is already defined at line ${maps.get(name)?.line}`,
        });
        return;
      }
      const map: CertMap & { issuerKey?: string } = { name, line: lineNo, other: {} };
      if (issuer.trim() !== 'default') {
        const key = normalizeDn(issuer.trim());
        if (!key.ok) {
          problems.push({ where, message: `bad issuer DN '${issuer.trim()}': ${key.error}` });
          return;
        }
        const dup = issuers.get(key.value);
        if (dup !== undefined) {
          problems.push({ where, message: `issuer already mapped by certmap ${dup}` });
          return;
        }
        issuers.set(key.value, name);
        map.issuerDn = issuer.trim();
        map.issuerKey = key.value;
      } else if (issuers.has('default')) {
        problems.push({
          where,
          message: `a default map is already defined (certmap ${issuers.get('default')})`,
        });
        return;
      } else {
        issuers.set('default', name);
      }
      maps.set(name, map);
      return;
    }
    const prop = /^([^:\s]+):(\S+)(?:\s+(.*))?$/s.exec(line);
    if (!prop) {
      problems.push({
        where,
        message: `expected 'certmap NAME ISSUER-DN' or 'NAME:Property value', got '${line}'`,
      });
      return;
    }
    const [, name = '', propName = '', value = ''] = prop;
    const map = maps.get(name);
    if (map === undefined) {
      problems.push({ where, message: `'${name}' has no certmap line before it` });
      return;
    }
    switch (propName.toLowerCase()) {
      case 'dncomps':
      case 'filtercomps': {
        const forFilter = propName.toLowerCase() === 'filtercomps';
        const comps = parseComps(value, forFilter);
        if (!comps.ok) {
          problems.push({ where, message: `${propName}: ${comps.error}` });
          return;
        }
        if (forFilter) map.filterComps = comps.value;
        else map.dnComps = comps.value;
        return;
      }
      case 'verifycert': {
        const v = value.trim().toLowerCase();
        if (v !== 'on' && v !== 'off') {
          problems.push({
            where,
            message: `verifycert: expected on or off, got '${value.trim()}'`,
          });
          return;
        }
        map.verifyCert = v === 'on';
        return;
      }
      case 'cmapldapattr':
        if (!ATTR_RE.test(value.trim())) {
          problems.push({
            where,
            message: `CmapLdapAttr: '${value.trim()}' is not an attribute name`,
          });
          return;
        }
        map.cmapLdapAttr = value.trim();
        return;
      default:
        map.other[propName] = value.trim();
    }
  });
  if (problems.length > 0) return err(problems);
  return ok({
    maps: [...maps.values()].map(({ issuerKey: _k, ...m }) => m),
  });
}

export interface CertMapping {
  /** The name of the map chosen. */
  map: string;
  /** LDAP filter from FilterComps, values escaped per RFC 4515. */
  filter?: string;
  /** Where to search: the built DN, or the subject DN itself; absent: from BaseDN. */
  baseDn?: string;
}

/**
 * Map a client certificate to a directory search, following Netscape certmap semantics. Pure: the
 * caller performs the search (and, with `verifyCert`, compares certificates).
 */
export function mapCertificate(
  cfg: CertMapConfig,
  issuerDn: string,
  subjectDn: string,
): Result<CertMapping, string> {
  const issuerKey = normalizeDn(issuerDn);
  if (!issuerKey.ok) return err(`bad issuer DN '${issuerDn}': ${issuerKey.error}`);
  const map =
    cfg.maps.find((m) => m.issuerDn !== undefined && keyOf(m.issuerDn) === issuerKey.value) ??
    cfg.maps.find((m) => m.issuerDn === undefined);
  if (map === undefined) return err(`no certmap for issuer '${issuerDn}' and no default map`);

  const subject = parseDn(subjectDn);
  if (!subject.ok) return err(`bad subject DN '${subjectDn}': ${subject.error}`);
  // RDNs as written, most specific first (RFC 4514 2.1 order); multi-valued RDNs flattened.
  const avas = subject.value
    .flat()
    .map((a) => ({ type: canonicalAttrType(a.type), value: a.value }));

  const result: CertMapping = { map: map.name };
  if (map.filterComps !== undefined && map.filterComps.length > 0) {
    const parts: string[] = [];
    for (const { from, to } of map.filterComps) {
      const values = avas
        .filter((a) => a.type === from)
        .map((a) => `(${to}=${escapeFilterValue(a.value)})`);
      // One subject attribute with several values (two `ou`): any of them (Netscape certmap).
      if (values.length === 1) parts.push(values[0] ?? '');
      else if (values.length > 1) parts.push(`(|${values.join('')})`);
    }
    if (parts.length === 0)
      return err(
        `certmap ${map.name}: the subject '${subjectDn}' has none of the FilterComps attributes (${map.filterComps.map((c) => c.from).join(', ')})`,
      );
    result.filter = parts.length === 1 ? (parts[0] ?? '') : `(&${parts.join('')})`;
  }
  if (map.dnComps === undefined) {
    result.baseDn = subjectDn.trim();
  } else if (map.dnComps.length > 0) {
    // Components keep the subject's order; FROM=TO renames the attribute.
    const rdns = avas.flatMap((a) => {
      const m = map.dnComps?.find((c) => c.from === a.type);
      return m ? [`${m.to}=${escapeDnValue(a.value)}`] : [];
    });
    // Netscape certmap (ldapu_cert_mapfn_default): a DNComps that names attributes the subject
    // has none of maps the certificate to no entry, rather than to a search of the whole tree.
    if (rdns.length === 0)
      return err(
        `certmap ${map.name}: the subject '${subjectDn}' has none of the DNComps attributes (${map.dnComps.map((c) => c.from).join(', ')})`,
      );
    result.baseDn = rdns.join(',');
  }
  return ok(result);
}

function keyOf(dn: string): string | undefined {
  const k = normalizeDn(dn);
  return k.ok ? k.value : undefined;
}
