// A throw-away certificate authority, a server certificate for every loopback address the
// test bed uses, and client certificates for certificate-login tests (openssl command line).
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';

export interface ClientCertificate {
  /** The user the certificate names. */
  uid: string;
  /** Subject in RFC 4514 order, e.g. `CN=Alice Example,OU=alice,O=mmp.test`. */
  subject: string;
  certFile: string;
  keyFile: string;
}

export interface TestbedTls {
  /** PEM file of the CA that signed every certificate below. */
  caFile: string;
  caPem: string;
  /** Server certificate (CN=localhost; SAN localhost, *.mmp.test, 127.0.0.1 … 127.0.0.10). */
  certFile: string;
  keyFile: string;
  certPem: string;
  keyPem: string;
  /** Issuer DN of every certificate: `CN=mmp test bed CA,O=mmp.test`. */
  issuer: string;
  /** Client certificates for alice and bob: subject `CN=<Name> Example,OU=<uid>,O=mmp.test`. */
  clientCerts: ClientCertificate[];
}

const KEY_ARGS = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

async function openssl(args: string[], cwd: string): Promise<void> {
  const result = await execa('openssl', args, { cwd, reject: false, all: true });
  if (result.exitCode !== 0) {
    throw new Error(`openssl ${args.join(' ')} failed (exit ${result.exitCode}):\n${result.all}`);
  }
}

async function signed(
  dir: string,
  name: string,
  subject: string,
  extensions: string,
): Promise<{ certFile: string; keyFile: string }> {
  const keyFile = join(dir, `${name}.key`);
  const certFile = join(dir, `${name}.pem`);
  const csr = join(dir, `${name}.csr`);
  const ext = join(dir, `${name}.ext`);
  await writeFile(ext, extensions);
  await openssl(['req', ...KEY_ARGS, '-keyout', keyFile, '-out', csr, '-subj', subject], dir);
  await openssl(
    [
      'x509',
      '-req',
      '-in',
      csr,
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-set_serial',
      String(Date.now() * 1000 + Math.floor(Math.random() * 1000)),
      '-days',
      '3650',
      '-out',
      certFile,
      '-extfile',
      ext,
    ],
    dir,
  );
  return { certFile, keyFile };
}

export async function createTls(dir: string, hosts: readonly string[]): Promise<TestbedTls> {
  await openssl(
    [
      'req',
      '-x509',
      ...KEY_ARGS,
      '-keyout',
      'ca.key',
      '-out',
      'ca.pem',
      '-days',
      '3650',
      '-subj',
      '/O=mmp.test/CN=mmp test bed CA',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ],
    dir,
  );
  const sans = ['DNS:localhost', 'DNS:*.mmp.test', ...hosts.map((h) => `IP:${h}`)].join(',');
  const people = [
    ['alice', 'Alice Example'],
    ['bob', 'Bob Example'],
  ] as const;
  const [server, ...clients] = await Promise.all([
    signed(
      dir,
      'server',
      '/O=mmp.test/CN=localhost',
      `basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=${sans}\n`,
    ),
    ...people.map(([uid, cn]) =>
      signed(
        dir,
        `client-${uid}`,
        `/O=mmp.test/OU=${uid}/CN=${cn}/emailAddress=${uid}@mmp.test`,
        `basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\nsubjectAltName=email:${uid}@mmp.test\n`,
      ),
    ),
  ]);
  if (server === undefined) throw new Error('no server certificate');
  const caFile = join(dir, 'ca.pem');
  return {
    caFile,
    caPem: await readFile(caFile, 'utf8'),
    certFile: server.certFile,
    keyFile: server.keyFile,
    certPem: await readFile(server.certFile, 'utf8'),
    keyPem: await readFile(server.keyFile, 'utf8'),
    issuer: 'CN=mmp test bed CA,O=mmp.test',
    clientCerts: people.map(([uid, cn], i) => {
      const files = clients[i];
      if (files === undefined) throw new Error(`no client certificate for ${uid}`);
      return {
        uid,
        subject: `emailAddress=${uid}@mmp.test,CN=${cn},OU=${uid},O=mmp.test`,
        ...files,
      };
    }),
  };
}
