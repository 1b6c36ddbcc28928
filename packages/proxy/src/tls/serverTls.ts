/**
 * The client-side TLS of the multiplexor, built once at start-up from the SSL parameters and
 * checked there, so that a bad certificate, key, password or cipher list stops the start with one
 * clear line (exit 2) instead of failing every handshake later.
 *
 * Several certificates (per-domain certificates chosen by SNI, RFC 6066 §3): SSLCertFile and
 * SSLKeyFile take comma-separated lists, paired in order. Each certificate serves the names of its
 * subjectAltName DNS entries (and its CN when it has none, RFC 6125 §6.4.4); a client asking for
 * another name, or none, gets the default: the certificate SSLCertNickname names (one of its DNS
 * names or CN, or its file name), else the first. SSLKeyPasswd decrypts every encrypted key.
 *
 * The guide's SSLCertFile was an NSS database (cert7.db, key3.db): such a file is recognised and
 * the error says how to export PEM files from it.
 */

import { X509Certificate, createPrivateKey } from 'node:crypto';
import { basename } from 'node:path';
import {
  type SecureContext,
  type SecureContextOptions,
  type TlsOptions,
  createSecureContext,
} from 'node:tls';
import { type Result, err, ok } from '@mmp/config';
import { type ReadFile, fileErrorText } from '../files.js';
import { cipherList } from './ciphers.js';

export interface ServerTlsSettings {
  readonly certFiles: readonly string[];
  readonly keyFiles: readonly string[];
  readonly keyPassword: string | undefined;
  readonly cipherSpecs: string | undefined;
  readonly nickname: string | undefined;
  /** CA bundle verifying client certificates; undefined: no certificate is requested. */
  readonly clientCaFile: string | undefined;
}

export interface ServerCertificate {
  file: string;
  /** Names served (lower case; `*.example.com` wildcards allowed). */
  names: string[];
  context: SecureContext;
  /** What `context` was made of (tls.createServer builds its default context from these). */
  contextOptions: SecureContextOptions;
}

export interface ServerTls {
  certificates: ServerCertificate[];
  /** The certificate used without SNI or for an unknown name. */
  defaultCertificate: ServerCertificate;
  /** Whether client certificates are requested (certificate login configured, or required). */
  requestCert: boolean;
  /** Options for `tls.createServer` (SSLListenPort and vdmap TLS addresses) and for
   * `new TLSSocket(…, { isServer: true })` (STARTTLS / STLS); a certificate is asked for, never
   * required: `requiringCertificate` makes the options of a listener that requires one. */
  options: TlsOptions;
}

/**
 * SSLRequireClientCert: OpenSSL refuses a handshake without a certificate (TLS 1.3
 * certificate_required alert); tls.Server closes one whose certificate is not the client CA's
 * (`listener.ts` says which in its record), and STARTTLS checks it after the handshake
 * (`clientTls.ts`, upgradeToTls). Which listeners require one is the site's choice
 * (`tls/settings.ts`), so the same certificates serve both.
 */
export function requiringCertificate(options: TlsOptions): TlsOptions {
  return { ...options, requestCert: true, rejectUnauthorized: true };
}

/** NSS database file names of Netscape/iPlanet servers (cert7/8/9, key3/4). */
const NSS_DB = /^(cert[789]|key[34]|secmod)\.db$/i;

function nssHint(param: string, file: string): string {
  return (
    `${param} ${file} is an NSS database, not a PEM file. Export the certificate and key: ` +
    `pk12util -d <dir> -n <SSLCertNickname> -o server.p12, then ` +
    `openssl pkcs12 -in server.p12 -clcerts -nokeys -out server.pem and ` +
    `openssl pkcs12 -in server.p12 -nocerts -out server.key, and point SSLCertFile and ` +
    `SSLKeyFile at them`
  );
}

function readPem(param: string, file: string, read: ReadFile): Result<string, string> {
  if (NSS_DB.test(basename(file))) return err(nssHint(param, file));
  const r = read(file);
  if (!r.ok) return err(`${param} ${file}: ${fileErrorText(r.error)}`);
  const bytes = r.value;
  // Berkeley DB (cert7/key3) and SQLite (cert9/key4) files, whatever their name.
  if (bytes.subarray(0, 16).toString('latin1') === 'SQLite format 3\0')
    return err(nssHint(param, file));
  const text = bytes.toString('utf8');
  if (!text.includes('-----BEGIN ')) {
    return err(
      bytes.includes(0)
        ? nssHint(param, file)
        : `${param} ${file} holds no PEM block (-----BEGIN …-----)`,
    );
  }
  return ok(text);
}

/** The DNS names a certificate serves: SAN dNSName entries, else its CN (RFC 6125 §6.4.4). */
export function certificateNames(cert: X509Certificate): string[] {
  const san = cert.subjectAltName ?? '';
  const dns = san
    .split(/,\s*/)
    .filter((e) => e.startsWith('DNS:'))
    .map((e) => e.slice(4).toLowerCase());
  if (dns.length > 0) return dns;
  const cn = /(?:^|\n)CN=([^\n]*)/.exec(cert.subject)?.[1];
  return cn === undefined ? [] : [cn.toLowerCase()];
}

