/**
 * Certificate login (guide, "Certificate-Based Client Authentication"; RFC 4422 App. A EXTERNAL):
 *
 *   verified client certificate ─certmap.conf─▶ LDAP filter ─directory─▶ entry (mailHost, uid)
 *     ─▶ each store in turn: SASL PLAIN with authzid = the user, authcid = StoreAdmin,
 *        password = StoreAdminPass (RFC 4616 §2; a Dovecot master user)
 *
 * The client never sends a password; the store trusts StoreAdmin to say who the user is. The
 * authorization identity the client may send in EXTERNAL must be that user (we authorize nobody
 * to act as someone else). The entry is searched under BaseDN with the FilterComps filter
 * (Decision: a map's DNComps does not narrow the search; the entry found must be unique).
 */

import { mapCertificate, parseDn } from '@mmp/config';
import type { Log } from './log.js';
import type { LoginContext, LoginOutcome } from './login.js';
import { STORE_REPLY_TIMEOUT_MS } from './limits.js';
import {
  type ReplayResult,
  StoreConversation,
  connectStore,
  formatAddress,
  storeAddress,
} from './store.js';
import type { ClientCertificateInfo } from './tls/clientTls.js';
import type { SessionSecurity } from './tls/security.js';
import { connectStoreTls } from './tls/storeTls.js';
import { type Protocol, type Result, err, ok } from '@mmp/config';

/** Why EXTERNAL cannot be used on this connection, for the client (RFC 5530 text). */
export function externalRefusal(security: SessionSecurity): string {
  const tls = security.tls;
  if (tls === undefined) return 'EXTERNAL needs a TLS connection with a client certificate';
  if (tls.peer === undefined) return 'No client certificate was presented';
  if (!tls.peer.verified) {
    return `The client certificate is not trusted (${tls.peer.error ?? 'not verified'})`;
  }
  return 'Certificate login is not enabled here';
}

export interface CertUser {
  /** The name the store knows the user by (UidAttr, else the entry DN's uid). */
  name: Buffer;
  dn: string;
}

/** The directory filter a certificate maps to, or why it maps to nothing. */
export function certificateFilter(
  ctx: LoginContext,
  peer: ClientCertificateInfo,
): Result<string, string> {
  const certLogin = ctx.site.certLogin;
  if (certLogin === undefined) return err('certificate login is not configured');
  const mapping = mapCertificate(certLogin.map, peer.issuer, peer.subject);
  if (!mapping.ok) return err(mapping.error);
  if (mapping.value.filter === undefined) {
    return err(`certmap ${mapping.value.map} has no FilterComps: no search filter`);
  }
  return ok(mapping.value.filter);
}

function uidOfDn(dn: string): string | undefined {
  const rdns = parseDn(dn);
  if (!rdns.ok) return undefined;
  return rdns.value[0]?.find((a) => a.type.toLowerCase() === 'uid')?.value;
}

export async function certLoginUpstream(
  ctx: LoginContext,
  peer: ClientCertificateInfo,
  authzid: Buffer,
  protocol: Protocol,
): Promise<LoginOutcome> {
  const { site, log } = ctx;
  const { settings, certLogin } = site;
  if (!peer.verified || certLogin === undefined) {
    return { kind: 'unknown-user', reason: 'certificate not verified or login not configured' };
  }
  const filter = certificateFilter(ctx, peer);
  if (!filter.ok) return { kind: 'unknown-user', reason: filter.error };
  log.at('dialogue', 'certificate login', 'client certificate mapped', {
    subject: peer.subject,
    issuer: peer.issuer,
    filter: filter.value,
  });
  const entry = await site.directory.lookup(filter.value, log);
  if (!entry.ok) {
    const e = entry.error;
    if (e.kind === 'unavailable') return { kind: 'directory-down', detail: e.detail };
    return { kind: 'unknown-user', reason: e.kind };
  }
  const uid = uidOfDn(entry.value.dn);
  const name = entry.value.replayName ?? (uid === undefined ? undefined : Buffer.from(uid));
  if (name === undefined) {
    return { kind: 'unknown-user', reason: 'the entry has neither UidAttr nor a uid RDN' };
  }
  if (authzid.length > 0 && !authzid.equals(name)) {
    return { kind: 'unknown-user', reason: 'authorization identity is not the certificate user' };
  }
  const admin = certLogin.storeAdmin;
  const adminPass = certLogin.storeAdminPass;
  const failures: string[] = [];
  for (const target of entry.value.mailHosts) {
    const address = storeAddress(target, settings.backsidePort);
    const where = formatAddress(address);
    log.at('dialogue', 'store connect', 'connecting to store', { store: where });
    const conn = await (site.storeTls === undefined
      ? connectStore(address, settings.storeConnectTimeoutMs)
      : connectStoreTls(address, settings.storeConnectTimeoutMs, site.storeTls));
    if (!conn.ok) {
      failures.push(`${where} ${conn.error.detail}`);
      log.at('refusal', 'store connect', 'store unreachable', {
        store: where,
        error: conn.error.detail,
      });
      continue;
    }
    const conversation = new StoreConversation(conn.value);
    const replay = protocol === 'imap' ? imapProxyAuth : pop3ProxyAuth;
    const result = await replay(conversation, name, admin, adminPass, {
      greetingTimeoutMs: settings.storeConnectTimeoutMs,
      log,
    });
    switch (result.kind) {
      case 'accepted': {
        const { socket, leftover } = conversation.release();
        return { kind: 'logged-in', store: address, socket, leftover, answer: result.answer };
      }
      case 'refused':
        conversation.close();
        return { kind: 'refused', store: address, answer: result.answer };
      case 'failed':
        conversation.close();
        failures.push(`${where} ${result.failure.detail}`);
        continue;
    }
  }
  return { kind: 'stores-down', detail: failures.join('; ') };
}

