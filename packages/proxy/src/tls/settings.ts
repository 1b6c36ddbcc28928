/**
 * The security parameters a session needs (TLS to clients and stores, plaintext refusal,
 * certificate login, pre-authentication), read from `config.values` in this one place, as
 * `settings.ts` does for the rest; and the files they name besides the server's certificates
 * (certmap.conf, the stores' CA bundle), read and checked when the runtime is built
 * (`proxyRuntime.ts`): a problem is one line for the operator, and exit 2 at start-up.
 */

import {
  type CertMapConfig,
  type ConfigValues,
  type ListenAddress,
  type Result,
  err,
  ok,
  parseCertmap,
} from '@mmp/config';
import { type ReadFile, fileErrorText } from '../files.js';
import type { ServerTlsSettings } from './serverTls.js';

export interface StoreTlsSettings {
  /** SSLCAFile; undefined: the system CAs. */
  readonly caFile: string | undefined;
  /** SSLBacksideVerify: certificate chain and host name (RFC 6125). */
  readonly verify: boolean;
}

/** Certificate login's parameters (guide, "Certificate-Based Client Authentication"). */
export interface CertLoginSettings {
  /** CertMapFile. */
  readonly mapFile: string;
  /** SSLClientCAFile, else SSLCAFile: undefined refuses the start (never silently off). */
  readonly clientCaFile: string | undefined;
  /** StoreAdmin and StoreAdminPass: the store's master user, who logs in for the user. */
  readonly storeAdmin: string;
  readonly storeAdminPass: string | undefined;
}

export interface SecuritySettings {
  /** SSLEnable. */
  readonly enable: boolean;
  /** SSLListenPort. */
  readonly listen: Readonly<ListenAddress>;
  /** SSLStartTLS (meaningful with SSLEnable). */
  readonly startTls: boolean;
  readonly server: ServerTlsSettings;
  /** RestrictPlainPasswords. */
  readonly restrictPlainPasswords: boolean;
  /** Set when SSLBacksidePort is: stores are reached with implicit TLS. */
  readonly storeTls: StoreTlsSettings | undefined;
  /** Set when certificate login is asked for: SSLEnable and StoreAdmin (the guide's recipe). */
  readonly certLogin: CertLoginSettings | undefined;
  /** SSLRequireClientCert: which handshakes must present a certificate of the client CA. */
  readonly requireClientCert: RequireClientCert;
  /** PreAuth. */
  readonly preAuth: boolean;
  /** PreAuthCacheTTL in milliseconds (0: no cache). */
  readonly preAuthCacheTtlMs: number;
}

/** SSLRequireClientCert: `implicit` on SSLListenPort (and vdmap TLS addresses), `all` also on
 * STARTTLS/STLS (and no login before TLS). A vdmap entry's value holds on its address alone. */
export type RequireClientCert = 'no' | 'implicit' | 'all';

export function securitySettingsFrom(v: ConfigValues): SecuritySettings {
  const clientCaFile = v.SSLClientCAFile ?? v.SSLCAFile;
  // The guide's recipe (SSLEnable, CertMapFile, StoreAdmin, StoreAdminPass) asks for certificate
  // login; StoreAdmin serves nothing else. Without a client CA the runtime refuses to start
  // (loadCertLogin) rather than leave the feature silently off.
  const certLogin = v.SSLEnable && v.StoreAdmin !== undefined && v.StoreAdmin !== '';
  const requireClientCert = requireClientCertOf(v.SSLRequireClientCert);
  return {
    enable: v.SSLEnable,
    listen: v.SSLListenPort,
    startTls: v.SSLStartTLS,
    server: {
      certFiles: v.SSLCertFile === undefined ? [] : [v.SSLCertFile],
      keyFiles: v.SSLKeyFile === undefined ? [] : [v.SSLKeyFile],
      keyPassword: v.SSLKeyPasswd,
      cipherSpecs: v.SSLCipherSpecs,
      nickname: v.SSLCertNickname,
      // A certificate is requested only when it can be used to log in, or is required (here,
      // or in a vdmap entry with its own StoreAdmin or SSLRequireClientCert: SSLClientCAFile
      // named).
      clientCaFile:
        v.SSLEnable && (certLogin || requireClientCert !== 'no' || v.SSLClientCAFile !== undefined)
          ? clientCaFile
          : undefined,
    },
    restrictPlainPasswords: v.RestrictPlainPasswords,
    storeTls:
      v.SSLBacksidePort === undefined
        ? undefined
        : { caFile: v.SSLCAFile, verify: v.SSLBacksideVerify },
    certLogin:
      certLogin && v.StoreAdmin !== undefined
        ? {
            mapFile: v.CertMapFile,
            clientCaFile,
            storeAdmin: v.StoreAdmin,
            storeAdminPass: v.StoreAdminPass,
          }
        : undefined,
    requireClientCert: v.SSLEnable ? requireClientCert : 'no',
    preAuth: v.PreAuth,
    preAuthCacheTtlMs: v.PreAuthCacheTTL * 1000,
  };
}

