// A throw-away certificate authority, a server certificate for every loopback address the
// test bed uses, and client certificates for certificate-login tests (openssl command line).
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
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
  /** Server certificate (CN=localhost; SAN localhost, *.mmp.test, 127.0.0.1 … 127.0.0.12). */
  certFile: string;
  keyFile: string;
  certPem: string;
  keyPem: string;
  /** Issuer DN of every certificate: `CN=mmp test bed CA,O=mmp.test`. */
  issuer: string;
  /** Client certificates for alice and bob: subject `CN=<Name> Example,OU=<uid>,O=mmp.test`. */
  clientCerts: ClientCertificate[];
  /**
   * Client certificates for alice and bob whose subject is their directory entry's DN,
   * `UID=<uid>,OU=people,O=mmp.test`: what the guide's certmap recipe without FilterComps maps.
   */
  entryDnCerts: ClientCertificate[];
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

/** Every loopback address the test bed may use (LDAP, stores, dead and hanging hosts). */
export const TLS_ADDRESSES = Array.from({ length: 12 }, (_, i) => `127.0.0.${i + 1}`);

const PEOPLE = [
  ['alice', 'Alice Example'],
  ['bob', 'Bob Example'],
] as const;

interface Material {
  files: Map<string, string>;
}

async function generate(): Promise<Material> {
  const dir = await mkdtemp(join(tmpdir(), 'mmp-testbed-tls-'));
  try {
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
    const sans = ['DNS:localhost', 'DNS:*.mmp.test', ...TLS_ADDRESSES.map((h) => `IP:${h}`)];
    await Promise.all([
      signed(
        dir,
        'server',
        '/O=mmp.test/CN=localhost',
        `basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=${sans.join(',')}\n`,
      ),
      ...PEOPLE.map(([uid, cn]) =>
        signed(
          dir,
          `client-${uid}`,
          `/O=mmp.test/OU=${uid}/CN=${cn}/emailAddress=${uid}@mmp.test`,
          `basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\nsubjectAltName=email:${uid}@mmp.test\n`,
        ),
      ),
      ...PEOPLE.map(([uid]) =>
        signed(
          dir,
          `entry-${uid}`,
          `/O=mmp.test/OU=people/UID=${uid}`,
          `basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n`,
        ),
      ),
    ]);
    const names = ['ca.pem', 'server.pem', 'server.key'];
    for (const [uid] of PEOPLE)
      names.push(`client-${uid}.pem`, `client-${uid}.key`, `entry-${uid}.pem`, `entry-${uid}.key`);
    const files = new Map<string, string>();
    for (const name of names) files.set(name, await readFile(join(dir, name), 'utf8'));
    return { files };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

let material: Promise<Material> | undefined;

/**
 * Write the CA, the server certificate and the client certificates into `dir`. They are made
 * with openssl once per process (about a quarter of a second) and reused by later test beds.
 */
export async function createTls(dir: string): Promise<TestbedTls> {
  material ??= generate();
  let made: Material;
  try {
    made = await material;
  } catch (error) {
    material = undefined;
    throw error;
  }
  for (const [name, text] of made.files) {
    await writeFile(join(dir, name), text, { mode: name.endsWith('.key') ? 0o600 : 0o644 });
  }
  const text = (name: string): string => made.files.get(name) ?? '';
  return {
    caFile: join(dir, 'ca.pem'),
    caPem: text('ca.pem'),
    certFile: join(dir, 'server.pem'),
    keyFile: join(dir, 'server.key'),
    certPem: text('server.pem'),
    keyPem: text('server.key'),
    issuer: 'CN=mmp test bed CA,O=mmp.test',
    clientCerts: PEOPLE.map(([uid, cn]) => ({
      uid,
      subject: `emailAddress=${uid}@mmp.test,CN=${cn},OU=${uid},O=mmp.test`,
      certFile: join(dir, `client-${uid}.pem`),
      keyFile: join(dir, `client-${uid}.key`),
    })),
    entryDnCerts: PEOPLE.map(([uid]) => ({
      uid,
      subject: `UID=${uid},OU=people,O=mmp.test`,
      certFile: join(dir, `entry-${uid}.pem`),
      keyFile: join(dir, `entry-${uid}.key`),
    })),
  };
}