interface ProxyAuthOptions {
  greetingTimeoutMs: number;
  log: Log;
}

/** RFC 4616 §2: authzid NUL authcid NUL password, base64 for the wire. */
function plainMessage(authzid: Buffer, authcid: Buffer, password: Buffer): string {
  return Buffer.concat([authzid, Buffer.from([0]), authcid, Buffer.from([0]), password]).toString(
    'base64',
  );
}

const TAG = 'mmp1';

const startsWith = (line: Buffer, word: string): boolean =>
  line.length >= word.length &&
  line.toString('latin1', 0, word.length).toUpperCase() === word &&
  (line.length === word.length || line[word.length] === 0x20);

/**
 * IMAP (RFC 3501 §6.2.2): `mmp1 AUTHENTICATE PLAIN`, `+`, the message; untagged lines before the
 * answer are skipped. The store's tagged answer goes to the client with the client's tag.
 */
async function imapProxyAuth(
  conv: StoreConversation,
  user: Buffer,
  admin: Buffer,
  password: Buffer,
  opts: ProxyAuthOptions,
): Promise<ReplayResult> {
  const greeting = await conv.readLine(opts.greetingTimeoutMs);
  if (!greeting.ok) return { kind: 'failed', failure: greeting.error };
  if (!startsWith(greeting.value, '* OK')) {
    return { kind: 'failed', failure: { kind: 'broken', detail: 'store greeting is not * OK' } };
  }
  opts.log.at('dialogue', 'store login', 'authorizing as the user with StoreAdmin');
  conv.write(`${TAG} AUTHENTICATE PLAIN\r\n`);
  for (;;) {
    const line = await conv.readLine(STORE_REPLY_TIMEOUT_MS);
    if (!line.ok) return { kind: 'failed', failure: line.error };
    if (line.value[0] === 0x2a) continue;
    if (line.value[0] === 0x2b) break;
    return judgeImap(line.value);
  }
  conv.write(`${plainMessage(user, admin, password)}\r\n`);
  for (;;) {
    const line = await conv.readLine(STORE_REPLY_TIMEOUT_MS);
    if (!line.ok) return { kind: 'failed', failure: line.error };
    if (line.value[0] === 0x2a) continue;
    return judgeImap(line.value);
  }
}

function judgeImap(line: Buffer): ReplayResult {
  if (line.toString('latin1', 0, TAG.length + 1) !== `${TAG} `) {
    return { kind: 'failed', failure: { kind: 'broken', detail: 'unexpected line from store' } };
  }
  const answer = line.subarray(TAG.length + 1);
  if (startsWith(answer, 'OK')) return { kind: 'accepted', answer };
  if (startsWith(answer, 'NO')) return { kind: 'refused', answer };
  return { kind: 'failed', failure: { kind: 'broken', detail: 'store answered BAD' } };
}

/** POP3 (RFC 5034 §4): `AUTH PLAIN`, `+ `, the message, then `+OK` or `-ERR`. */
async function pop3ProxyAuth(
  conv: StoreConversation,
  user: Buffer,
  admin: Buffer,
  password: Buffer,
  opts: ProxyAuthOptions,
): Promise<ReplayResult> {
  const greeting = await conv.readLine(opts.greetingTimeoutMs);
  if (!greeting.ok) return { kind: 'failed', failure: greeting.error };
  if (!startsWith(greeting.value, '+OK')) {
    return { kind: 'failed', failure: { kind: 'broken', detail: 'store greeting is not +OK' } };
  }
  opts.log.at('dialogue', 'store login', 'authorizing as the user with StoreAdmin');
  conv.write('AUTH PLAIN\r\n');
  const challenge = await conv.readLine(STORE_REPLY_TIMEOUT_MS);
  if (!challenge.ok) return { kind: 'failed', failure: challenge.error };
  if (challenge.value[0] !== 0x2b || startsWith(challenge.value, '+OK')) {
    return { kind: 'failed', failure: { kind: 'broken', detail: 'store refused AUTH PLAIN' } };
  }
  conv.write(`${plainMessage(user, admin, password)}\r\n`);
  const line = await conv.readLine(STORE_REPLY_TIMEOUT_MS);
  if (!line.ok) return { kind: 'failed', failure: line.error };
  if (startsWith(line.value, '+OK')) return { kind: 'accepted', answer: line.value };
  if (startsWith(line.value, '-ERR')) return { kind: 'refused', answer: line.value };
  return { kind: 'failed', failure: { kind: 'broken', detail: 'unexpected line from store' } };
}
