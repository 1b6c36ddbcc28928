/**
 * UidSearch expansion. The 4.x list of escapes was lost; we use the later releases' SearchFormat
 * escapes (NOTES.md). Every substituted value is escaped as an LDAP filter value (RFC 4515 3), so
 * a user name can never change the structure of the filter: `*)(uid=*` stays one literal value.
 */
import { type Result, err, ok } from './types.js';

export interface SearchContext {
  /** %U: the user part. */
  user: string;
  /** %V: the domain part (typed after a VirtualDomainDelim, or the vdmap's VDomain). */
  domain?: string;
  /** %s: user + CanonicalVirtualDomainDelim + domain, or the user alone. */
  canonical: string;
  /** %o: the login name exactly as the client typed it. */
  original: string;
  /** %C: the client's IP address. */
  clientIp?: string;
  /** %S: the local (listening) IP address the client reached. */
  serverIp?: string;
  /** %D: the client certificate's subject DN. */
  subjectDn?: string;
}

const ESCAPES: Record<string, (ctx: SearchContext) => string | undefined> = {
  s: (c) => c.canonical,
  U: (c) => c.user,
  V: (c) => c.domain,
  o: (c) => c.original,
  C: (c) => c.clientIp,
  S: (c) => c.serverIp,
  D: (c) => c.subjectDn,
};

export const SEARCH_ESCAPES = ['%s', '%U', '%V', '%o', '%C', '%S', '%D', '%%'] as const;

/**
 * Check a format once, at configuration time: only known escapes, and parentheses that balance
 * and enclose the whole filter (RFC 4515 3: a filter is parenthesised). Returns the format.
 */
export function validateSearchFormat(format: string): Result<string, string> {
  if (format === '') return err('the search format is empty');
  let depth = 0;
  let firstClose = -1;
  for (let i = 0; i < format.length; i++) {
    const c = format[i];
    if (c === '%') {
      const e = format[i + 1];
      if (e === undefined) return err('the search format ends with a lone %');
      if (e !== '%' && !(e in ESCAPES))
        return err(`unknown escape %${e} at offset ${i} (known: ${SEARCH_ESCAPES.join(' ')})`);
      i++;
    } else if (c === '(') {
      depth++;
    } else if (c === ')') {
      depth--;
      if (depth < 0) return err(`unbalanced ')' at offset ${i}`);
      if (depth === 0 && firstClose < 0) firstClose = i;
    }
  }
  if (depth !== 0) return err('unbalanced parentheses: missing )');
  if (!format.startsWith('('))
    return err('the search format must be a parenthesised LDAP filter such as (uid=%s)');
  if (firstClose !== format.length - 1)
    return err(`text after the filter's closing ')' at offset ${firstClose}`);
  return ok(format);
}

/** Expand a format; absent context values (no domain, no certificate) expand to nothing. */
export function expandSearchFormat(format: string, ctx: SearchContext): Result<string, string> {
  const valid = validateSearchFormat(format);
  if (!valid.ok) return valid;
  let out = '';
  for (let i = 0; i < format.length; i++) {
    const c = format[i] ?? '';
    if (c !== '%') {
      out += c;
      continue;
    }
    const e = format[i + 1] ?? '';
    i++;
    if (e === '%') {
      out += '%';
      continue;
    }
    const get = ESCAPES[e];
    // Unreachable after validation; kept as a Result so a bug cannot throw in a session.
    if (get === undefined) return err(`unknown escape %${e}`);
    out += escapeFilterValue(get(ctx) ?? '');
  }
  return ok(out);
}

const hex = (b: number): string => '\\' + b.toString(16).padStart(2, '0');

/**
 * RFC 4515 3: in a filter value, `*` `(` `)` `\` and NUL must be written as `\XX`, as must any
 * octet that is not part of valid UTF-8. A string is encoded as UTF-8 first (a lone surrogate
 * becomes U+FFFD); a Buffer is taken byte for byte.
 */
export function escapeFilterValue(value: string | Buffer): string {
  const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
  let out = '';
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i] ?? 0;
    if (b < 0x80) {
      out +=
        b === 0x2a || b === 0x28 || b === 0x29 || b === 0x5c || b === 0
          ? hex(b)
          : String.fromCharCode(b);
      i++;
      continue;
    }
    const len = utf8SequenceLength(bytes, i);
    if (len === 0) {
      out += hex(b);
      i++;
    } else {
      out += bytes.subarray(i, i + len).toString('utf8');
      i += len;
    }
  }
  return out;
}

/** Length of the valid UTF-8 sequence starting at i (RFC 3629 4), or 0 when invalid. */
function utf8SequenceLength(bytes: Uint8Array, i: number): number {
  const b0 = bytes[i] ?? 0;
  let len: number;
  let lo = 0x80;
  let hi = 0xbf;
  if (b0 >= 0xc2 && b0 <= 0xdf) len = 2;
  else if (b0 >= 0xe0 && b0 <= 0xef) {
    len = 3;
    if (b0 === 0xe0) lo = 0xa0;
    if (b0 === 0xed) hi = 0x9f; // no UTF-16 surrogates
  } else if (b0 >= 0xf0 && b0 <= 0xf4) {
    len = 4;
    if (b0 === 0xf0) lo = 0x90;
    if (b0 === 0xf4) hi = 0x8f;
  } else return 0;
  for (let k = 1; k < len; k++) {
    const b = bytes[i + k];
    if (b === undefined) return 0;
    if (k === 1 ? b < lo || b > hi : b < 0x80 || b > 0xbf) return 0;
  }
  return len;
}

/**
 * Split a typed login name into user and domain the way the guide describes VirtualDomainDelim:
 * any delimiter character, searching from the end. Without one, the vdmap's VDomain (or
 * DefaultDomain) applies. `canonical` joins them with CanonicalVirtualDomainDelim.
 */
export function searchContextFor(opts: {
  typed: string;
  virtualDomainDelim: string;
  canonicalDelim: string;
  vdomain?: string | undefined;
  clientIp?: string | undefined;
  serverIp?: string | undefined;
  subjectDn?: string | undefined;
}): SearchContext {
  const { typed } = opts;
  let cut = -1;
  for (let k = typed.length - 1; k >= 0; k--) {
    if (opts.virtualDomainDelim.includes(typed[k] ?? '')) {
      cut = k;
      break;
    }
  }
  const user = cut >= 0 ? typed.slice(0, cut) : typed;
  const typedDomain = cut >= 0 ? typed.slice(cut + 1) : undefined;
  const domain =
    typedDomain !== undefined && typedDomain !== '' ? typedDomain : opts.vdomain || undefined;
  const ctx: SearchContext = {
    user,
    canonical: domain !== undefined ? `${user}${opts.canonicalDelim}${domain}` : user,
    original: typed,
  };
  if (domain !== undefined) ctx.domain = domain;
  if (opts.clientIp !== undefined) ctx.clientIp = opts.clientIp;
  if (opts.serverIp !== undefined) ctx.serverIp = opts.serverIp;
  if (opts.subjectDn !== undefined) ctx.subjectDn = opts.subjectDn;
  return ctx;
}
