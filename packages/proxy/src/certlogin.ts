/**
 * Certificate login (guide, "Certificate-Based Client Authentication"; RFC 4422 App. A EXTERNAL),
 * up to the login path:
 *
 *   verified client certificate ─certmap.conf─▶ LDAP search (base, scope, filter) ─▶ a principal
 *
 * which `login.ts` logs in like any other: the entry found names the user, and the store's master
 * user (StoreAdmin) logs in for them. The search is made once, here, before anything is looked up,
 * so that a certificate that maps to nobody is refused at once.
 *
 * The search follows the Netscape certmap.conf format, as its later documentation states it
 * (Sun Java System Web Server 6.1 Administrator's Configuration File Reference, "certmap.conf";
 * Oracle Directory Server Enterprise Edition certmap.conf(4)) and 389-ds's lib/ldaputil/certmap.c
 * (ldapu_cert_mapfn_default) implements it:
 * - DNComps absent ("commented out"): the certificate's subject DN is taken as is; without
 *   FilterComps it is the user's entry DN, read with a base-scope search (the guide's recipe).
 * - DNComps empty: the search starts at the top of the tree, for us BaseDN (the site's directory).
 * - DNComps listing attributes: the base DN is made of the subject's values of those attributes,
 *   in the subject's order (`DNComps ou,o` and `UID=alice,OU=people,O=mmp.test` give
 *   `ou=people,o=mmp.test`); a subject with none of them maps to nobody.
 * - FilterComps absent or empty: the filter is `(objectClass=*)` (here: a base-scope read of the
 *   base DN, which must then be the entry; an empty DNComps with it is refused at start-up).
 * Decision: a base outside the site's BaseDN maps to nobody, so that a certificate cannot reach
 * entries of a tree this address does not serve (another virtual domain's).
 */

import { type CertMapping, type Result, dnWithin, err, mapCertificate, ok } from '@mmp/config';
import type { Log } from './log.js';
import type { CertificateSearch, Principal } from './login.js';
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
  const search = mapping.ok ? certificateSearch(mapping.value, site) : mapping;
  if (!search.ok) {
    log.at('session', 'login', 'certificate not mapped', {
      subject: peer.subject,
      error: search.error,
    });
    return err('The client certificate maps to no user');
  }
  return ok({ kind: 'certificate', peer, search: search.value, authzid });
}

/** Where and how to search for a certificate's entry (see the comment at the top). */
export function certificateSearch(
  mapping: CertMapping,
  site: Pick<Site, 'settings'>,
): Result<CertificateSearch, string> {
  const base = site.settings.directory.baseDn;
  const { filter, baseDn } = mapping;
  if (baseDn !== undefined && !dnWithin(baseDn, base))
    return err(`certmap ${mapping.map}: the search base ${baseDn} is not under BaseDN ${base}`);
  if (filter !== undefined)
    return ok({ filter, where: baseDn === undefined ? undefined : { dn: baseDn, scope: 'sub' } });
  if (baseDn === undefined)
    return err(`certmap ${mapping.map}: neither a DN nor a filter (empty DNComps, no FilterComps)`);
  return ok({ filter: '(objectClass=*)', where: { dn: baseDn, scope: 'base' } });
}
