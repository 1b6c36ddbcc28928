/**
 * What a session needs from the configuration, read from `config.values` in this one place.
 * Names, types and defaults of parameters live in `@mmp/config` only; this maps them to the
 * runtime's units (milliseconds, one directory description).
 *
 * A session receives its settings from the server per connection, so that virtual domains
 * (vdmap entries chosen by the local address) can override values for the sessions accepted on
 * their address without touching anything else.
 */

import type { ConfigValues, ListenAddress, Protocol } from '@mmp/config';
import type { DirectorySettings } from './directory.js';
import type { SpoofMessage } from './pop3/spoof.js';

export interface ProxySettings {
  protocol: Protocol;
  listen: ListenAddress;
  banner: string;
  /** IMAP: the CAPABILITY list before login. */
  capability: string;
  serverDownAlert: string;
  /** UidSearch, with `%` escapes (expanded by `@mmp/config`'s expandSearchFormat). */
  searchFormat: string;
  directory: DirectorySettings;
  /** Store port when a mailHost value carries none. */
  backsidePort: number;
  /** Pre-login idle time (Timeout). */
  idleTimeoutMs: number;
  /** Time for a store to accept the TCP connection and greet (StoreConnectTimeout). */
  storeConnectTimeoutMs: number;
  logDir: string;
  logLevel: number;
  /** POP3: SpoofMessageFile, the path as configured. */
  spoofMessageFile?: string | undefined;
  /** POP3: that file's message, read and validated once at start-up (`main.ts`). */
  spoofMessage?: SpoofMessage | undefined;
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
    directory: {
      hosts: v.LDAPHost,
      baseDn: v.BaseDN,
      bindDn: v.BindDN,
      bindPassword: v.BindPass,
      mailHostAttrs: v.MailHostAttrs,
      uidAttr: v.UidAttr,
    },
    backsidePort: v.BacksidePort,
    idleTimeoutMs: v.Timeout * 1000,
    storeConnectTimeoutMs: v.StoreConnectTimeout * 1000,
    logDir: v.LogDir,
    logLevel: v.LogLevel,
    spoofMessageFile: v.SpoofMessageFile,
  };
}
