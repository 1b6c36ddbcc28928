/**
 * Certificate login (guide, "Certificate-Based Client Authentication"; RFC 4422 App. A EXTERNAL),
 * up to the login path:
 *
 *   verified client certificate ─certmap.conf─▶ LDAP filter ─▶ a certificate principal
 *
 * which `login.ts` logs in like any other: the entry found with that filter names the user, and
 * the store's master user (StoreAdmin) logs in for them. The entry is searched under BaseDN with
 * the FilterComps filter (Decision: a map's DNComps does not narrow the search; the entry found
 * must be unique). The filter is made once, here, before anything is looked up, so that a
 * certificate that maps to nobody is refused at once.
 */

import { type Result, err, mapCertificate, ok } from '@mmp/config';
import type { Log } from './log.js';
import type { Principal } from './login.js';
import type { Site } from './proxyRuntime.js';
import type { SessionSecurity } from './tls/security.js';

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

/**
 * The principal of this connection's certificate, asking to act as `authzid`; or the reason to
 * give the client.
 */
export function certificatePrincipal(
  site: Site,
  security: SessionSecurity,
  authzid: Buffer,
  log: Log,
): Result<Principal, string> {
  const peer = security.tls?.peer;
  if (!security.external || peer === undefined || site.certLogin === undefined)
    return err(externalRefusal(security));
  const mapping = mapCertificate(site.certLogin.map, peer.issuer, peer.subject);
  const filter = !mapping.ok
    ? mapping
    : mapping.value.filter === undefined
      ? err(`certmap ${mapping.value.map} has no FilterComps: no search filter`)
      : ok(mapping.value.filter);
  if (!filter.ok) {
    log.at('session', 'login', 'certificate not mapped', {
      subject: peer.subject,
      error: filter.error,
    });
    return err('The client certificate maps to no user');
  }
  return ok({ kind: 'certificate', peer, filter: filter.value, authzid });
}