/** RFC 6125 §6.4.3: a wildcard stands for exactly one left-most label. */
export function nameMatches(pattern: string, name: string): boolean {
  const n = name.toLowerCase();
  if (!pattern.startsWith('*.')) return pattern === n;
  const dot = n.indexOf('.');
  return dot > 0 && n.slice(dot + 1) === pattern.slice(2);
}

function loadPair(
  certFile: string,
  keyFile: string,
  settings: ServerTlsSettings,
  ciphers: string | undefined,
  ca: string | undefined,
  read: ReadFile,
): Result<ServerCertificate, string> {
  const certPem = readPem('SSLCertFile', certFile, read);
  if (!certPem.ok) return certPem;
  const keyPem = readPem('SSLKeyFile', keyFile, read);
  if (!keyPem.ok) return keyPem;
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(certPem.value);
  } catch (e) {
    return err(`SSLCertFile ${certFile}: not a readable certificate (${(e as Error).message})`);
  }
  const password = settings.keyPassword ?? '';
  const encrypted = /ENCRYPTED/.test(keyPem.value);
  if (encrypted && password === '') {
    return err(`SSLKeyFile ${keyFile} is encrypted and SSLKeyPasswd is not set`);
  }
  let key;
  try {
    key = createPrivateKey({ key: keyPem.value, format: 'pem', passphrase: password });
  } catch (e) {
    return err(
      encrypted
        ? `SSLKeyPasswd does not decrypt SSLKeyFile ${keyFile} (wrong password)`
        : `SSLKeyFile ${keyFile}: not a readable private key (${(e as Error).message})`,
    );
  }
  if (!leaf.checkPrivateKey(key)) {
    return err(`SSLKeyFile ${keyFile} is not the key of the certificate in ${certFile}`);
  }
  const now = Date.now();
  if (Date.parse(leaf.validTo) < now) {
    return err(`SSLCertFile ${certFile}: the certificate expired on ${leaf.validTo}`);
  }
  const contextOptions: SecureContextOptions = {
    cert: certPem.value,
    key: keyPem.value,
    passphrase: password,
    minVersion: 'TLSv1.2',
    ...(ciphers === undefined ? {} : { ciphers }),
    ...(ca === undefined ? {} : { ca }),
  };
  let context: SecureContext;
  try {
    context = createSecureContext(contextOptions);
  } catch (e) {
    return err(`SSLCertFile ${certFile}: ${(e as Error).message}`);
  }
  return ok({ file: certFile, names: certificateNames(leaf), context, contextOptions });
}

const splitList = (files: readonly string[]): string[] =>
  files
    .flatMap((f) => f.split(','))
    .map((f) => f.trim())
    .filter((f) => f !== '');

/** Read and check the certificates, keys and client CA, and build the TLS contexts, once. */
export function loadServerTls(
  settings: ServerTlsSettings,
  read: ReadFile,
): Result<ServerTls, string> {
  const ciphers = cipherList(settings.cipherSpecs);
  if (!ciphers.ok) return ciphers;
  const certFiles = splitList(settings.certFiles);
  const keyFiles = splitList(settings.keyFiles);
  if (certFiles.length === 0) return err('SSLCertFile is not set');
  if (certFiles.length !== keyFiles.length) {
    return err(
      `SSLCertFile lists ${certFiles.length} file(s) and SSLKeyFile ${keyFiles.length}: ` +
        'they are paired in order',
    );
  }
  let ca: string | undefined;
  if (settings.clientCaFile !== undefined) {
    const pem = readPem('SSLClientCAFile', settings.clientCaFile, read);
    if (!pem.ok) return pem;
    ca = pem.value;
  }
  const certificates: ServerCertificate[] = [];
  for (const [i, certFile] of certFiles.entries()) {
    const pair = loadPair(certFile, keyFiles[i] ?? '', settings, ciphers.value, ca, read);
    if (!pair.ok) return pair;
    certificates.push(pair.value);
  }
  let defaultCertificate = certificates[0] as ServerCertificate;
  const nick = settings.nickname?.trim().toLowerCase();
  if (nick !== undefined && nick !== '') {
    const named = certificates.find(
      (c) => c.names.includes(nick) || basename(c.file).toLowerCase() === nick,
    );
    // With a single certificate the nickname is only a label (a 4.x configuration names its NSS
    // nickname, which means nothing for PEM files); with several it must choose one.
    if (named === undefined && certificates.length > 1) {
      return err(
        `SSLCertNickname ${settings.nickname} names none of the certificates ` +
          `(${certificates.map((c) => `${c.file}: ${c.names.join(' ')}`).join('; ')})`,
      );
    }
    if (named !== undefined) defaultCertificate = named;
  }
  const pick = (servername: string): ServerCertificate =>
    certificates.find((c) => c.names.includes(servername.toLowerCase())) ??
    certificates.find((c) => c.names.some((n) => nameMatches(n, servername))) ??
    defaultCertificate;
  const requestCert = ca !== undefined;
  const options: TlsOptions = {
    ...defaultCertificate.contextOptions,
    secureContext: defaultCertificate.context,
    SNICallback: (servername, cb) => cb(null, pick(servername).context),
    minVersion: 'TLSv1.2',
    // Certificate login (guide, "Certificate-Based Client Authentication") is one way among
    // others: ask for a certificate, never require one; the session judges `authorized`.
    requestCert,
    rejectUnauthorized: false,
  };
  return ok({ certificates, defaultCertificate, requestCert, options });
}