/** Whether a handshake on implicit TLS (SSLListenPort, a vdmap TLS address) or after
 * STARTTLS/STLS must present a trusted client certificate, by its site's SSLRequireClientCert. */
export function certificateRequired(
  s: SecuritySettings,
  handshake: 'implicit' | 'starttls',
): boolean {
  return (
    s.requireClientCert === 'all' ||
    (s.requireClientCert === 'implicit' && handshake === 'implicit')
  );
}

function requireClientCertOf(value: string): RequireClientCert {
  return value === 'implicit' || value === 'all' ? value : 'no';
}

/** Certificate login, ready: the parsed certmap and the master user's credentials as bytes. */
export interface CertLogin {
  readonly map: CertMapConfig;
  readonly storeAdmin: Buffer;
  readonly storeAdminPass: Buffer;
}

/** TLS to the stores, ready: the CA bundle's text (undefined: the system CAs). */
export interface StoreTls {
  readonly ca: string | undefined;
  readonly verify: boolean;
}

/** Read and check certmap.conf and the master user's password; the first problem, worded for the
 * operator. */
export function loadCertLogin(s: CertLoginSettings, read: ReadFile): Result<CertLogin, string> {
  if (s.clientCaFile === undefined)
    return err(
      'certificate login: StoreAdmin is set with SSLEnable but no client CA is configured: set SSLClientCAFile to the PEM file of the CA that issues client certificates (or unset StoreAdmin)',
    );
  const file = read(s.mapFile);
  if (!file.ok)
    return err(`certificate login: CertMapFile ${s.mapFile}: ${fileErrorText(file.error)}`);
  const parsed = parseCertmap(file.value.toString('utf8'), s.mapFile);
  if (!parsed.ok)
    return err(
      `certificate login: ${parsed.error.map((p) => `${p.where}: ${p.message}`).join('; ')}`,
    );
  // Netscape certmap options this multiplexor does not carry out: refusing them is safer than a
  // weaker check than the operator asked for.
  for (const m of parsed.value.maps) {
    if (m.verifyCert === true)
      return err(
        `certificate login: ${s.mapFile}:${m.line}: certmap ${m.name}: verifycert on is not supported (the entry's userCertificate is not compared); set it off`,
      );
    if (m.cmapLdapAttr !== undefined)
      return err(
        `certificate login: ${s.mapFile}:${m.line}: certmap ${m.name}: CmapLdapAttr is not supported; map with FilterComps`,
      );
    // An empty DNComps searches from BaseDN; without FilterComps that search has no filter, and
    // would take BaseDN's own entry for every certificate.
    if (m.dnComps?.length === 0 && (m.filterComps ?? []).length === 0)
      return err(
        `certificate login: ${s.mapFile}:${m.line}: certmap ${m.name}: an empty DNComps needs FilterComps (else every certificate maps to BaseDN itself)`,
      );
  }
  if (s.storeAdminPass === undefined || s.storeAdminPass === '')
    return err('certificate login: StoreAdmin is set but StoreAdminPass is not');
  return ok({
    map: parsed.value,
    storeAdmin: Buffer.from(s.storeAdmin, 'utf8'),
    storeAdminPass: Buffer.from(s.storeAdminPass, 'utf8'),
  });
}

/** Read the stores' CA bundle (SSLCAFile), when one is named. */
export function loadStoreTls(s: StoreTlsSettings, read: ReadFile): Result<StoreTls, string> {
  if (s.caFile === undefined) return ok({ ca: undefined, verify: s.verify });
  const file = read(s.caFile);
  if (!file.ok) return err(`SSLCAFile ${s.caFile}: ${fileErrorText(file.error)}`);
  const text = file.value.toString('utf8');
  if (!text.includes('-----BEGIN CERTIFICATE-----'))
    return err(`SSLCAFile ${s.caFile} holds no PEM certificate`);
  return ok({ ca: text, verify: s.verify });
}
