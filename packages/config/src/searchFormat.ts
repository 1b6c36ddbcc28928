/**
 * UidSearch: parsed into a template when the configuration is read, expanded per login. The 4.x
 * list of escapes was lost; we use the later releases' SearchFormat escapes (NOTES.md). Every
 * substituted value is escaped as an LDAP filter value (RFC 4515 3), so a user name can never
 * change the structure of the filter: `*)(uid=*` stays one literal value.
 */
import { type Result, type SearchEscape, type SearchTemplate, err, ok } from './types.js';

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

const ESCAPES: Readonly<Record<SearchEscape, (c: SearchContext) => string | undefined>> = {
  s: (c) => c.canonical,
  U: (c) => c.user,
  V: (c) => c.domain,
  o: (c) => c.original,
  C: (c) => c.clientIp,
  S: (c) => c.serverIp,
  D: (c) => c.subjectDn,
};

const isEscape = (e: string): e is SearchEscape => Object.hasOwn(ESCAPES, e);

const SEARCH_ESCAPES = ['%s', '%U', '%V', '%o', '%C', '%S', '%D', '%%'] as const;

/**
 * Parse a format: only known escapes, and parentheses that balance and enclose the whole filter
 * (RFC 4515 3: a filter is parenthesised).
 */
export function parseSearchFormat(format: string): Result<SearchTemplate, string> {
  if (format === '') return err('the search format is empty');
  const parts: SearchTemplate['parts'][number][] = [];
  let text = '';
  let depth = 0;
  let firstClose = -1;
  for (let i = 0; i < format.length; i++) {
    const c = format[i] ?? '';
    if (c === '%') {
      const e = format[i + 1];
      if (e === undefined) return err('the search format ends with a lone %');
      i++;
      if (e === '%') {
        text += '%';
        continue;
      }
      if (!isEscape(e))
        return err(`unknown escape %${e} at offset ${i - 1} (known: ${SEARCH_ESCAPES.join(' ')})`);
      if (text !== '') parts.push({ kind: 'text', text });
      text = '';
      parts.push({ kind: 'escape', name: e });
      continue;
    }
    text += c;
    if (c === '(') {
      depth++;
    } else if (c === ')') {
      depth--;
      if (depth < 0) return err(`unbalanced ')' at offset ${i}`);
      if (depth === 0 && firstClose < 0) firstClose = i;
    }
  }
  if (text !== '') parts.push({ kind: 'text', text });
  if (depth !== 0) return err('unbalanced parentheses: missing )');
  if (!format.startsWith('('))
    return err('the search format must be a parenthesised LDAP filter such as (uid=%s)');
  if (firstClose !== format.length - 1)
    return err(`text after the filter's closing ')' at offset ${firstClose}`);
  return ok({ text: format, parts });
}

/** The filter for one login; absent context values (no domain, no certificate) become nothing. */
export function expandSearch(template: SearchTemplate, ctx: SearchContext): string {
  let out = '';
  for (const part of template.parts) {
    out += part.kind === 'text' ? part.text : escapeFilterValue(ESCAPES[part.name](ctx) ?? '');
  }
  return out;
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
