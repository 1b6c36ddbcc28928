/**
 * A small distinguished-name parser (RFC 4514), lenient where RFC 1779/2253 writers were:
 * spaces around separators, `;` as RDN separator, quoted values. Used to validate DN parameters
 * and to read certificate subjects and issuers for certmap.
 */
import { type Result, err, ok } from './types.js';

export interface Ava {
  /** Attribute type as written (descr or numeric OID); compare with `type.toLowerCase()`. */
  type: string;
  /** The value, unescaped. A `#hex` BER value (RFC 4514 2.4) is kept as written. */
  value: string;
}
/** One RDN: usually one AVA; several when joined by `+` (multi-valued RDN). */
export type Rdn = Ava[];

const TYPE_RE = /^(?:[A-Za-z][A-Za-z0-9-]*|\d+(?:\.\d+)+)$/;
const HEX2 = /^[0-9A-Fa-f]{2}$/;

/** Parse a DN. The empty string is the root DN (zero RDNs). */
export function parseDn(input: string): Result<Rdn[], string> {
  const rdns: Rdn[] = [];
  if (input.trim() === '') return ok(rdns);
  let i = 0;
  const n = input.length;
  const skipSpaces = (): void => {
    while (i < n && input[i] === ' ') i++;
  };
  let rdn: Ava[] = [];
  for (;;) {
    skipSpaces();
    const typeStart = i;
    while (i < n && input[i] !== '=' && input[i] !== ',' && input[i] !== '+' && input[i] !== ';')
      i++;
    if (input[i] !== '=') return err(`expected attribute=value at offset ${typeStart}`);
    const type = input.slice(typeStart, i).trim();
    if (!TYPE_RE.test(type)) return err(`bad attribute type '${type}'`);
    i++; // '='
    skipSpaces();
    const value = readValue();
    if (!value.ok) return value;
    rdn.push({ type, value: value.value });
    skipSpaces();
    if (i >= n) break;
    const sep = input[i];
    i++;
    if (sep === '+') continue;
    if (sep === ',' || sep === ';') {
      rdns.push(rdn);
      rdn = [];
      continue;
    }
    return err(`unexpected '${sep ?? ''}' at offset ${i - 1}`);
  }
  rdns.push(rdn);
  return ok(rdns);

  function readValue(): Result<string, string> {
    if (input[i] === '#') {
      const start = i;
      i++;
      while (i < n && /[0-9A-Fa-f]/.test(input[i] ?? '')) i++;
      if ((i - start - 1) % 2 !== 0 || i - start === 1) return err('bad #hex value');
      return ok(input.slice(start, i));
    }
    if (input[i] === '"') {
      // RFC 1779 quoted value: specials are literal inside, `\` still escapes.
      i++;
      let out = '';
      while (i < n && input[i] !== '"') {
        if (input[i] === '\\') {
          i++;
          if (i >= n) return err('unterminated escape');
        }
        out += input[i];
        i++;
      }
      if (i >= n) return err('unterminated quoted value');
      i++;
      return ok(out);
    }
    // RFC 4514 2.4: `\` followed by a special or by two hex digits (a UTF-8 byte).
    const bytes: number[] = [];
    let trailingSpaces = 0;
    const pushText = (s: string): void => {
      for (const b of Buffer.from(s, 'utf8')) bytes.push(b);
    };
    while (i < n) {
      const c = input[i] ?? '';
      if (c === ',' || c === '+' || c === ';') break;
      if (c === '\\') {
        const pair = input.slice(i + 1, i + 3);
        if (HEX2.test(pair)) {
          bytes.push(parseInt(pair, 16));
          i += 3;
        } else if (i + 1 < n) {
          pushText(input[i + 1] ?? '');
          i += 2;
        } else {
          return err('unterminated escape');
        }
        trailingSpaces = 0;
        continue;
      }
      if (c === '"' || c === '<' || c === '>') return err(`unescaped '${c}' in value`);
      trailingSpaces = c === ' ' ? trailingSpaces + 1 : 0;
      pushText(c);
      i++;
    }
    // Unescaped trailing spaces separate, they are not part of the value.
    const kept = bytes.slice(0, bytes.length - trailingSpaces);
    const text = Buffer.from(kept).toString('utf8');
    if (Buffer.from(text, 'utf8').length !== kept.length) return err('value is not valid UTF-8');
    return ok(text);
  }
}

