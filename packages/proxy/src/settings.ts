/**
 * What a session needs from the configuration, read from `config.values` in this one place.
 * Names, types and defaults of parameters live in `@mmp/config` only; this maps them to the
 * runtime's units (milliseconds, one directory description).
 *
 * A session receives its settings with its site (`proxyRuntime.ts`), chosen by the local address
 * it was accepted on, so that virtual domains (vdmap entries) can override values for their
 * address without touching anything else.
 */

import {
  type ConfigValues,
  type ListenAddress,
  type Protocol,
  type SearchTemplate,
  parseLdapUrls,
} from '@mmp/config';
import {
  type AuthPenaltySettings,
  type ConnectionLimitSettings,
  clientLimitSettings,
} from './clientLimits.js';
import type { DirectoryHost, DirectorySettings } from './directory.js';
import type { LogFormat } from './log.js';
import { type ProxyProtocolSettings, proxyProtocolSettingsFrom } from './proxyProtocol.js';
import { type BearerMechanism, isBearerMechanism } from './sasl.js';
import { type SecuritySettings, securitySettingsFrom } from './tls/settings.js';
import { type UserNameRules, userNameRulesFrom } from './vdomain/names.js';

/** Immutable: built once from the configuration; a virtual domain's are built from its merged
 * values, never by changing another object. */
export interface ProxySettings {
  readonly protocol: Protocol;
  readonly listen: Readonly<ListenAddress>;
  readonly banner: string;
  /** IMAP: the CAPABILITY list before login. */
  readonly capability: string;
  readonly serverDownAlert: string;
  /** UidSearch, parsed when the configuration was read; `@mmp/config`'s expandSearch fills it in. */
  readonly searchFormat: SearchTemplate;
  /** Virtual-domain user names (`vdomain/names.ts`); undefined: the typed name is used as is. */
  readonly userNames: UserNameRules | undefined;
  readonly directory: DirectorySettings;
  /** Store port when a mailHost value carries none. */
  readonly backsidePort: number;
  /** Pre-login idle time (Timeout). */
  readonly idleTimeoutMs: number;
  /** The whole time a client has to log in, whatever it sends (LoginTimeout). */
  readonly loginTimeoutMs: number;
  /** MaxClientConnections, MaxConnectionsPerAddress, ConnectionLimitPrefix, ConnectionLimitExempt
   * (`clientLimits.ts`); `max` as configured, before the descriptor limit lowers it. */
  readonly connectionLimits: ConnectionLimitSettings;
  /** AuthFailureDelay, AuthFailureDelayMax (`clientLimits.ts`). */
  readonly authPenalty: AuthPenaltySettings;
  /** Time for a store to accept the TCP connection and greet (StoreConnectTimeout). */
  readonly storeConnectTimeoutMs: number;
  /** Time for each later answer of the login replay (StoreReplyTimeout). */
  readonly storeReplyTimeoutMs: number;
  readonly logDir: string;
  readonly logLevel: number;
  /** LogFormat: the guide's text lines, or JSON. */
  readonly logFormat: LogFormat;
  /** POP3: SpoofMessageFile, the path as configured (the runtime holds the message read). */
  readonly spoofMessageFile: string | undefined;
  /** TLS, plaintext refusal, certificate login, pre-authentication (`tls/settings.ts`). */
  readonly security: SecuritySettings;
  /** NumThreads: worker processes sharing the listeners (`workers.ts`); 0: all in this process. */
  readonly numThreads: number;
  /** LdapCacheSize / LdapCacheTTL: the user-to-store answer cache (`lookupCache.ts`); a TTL or a
   * size of 0: no cache. */
  readonly lookupCache: {
    readonly entries: number;
    readonly ttlMs: number;
    /** LdapNegativeCacheTTL: how long "no such user" is remembered; 0: never. */
    readonly negativeTtlMs: number;
  };
  /** MetricsListen (`metrics/listener.ts`): where /metrics, /healthz and the status page are
   * served; a bare port is loopback only. Undefined: off. */
  readonly metricsListen: Readonly<Required<ListenAddress>> | undefined;
  /** MaxConcurrentConnectionAttempts: login attempts in flight to one store (`attemptLimiter.ts`). */
  readonly maxStoreAttempts: number;
  /** ForwardClientAddress: tell the store the client's address before the login (IMAP ID,
   * POP3 XCLIENT). */
  readonly forwardClientAddress: boolean;
  /** OAuth2Mechanisms: the bearer-token mechanisms the stores take, offered and passed through. */
  readonly bearerMechanisms: readonly BearerMechanism[];
  /** ProxyProtocol, ProxyProtocolTrustedNetworks (`proxyProtocol.ts`). */
  readonly proxyProtocol: ProxyProtocolSettings;
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
      timeoutMs: v.LdapTimeout * 1000,
    },
    // SSLBacksidePort: the stores are reached with TLS on that port (tls/storeTls.ts).
    backsidePort: v.SSLBacksidePort ?? v.BacksidePort,
    idleTimeoutMs: v.Timeout * 1000,
    storeConnectTimeoutMs: v.StoreConnectTimeout * 1000,
    storeReplyTimeoutMs: v.StoreReplyTimeout * 1000,
    loginTimeoutMs: v.LoginTimeout * 1000,
    connectionLimits: clientLimitSettings(v).connections,
    authPenalty: clientLimitSettings(v).penalty,
    logDir: v.LogDir,
    logLevel: v.LogLevel,
    logFormat: v.LogFormat === 'json' ? 'json' : 'text',
    spoofMessageFile: v.SpoofMessageFile,
    security: securitySettingsFrom(v),
    numThreads: v.NumThreads,
    lookupCache: {
      entries: v.LdapCacheSize,
      ttlMs: v.LdapCacheTTL * 1000,
      negativeTtlMs: v.LdapNegativeCacheTTL * 1000,
    },
    maxStoreAttempts: v.MaxConcurrentConnectionAttempts,
    metricsListen:
      v.MetricsListen === undefined
        ? undefined
        : { host: v.MetricsListen.host ?? '127.0.0.1', port: v.MetricsListen.port },
    forwardClientAddress: v.ForwardClientAddress,
    bearerMechanisms: (v.OAuth2Mechanisms ?? []).filter(isBearerMechanism),
    proxyProtocol: proxyProtocolSettingsFrom(v),
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
  const hosts = urls.value.map((u): DirectoryHost => ({
    host: u.host,
    secure: u.secure,
    baseDn: u.baseDn,
    ...(u.port === undefined ? {} : { port: u.port }),
  }));
  return { hosts, baseDn: urls.value[0]?.baseDn ?? v.BaseDN };
}
