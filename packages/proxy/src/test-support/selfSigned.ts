/** Throwaway self-signed certificates (from no CA the proxy trusts), for tests of refusals. */

import { execa } from 'execa';

/**
 * Write an EC key to `keyFile` and a self-signed certificate for `subject` (`/CN=…`) to
 * `certFile`, valid 30 days; `altName` adds a subjectAltName (`DNS:…`).
 */
export async function selfSignedCertificate(o: {
  keyFile: string;
  certFile: string;
  subject: string;
  altName?: string;
}): Promise<void> {
  await execa('openssl', [
    ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'],
    ...['-keyout', o.keyFile, '-out', o.certFile, '-days', '30', '-subj', o.subject],
    ...(o.altName === undefined ? [] : ['-addext', `subjectAltName=${o.altName}`]),
  ]);
}