/** Escape an attribute value for a DN string (RFC 4514 2.4). */
export function escapeDnValue(value: string): string {
  let out = '';
  for (let k = 0; k < value.length; k++) {
    const c = value[k] ?? '';
    if ('"+,;<>\\'.includes(c)) out += '\\' + c;
    else if (c === '\0') out += '\\00';
    else if ((k === 0 && (c === ' ' || c === '#')) || (k === value.length - 1 && c === ' '))
      out += '\\' + c;
    else out += c;
  }
  return out;
}

export function formatDn(rdns: readonly Rdn[]): string {
  return rdns
    .map((rdn) =>
      rdn
        .map(
          (a) =>
            `${a.type}=${a.value.startsWith('#') && /^#([0-9A-Fa-f]{2})+$/.test(a.value) ? a.value : escapeDnValue(a.value)}`,
        )
        .join('+'),
    )
    .join(',');
}

/**
 * Canonical form for comparing DNs: attribute types lower-cased (and common aliases unified),
 * values compared case-insensitively with inner white space collapsed (caseIgnoreMatch,
 * RFC 4517 4.2.11), AVAs of a multi-valued RDN sorted.
 */
export function normalizeDn(input: string): Result<string, string> {
  const parsed = parseDn(input);
  if (!parsed.ok) return parsed;
  return ok(
    parsed.value
      .map((rdn) =>
        rdn
          .map(
            (a) =>
              `${canonicalAttrType(a.type)}=${escapeDnValue(a.value.trim().replace(/\s+/g, ' ').toLowerCase())}`,
          )
          .sort()
          .join('+'),
      )
      .join(','),
  );
}

/** Certificate subject attribute spellings that name the same thing (RFC 4519, PKCS #9). */
const TYPE_ALIASES: Record<string, string> = {
  '2.5.4.3': 'cn',
  commonname: 'cn',
  '2.5.4.10': 'o',
  organizationname: 'o',
  '2.5.4.11': 'ou',
  organizationalunitname: 'ou',
  '2.5.4.6': 'c',
  countryname: 'c',
  '2.5.4.7': 'l',
  localityname: 'l',
  '2.5.4.8': 'st',
  stateorprovincename: 'st',
  '0.9.2342.19200300.100.1.1': 'uid',
  userid: 'uid',
  '0.9.2342.19200300.100.1.25': 'dc',
  domaincomponent: 'dc',
  // Netscape certmap calls the PKCS #9 emailAddress attribute `e`.
  '1.2.840.113549.1.9.1': 'e',
  emailaddress: 'e',
  email: 'e',
};

export function canonicalAttrType(type: string): string {
  const t = type.toLowerCase();
  return TYPE_ALIASES[t] ?? t;
}

/**
 * Whether `dn` is `base` or an entry below it (RDN by RDN, compared as normalizeDn compares):
 * a search base built from a client certificate must stay in the directory tree the site serves.
 */
export function dnWithin(dn: string, base: string): boolean {
  const d = parseDn(dn);
  const b = parseDn(base);
  if (!d.ok || !b.ok || b.value.length > d.value.length) return false;
  const key = (rdn: Rdn): string | undefined => {
    const n = normalizeDn(formatDn([rdn]));
    return n.ok ? n.value : undefined;
  };
  const tail = d.value.slice(d.value.length - b.value.length);
  return tail.every((rdn, i) => {
    const k = key(rdn);
    return k !== undefined && k === key(b.value[i] as Rdn);
  });
}
