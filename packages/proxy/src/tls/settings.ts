/**
 * The security parameters a session needs (TLS to clients and stores, plaintext refusal,
 * certificate login, pre-authentication), read from `config.values` in this one place, as
 * `settings.ts` does for the rest. Files (certmap.conf, CA bundles) are read and checked at
 * start-up by `loadSecurity` (exit 2 on a problem) and cached by path, so that a virtual domain's
 * own CertMapFile is read once too.
 */

import { readFileSync } from 'node:fs';
import {
  type CertMapConfig,
  type ConfigValues,
  type ListenAddress,
  type Result,
  err,
  ok,
  parseCertmap,
} from '@mmp/config';
import type { ServerTlsSettings } from './serverTls.js';

export interface StoreTlsSettings {
  /** SSLCAFile; undefined: the system CAs. */
  caFile?: string | undefined;
  /** SSLBacksideVerify: certificate chain and host name (RFC 6125). */
  verify: boolean;
}

export interface SecuritySettings {
  /** SSLEnable. */
  enable: boolean;
  /** SSLListenPort. */
  listen: ListenAddress;
  /** SSLStartTLS (meaningful with SSLEnable). */
  startTls: boolean;
  server: ServerTlsSettings;
  /** RestrictPlainPasswords. */
  restrictPlainPasswords: boolean;
  /** Set when SSLBacksidePort is: stores are reached with implicit TLS. */
  storeTls?: StoreTlsSettings | undefined;
  /** CertMapFile, when certificate login is configured (SSLEnable, a client CA, StoreAdmin). */
  certMapFile?: string | undefined;
  storeAdmin?: string | undefined;
  storeAdminPass?: string | undefined;
  /** PreAuth. */
  preAuth: boolean;
  /** PreAuthCacheTTL in milliseconds (0: no cache). */
  preAuthCacheTtlMs: number;
}

export function securitySettingsFrom(v: ConfigValues): SecuritySettings {
  const clientCaFile = v.SSLClientCAFile ?? v.SSLCAFile;
  const certLogin =
    v.SSLEnable && clientCaFile !== undefined && v.StoreAdmin !== undefined && v.StoreAdmin !== '';
  const s: SecuritySettings = {
    enable: v.SSLEnable,
    listen: v.SSLListenPort,
    startTls: v.SSLStartTLS,
    server: {
      certFiles: v.SSLCertFile === undefined ? [] : [v.SSLCertFile],
      keyFiles: v.SSLKeyFile === undefined ? [] : [v.SSLKeyFile],
      keyPassword: v.SSLKeyPasswd,
      cipherSpecs: v.SSLCipherSpecs,
      nickname: v.SSLCertNickname,
      // A certificate is requested only when it can be used to log in.
      clientCaFile: certLogin ? clientCaFile : undefined,
    },
    restrictPlainPasswords: v.RestrictPlainPasswords,
    preAuth: v.PreAuth,
    preAuthCacheTtlMs: v.PreAuthCacheTTL * 1000,
  };
  if (v.SSLBacksidePort !== undefined) {
    s.storeTls = { caFile: v.SSLCAFile, verify: v.SSLBacksideVerify };
  }
  if (certLogin) {
    s.certMapFile = v.CertMapFile;
    s.storeAdmin = v.StoreAdmin;
    s.storeAdminPass = v.StoreAdminPass;
  }
  return s;
}

const certmaps = new Map<string, Result<CertMapConfig, string>>();

/** The parsed certmap.conf at `path`, read once. */
export function certMapAt(path: string): Result<CertMapConfig, string> {
  const cached = certmaps.get(path);
  if (cached !== undefined) return cached;
  let result: Result<CertMapConfig, string>;
  try {
    const parsed = parseCertmap(readFileSync(path, 'utf8'), path);
    result = parsed.ok
      ? ok(parsed.value)
      : err(parsed.error.map((p) => `${p.where}: ${p.message}`).join('; '));
  } catch (e) {
    result = err(`CertMapFile ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  certmaps.set(path, result);
  return result;
}

const caFiles = new Map<string, Result<string, string>>();

/** A PEM CA bundle, read once. */
export function caBundleAt(path: string): Result<string, string> {
  const cached = caFiles.get(path);
  if (cached !== undefined) return cached;
  let result: Result<string, string>;
  try {
    const text = readFileSync(path, 'utf8');
    result = text.includes('-----BEGIN CERTIFICATE-----')
      ? ok(text)
      : err(`SSLCAFile ${path} holds no PEM certificate`);
  } catch (e) {
    result = err(`SSLCAFile ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  caFiles.set(path, result);
  return result;
}
