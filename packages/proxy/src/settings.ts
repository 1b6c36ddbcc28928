/**
 * What a session needs from the configuration, read from `config.values` in this one place.
 * Names, types and defaults of parameters live in `@mmp/config` only; this maps them to the
 * runtime's units (milliseconds, one directory description).
 *
 * A session receives its settings from the server per connection, so that virtual domains
 * (vdmap entries chosen by the local address) can override values for the sessions accepted on
 * their address without touching anything else.
 */

import {
  type ConfigValues,
  type ListenAddress,
  type Protocol,
  type SearchTemplate,
  parseLdapUrls,
} from '@mmp/config';
import type { DirectoryHost, DirectorySettings } from './directory.js';
import type { LogFormat } from './log.js';
import type { SpoofMessage } from './pop3/spoof.js';
import { type SecuritySettings, securitySettingsFrom } from './tls/settings.js';
import { type UserNameRules, userNameRulesFrom } from './vdomain/names.js';

export interface ProxySettings {
  protocol: Protocol;
  listen: ListenAddress;
  banner: string;
  /** IMAP: the CAPABILITY list before login. */
  capability: string;
  serverDownAlert: string;
  /** UidSearch, parsed when the configuration was read; `@mmp/config`'s expandSearch fills it in. */
  searchFormat: SearchTemplate;
  /** Virtual-domain user names (`vdomain/names.ts`); undefined: the typed name is used as is. */
  userNames?: UserNameRules | undefined;
  directory: DirectorySettings;
  /** Store port when a mailHost value carries none. */
  backsidePort: number;
  /** Pre-login idle time (Timeout). */
  idleTimeoutMs: number;
  /** Time for a store to accept the TCP connection and greet (StoreConnectTimeout). */
  storeConnectTimeoutMs: number;
  logDir: string;
  logLevel: number;
  /** LogFormat; unset: text (unit tests). */
  logFormat?: LogFormat | undefined;
  /** POP3: SpoofMessageFile, the path as configured. */
  spoofMessageFile?: string | undefined;
  /** POP3: that file's message, read and validated once at start-up (`main.ts`). */
  spoofMessage?: SpoofMessage | undefined;
  /** TLS, plaintext refusal, certificate login, pre-authentication (`tls/settings.ts`);
   * undefined: none of them (unit tests). */
  security?: SecuritySettings | undefined;
  /** NumThreads: worker processes sharing the listeners (`workers.ts`); 0 or unset: all in this
   * process. */
  numThreads?: number | undefined;
  /** LdapCacheSize / LdapCacheTTL: the user-to-store answer cache (`lookupCache.ts`); unset, a TTL
   * of 0 or a size of 0: no cache. */
  lookupCache?: { entries: number; ttlMs: number } | undefined;
  /** MaxConcurrentConnectionAttempts: login attempts in flight to one store (`attemptLimiter.ts`);
   * unset: no cap (unit tests). */
  maxStoreAttempts?: number | undefined;
  /** ForwardClientAddress: tell the store the client's address before the login (IMAP ID,
   * POP3 XCLIENT); unset: no (unit tests). */
  forwardClientAddress?: boolean | undefined;
}

export function settingsFrom(config: { protocol: Protocol; values: ConfigValues }): ProxySettings {
  const v = config.values;
  return {
    protocol: config.protocol,
    listen: v.ListenPort,
    banner: v.Banner,
    capability: v.Capability ?? '',
    serverDownAlert: v.ServerDownAlert,
    searchFormat: v.UidSearch,
    userNames: userNameRulesFrom(v),
    directory: {
      ...ldapTargets(v),
      bindDn: v.BindDN,
      bindPassword: v.BindPass,
      mailHostAttrs: v.MailHostAttrs,
      uidAttr: v.UidAttr,
    },
    // SSLBacksidePort: the stores are reached with TLS on that port (tls/storeTls.ts).
    backsidePort: v.SSLBacksidePort ?? v.BacksidePort,
    idleTimeoutMs: v.Timeout * 1000,
    storeConnectTimeoutMs: v.StoreConnectTimeout * 1000,
    logDir: v.LogDir,
    logLevel: v.LogLevel,
    logFormat: v.LogFormat === 'json' ? 'json' : 'text',
    spoofMessageFile: v.SpoofMessageFile,
    security: securitySettingsFrom(v),
    numThreads: v.NumThreads,
    lookupCache: { entries: v.LdapCacheSize, ttlMs: v.LdapCacheTTL * 1000 },
    maxStoreAttempts: v.MaxConcurrentConnectionAttempts,
    forwardClientAddress: v.ForwardClientAddress,
  };
}

/**
 * LdapUrl (later releases; a vdmap entry's own directory, Table 13.1) replaces LDAPHost and
 * BaseDN: each URL is one server, tried in order (failover), with its own base DN and scheme.
 */
function ldapTargets(v: ConfigValues): { hosts: DirectoryHost[]; baseDn: string } {
  const urls = v.LdapUrl === undefined || v.LdapUrl === '' ? undefined : parseLdapUrls(v.LdapUrl);
  // The value was validated when the configuration was read; a failure here cannot happen.
  if (urls === undefined || !urls.ok) return { hosts: [...v.LDAPHost], baseDn: v.BaseDN };
  const hosts = urls.value.map((u) => {
    const h: DirectoryHost = { host: u.host, secure: u.secure, baseDn: u.baseDn };
    if (u.port !== undefined) h.port = u.port;
    return h;
  });
  return { hosts, baseDn: urls.value[0]?.baseDn ?? v.BaseDN };
}
