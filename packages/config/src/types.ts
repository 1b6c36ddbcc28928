/**
 * The contract between the configuration package and everything that reads a configuration
 * (the proxies, the installer). Other packages import these types from `@mmp/config`.
 */

export type Protocol = 'imap' | 'pop3';
export const PROTOCOLS: readonly Protocol[] = ['imap', 'pop3'];

/** Errors are values at module boundaries; exceptions are for bugs only. */
export type Result<T, E> = { ok: true; value: T } | { ok: false; error: E };
export const ok = <T>(value: T): { ok: true; value: T } => ({ ok: true, value });
export const err = <E>(error: E): { ok: false; error: E } => ({ ok: false, error });

/** Where a problem was found: a file and line, a command-line flag, an environment variable. */
export interface ConfigProblem {
  /** `ImapMMP.config:12`, `-p`, `env ListenPort`, `vdmap.conf:3`, … */
  where: string;
  message: string;
}

export interface ListenAddress {
  /** Bind address (IPv4 or IPv6 literal, or a host name); absent means every address. */
  host?: string;
  port: number;
}

/** An IP network: an address and a prefix length (`10.0.0.0/8`; a bare address is /32 or /128). */
export interface IpNetwork {
  /** Normalised (normalizeAddress), IPv4 dot-quad or RFC 5952 IPv6. */
  address: string;
  family: 4 | 6;
  prefix: number;
}

export interface HostPort {
  host: string;
  /** Absent means the protocol's default (for stores: BacksidePort). */
  port?: number;
}

/** UidSearch's escapes, by letter (`%s` is `s`; searchFormat.ts says what each stands for). */
export type SearchEscape = 's' | 'U' | 'V' | 'o' | 'C' | 'S' | 'D';

/**
 * A UidSearch format, parsed once when the configuration is read (searchFormat.ts): its text as
 * written (for `-h`, `install` and messages) and the pieces that expansion joins.
 */
export interface SearchTemplate {
  readonly text: string;
  readonly parts: readonly (
    | { readonly kind: 'text'; readonly text: string }
    | { readonly kind: 'escape'; readonly name: SearchEscape }
  )[];
}

/** The value kinds of the parameter table, and the TypeScript type each one parses to. */
export interface ValueKinds {
  string: string;
  /** TCP port 1–65535. */
  port: number;
  /** `[IP:]port`; IPv6 as `[::1]:143`. */
  listen: ListenAddress;
  /** Integer within the parameter's `min`/`max`. */
  integer: number;
  /** yes/no, y/n, true/false, on/off, 1/0 (any case). */
  boolean: boolean;
  /** A file or directory path. */
  path: string;
  /** Comma-separated list, items trimmed, empty items dropped. */
  list: string[];
  /** An LDAP distinguished name (RFC 4514 syntax checked). */
  dn: string;
  /** One or more `ldap[s]://HOST[:PORT]/BASEDN`, separated by spaces. */
  ldapUrl: string;
  /** A UidSearch-style format with `%` escapes, parsed (see searchFormat.ts). */
  searchFormat: SearchTemplate;
  /** One or more `host[:port]` separated by spaces (LDAPHost failover list). */
  hostList: HostPort[];
  /** A string of single characters, each one meaningful (delimiter sets). */
  chars: string;
  /** One of the parameter's `choices` (any case on input; the table's spelling is kept). */
  choice: string;
  /** Comma-separated IP networks in CIDR notation (`10.0.0.0/8, ::1`). */
  networks: IpNetwork[];
}
export type ValueKind = keyof ValueKinds;

/** Where a resolved value came from, shown by `-h`. */
export type ValueSource = 'command line' | 'environment' | 'config file' | 'default';
