/**
 * User names under virtual domains (admin guide, "Virtual Domains", Table 13.1 and Table 13.3):
 * the characters of VirtualDomainDelim split what the client typed into a user and a domain,
 * searching from the end; an unqualified name gets the address's VDomain (or the later releases'
 * DefaultDomain); the name the directory and the store see is
 * `user<CanonicalVirtualDomainDelim>domain` (`alice+virt.example`).
 *
 * Decisions (see the README):
 * - Name mapping is on when VirtualDomainFile or DefaultDomain is set, for every connection
 *   (mapped address or not); otherwise the typed name is used exactly as before.
 * - Where VDomain is set, it is the only domain a qualified name may carry (compared without
 *   regard to case, RFC 4343): `alice@other.example` on that address is refused exactly like an
 *   unknown user, so that one domain's address cannot be used to probe or reach another's users.
 *   Without VDomain any typed domain is passed on and the directory decides.
 * - Domains are lower-cased (DNS names are case-insensitive); the user part is kept as typed.
 * - An empty user or domain part (`@x`, `alice@`) can name nobody: refused like an unknown user.
 */

import type { ConfigValues, Result, SearchContext } from '@mmp/config';
import { err, ok } from '@mmp/config';

export interface UserNameRules {
  /** VirtualDomainDelim: each character separates user and domain; the last one found wins. */
  delimiters: string;
  /** CanonicalVirtualDomainDelim: joins user and domain towards the directory and the store. */
  canonicalDelim: string;
  /** VDomain: appended to unqualified names, and the only domain a qualified name may carry. */
  vdomain?: string | undefined;
  /** DefaultDomain: appended to unqualified names when no VDomain applies. */
  defaultDomain?: string | undefined;
}

/** A typed name, split and joined: the UidSearch escapes %U %V %s %o (`@mmp/config`). */
export type MappedName = Pick<SearchContext, 'user' | 'domain' | 'canonical' | 'original'>;

const nonEmpty = (s: string | undefined): string | undefined =>
  s === undefined || s === '' ? undefined : s;

/** The rules for a (possibly virtual-domain-merged) configuration; undefined when mapping is off. */
export function userNameRulesFrom(v: ConfigValues): UserNameRules | undefined {
  const vdomain = nonEmpty(v.VDomain);
  const defaultDomain = nonEmpty(v.DefaultDomain);
  if (nonEmpty(v.VirtualDomainFile) === undefined && defaultDomain === undefined) return undefined;
  return {
    delimiters: v.VirtualDomainDelim,
    canonicalDelim: v.CanonicalVirtualDomainDelim,
    vdomain,
    defaultDomain,
  };
}

/**
 * Split and join a typed name. An error is a reason for the log: the client is answered as for
 * an unknown user.
 */
export function mapUserName(typed: string, rules: UserNameRules): Result<MappedName, string> {
  // Code points, not UTF-16 units: a delimiter list may hold any character (values.ts `chars`).
  const chars = Array.from(typed);
  const delimiters = new Set(Array.from(rules.delimiters));
  let cut = -1;
  for (let k = chars.length - 1; k >= 0; k--) {
    if (delimiters.has(chars[k] ?? '')) {
      cut = k;
      break;
    }
  }
  const user = cut >= 0 ? chars.slice(0, cut).join('') : typed;
  const typedDomain = cut >= 0 ? chars.slice(cut + 1).join('') : undefined;
  if (user === '') return err('the user part is empty');
  if (typedDomain === '') return err('the domain part is empty');

  let domain: string | undefined;
  const vdomain = nonEmpty(rules.vdomain);
  if (vdomain !== undefined) {
    if (typedDomain !== undefined && typedDomain.toLowerCase() !== vdomain.toLowerCase())
      return err(`domain '${typedDomain}' is not served on this address (VDomain ${vdomain})`);
    domain = vdomain.toLowerCase();
  } else {
    domain = typedDomain?.toLowerCase() ?? nonEmpty(rules.defaultDomain)?.toLowerCase();
  }
  const mapped: MappedName = {
    user,
    canonical: domain === undefined ? user : `${user}${rules.canonicalDelim}${domain}`,
    original: typed,
  };
  if (domain !== undefined) mapped.domain = domain;
  return ok(mapped);
}
