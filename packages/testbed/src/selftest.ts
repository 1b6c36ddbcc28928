// Checks of a running test bed with the real command-line clients (curl, ldapsearch), shared
// by the vitest self-test and `mmp-testbed selftest`.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { execa } from 'execa';
import { startTestbed, type Testbed, type TestbedOptions } from './testbed.js';
import type { Store } from './dovecot.js';
import type { TestUser } from './users.js';
import { canConnect, readGreeting } from './wire.js';
import { markerSubject } from './messages.js';
import { imapLoginCommand, LineClient } from './raw.js';

export interface Check {
  name: string;
  run(): Promise<void>;
}

function assert(condition: boolean, message: string): asserts condition {
  if (!condition) throw new Error(message);
}

export interface CurlResult {
  exitCode: number;
  stdout: Buffer;
  stderr: string;
}

/** Run curl; stdout as bytes. */
export async function curl(args: readonly string[]): Promise<CurlResult> {
  const result = await execa('curl', ['-s', '-S', '--max-time', '30', ...args], {
    reject: false,
    encoding: 'buffer',
    stripFinalNewline: false,
    stdin: 'ignore',
  });
  return {
    exitCode: result.exitCode ?? -1,
    stdout: Buffer.from(result.stdout),
    stderr: Buffer.from(result.stderr).toString('utf8'),
  };
}

async function curlOk(args: readonly string[]): Promise<Buffer> {
  const result = await curl(args);
  if (result.exitCode !== 0) {
    throw new Error(`curl ${args.join(' ')} failed (exit ${result.exitCode}): ${result.stderr}`);
  }
  return result.stdout;
}

const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');

const imapUrl = (store: Store, path = 'INBOX'): string =>
  `imap://${store.host}:${store.imapPort}/${path}`;
const pop3Url = (store: Store, path = ''): string =>
  `pop3://${store.host}:${store.pop3Port}/${path}`;

/** IMAP: the Subject header of message 1, through curl. */
export async function imapSubject(
  store: Store,
  login: readonly string[],
  number = 1,
): Promise<string> {
  // curl prints a FETCH literal only for a URL fetch, not for a custom -X command
  const out = await curlOk([
    ...login,
    imapUrl(store, `INBOX;MAILINDEX=${number};SECTION=HEADER.FIELDS%20(SUBJECT)`),
  ]);
  const match = /^Subject: (.*?)\r?$/m.exec(out.toString('utf8'));
  assert(match?.[1] !== undefined, `no Subject in IMAP answer: ${out.toString('utf8')}`);
  return match[1];
}

/** POP3: the Subject header of a message, through curl (RETR). */
export async function pop3Subject(
  store: Store,
  login: readonly string[],
  number = 1,
): Promise<string> {
  const out = await curlOk([...login, pop3Url(store, String(number))]);
  const match = /^Subject: (.*?)\r?$/m.exec(out.toString('utf8'));
  assert(match?.[1] !== undefined, `no Subject in POP3 answer: ${out.toString('utf8')}`);
  return match[1];
}

/** IMAP LOGIN over a raw socket (curl 7.88 always prefers AUTHENTICATE); Subject of message 1. */
export async function imapLoginSubject(
  store: Store,
  user: string,
  password: string,
): Promise<string> {
  const client = await LineClient.connect(store.host, store.imapPort);
  try {
    await client.readLine();
    const login = await client.imap('a1', imapLoginCommand(user, password));
    const status = login.at(-1) ?? '';
    assert(status.startsWith('a1 OK'), `LOGIN ${user}: ${status}`);
    await client.imap('a2', 'EXAMINE INBOX');
    const fetched = await client.imap('a3', 'FETCH 1 BODY.PEEK[HEADER.FIELDS (SUBJECT)]');
    const subject = fetched.map((l) => /^Subject: (.*)$/.exec(l)?.[1]).find((v) => v !== undefined);
    assert(subject !== undefined, `no Subject: ${fetched.join(' | ')}`);
    await client.imap('a4', 'LOGOUT');
    return subject;
  } finally {
    client.close();
  }
}

/** POP3 USER/PASS over a raw socket (curl prefers AUTH); Subject of message 1 (TOP 1 0). */
export async function pop3UserPassSubject(
  store: Store,
  user: string,
  password: string,
): Promise<string> {
  const client = await LineClient.connect(store.host, store.pop3Port);
  try {
    await client.readLine();
    const userStatus = await client.pop3(`USER ${user}`);
    assert(userStatus.startsWith('+OK'), `USER ${user}: ${userStatus}`);
    const passStatus = await client.pop3(`PASS ${password}`);
    assert(passStatus.startsWith('+OK'), `PASS for ${user}: ${passStatus}`);
    const top = await client.pop3('TOP 1 0');
    assert(top.startsWith('+OK'), `TOP: ${top}`);
    let subject: string | undefined;
    for (let line = await client.readLine(); line !== '.'; line = await client.readLine()) {
      subject ??= /^Subject: (.*)$/.exec(line)?.[1];
    }
    await client.pop3('QUIT');
    assert(subject !== undefined, 'no Subject in TOP');
    return subject;
  } finally {
    client.close();
  }
}

async function ldapsearch(testbed: Testbed, args: readonly string[]): Promise<string> {
  const result = await execa(
    'ldapsearch',
    [
      '-x',
      '-LLL',
      '-o',
      'ldif-wrap=no',
      '-H',
      testbed.ldap.url,
      '-b',
      testbed.ldap.baseDn,
      ...args,
    ],
    { reject: false, stdin: 'ignore' },
  );
  if (result.exitCode !== 0) {
    throw new Error(
      `ldapsearch ${args.join(' ')} failed (exit ${result.exitCode}): ${result.stderr}`,
    );
  }
  return result.stdout;
}

const userLogin = (user: TestUser): string[] => ['--user', `${user.uid}:${user.password}`];

/** The checks, in a sensible order; none of them stops or starts a server. */
export function checks(testbed: Testbed): Check[] {
  const list: Check[] = [];
  const add = (name: string, run: () => Promise<void>): void => {
    list.push({ name, run });
  };

  for (const store of testbed.stores) {
    const user = testbed.userOn(store.name);
    const marker = markerSubject(store.name, user.uid);

    add(`store ${store.name}: IMAP and POP3 greetings name the store`, async () => {
      const imap = await readGreeting(store.host, store.imapPort);
      assert(imap.startsWith('* OK '), `IMAP greeting: ${imap}`);
      assert(imap.endsWith(`mmp-test store ${store.name} ready`), `IMAP greeting: ${imap}`);
      const pop3 = await readGreeting(store.host, store.pop3Port);
      // `+OK [XCLIENT] mmp-test store A ready.` when the client is in login_trusted_networks
      assert(
        /^\+OK (\[XCLIENT\] )?mmp-test store [A-Z] ready/.test(pop3),
        `POP3 greeting: ${pop3}`,
      );
      assert(pop3.includes(store.greeting), `POP3 greeting: ${pop3}`);
      const verbose = await curl(['-v', ...userLogin(user), imapUrl(store), '-X', 'NOOP']);
      assert(
        verbose.stderr.includes(store.greeting),
        `curl -v shows no greeting: ${verbose.stderr}`,
      );
    });

    add(`store ${store.name}: curl imap:// logs ${user.uid} in and finds the marker`, async () => {
      const subject = await imapSubject(store, userLogin(user));
      assert(subject === marker, `IMAP subject ${JSON.stringify(subject)} != ${marker}`);
      // the IMAP LOGIN command too (curl uses AUTHENTICATE PLAIN)
      const viaLogin = await imapLoginSubject(store, user.uid, user.password);
      assert(viaLogin === marker, `IMAP LOGIN subject ${viaLogin}`);
    });

    add(
      `store ${store.name}: curl pop3:// lists and retrieves ${user.uid}'s messages`,
      async () => {
        const list = (await curlOk([...userLogin(user), pop3Url(store)])).toString('utf8');
        const expected = testbed
          .messagesFor(user, store.name)
          .map((m) => `${m.number} ${m.size}\r\n`)
          .join('');
        assert(
          list === expected,
          `POP3 LIST ${JSON.stringify(list)} != ${JSON.stringify(expected)}`,
        );
        const subject = await pop3Subject(store, userLogin(user));
        assert(subject === marker, `POP3 subject ${subject}`);
        const second = await curlOk([...userLogin(user), pop3Url(store, '2')]);
        const seeded = testbed.messagesFor(user, store.name)[1];
        assert(
          seeded !== undefined && second.equals(seeded.bytes),
          'POP3 RETR 2 differs from the seeded bytes',
        );
      },
    );

    add(`store ${store.name}: the 1 MiB message arrives intact over IMAP and POP3`, async () => {
      const big = testbed.bigMessage;
      const imap = await curlOk([...userLogin(user), imapUrl(store, `INBOX;UID=${big.number}`)]);
      assert(imap.length === big.size, `IMAP size ${imap.length}`);
      assert(sha256(imap) === big.sha256, 'IMAP sha256 differs');
      const pop3 = await curlOk([...userLogin(user), pop3Url(store, String(big.number))]);
      assert(pop3.length === big.size, `POP3 size ${pop3.length}`);
      assert(sha256(pop3) === big.sha256, 'POP3 sha256 differs');
    });

    add(
      `store ${store.name}: the master user logs in as ${user.uid} (SASL PLAIN authzid)`,
      async () => {
        const { name, password, separator } = testbed.masterUser;
        const master = ['--user', `${name}:${password}`, '--sasl-authzid', user.uid];
        const imap = await imapSubject(store, [...master, '--login-options', 'AUTH=PLAIN']);
        assert(imap === marker, `IMAP as master: ${imap}`);
        const pop3 = await pop3Subject(store, [...master, '--login-options', 'AUTH=PLAIN']);
        assert(pop3 === marker, `POP3 as master: ${pop3}`);
        const login = await imapLoginSubject(store, `${user.uid}${separator}${name}`, password);
        assert(login === marker, `IMAP LOGIN user*master: ${login}`);
        const pop3Login = await pop3UserPassSubject(
          store,
          `${user.uid}${separator}${name}`,
          password,
        );
        assert(pop3Login === marker, `POP3 USER user*master: ${pop3Login}`);
      },
    );

    // "At once" is Dovecot's own setting, read back from the running configuration: a
    // stopwatch around two curl runs measured the machine's load, not the store.
    add(`store ${store.name}: a wrong password is refused at once`, async () => {
      const result = await curl(['--user', `${user.uid}:wrong`, imapUrl(store), '-X', 'NOOP']);
      assert(result.exitCode === 67, `curl exit ${result.exitCode} (67 = login denied)`);
      const pop3 = await curl(['--user', `${user.uid}:wrong`, pop3Url(store)]);
      assert(pop3.exitCode === 67, `curl POP3 exit ${pop3.exitCode}`);
      const delay = await execa('doveconf', ['-c', store.configFile, '-h', 'auth_failure_delay']);
      assert(delay.stdout.trim() === '0', `auth_failure_delay is ${delay.stdout.trim()}`);
    });

    if (store.imapsPort > 0 && testbed.tls !== undefined) {
      const tls = testbed.tls;
      add(`store ${store.name}: imaps, pop3s and STARTTLS with the test bed CA`, async () => {
        const login = [...userLogin(user), '--cacert', tls.caFile];
        const out = await curlOk([
          ...login,
          `imaps://${store.host}:${store.imapsPort}/INBOX;MAILINDEX=1;SECTION=HEADER.FIELDS%20(SUBJECT)`,
        ]);
        assert(out.toString('utf8').includes(marker), `imaps: ${out.toString('utf8')}`);
        const pop3s = await curlOk([...login, `pop3s://${store.host}:${store.pop3sPort}/1`]);
        assert(pop3s.toString('utf8').includes(marker), 'pop3s: no marker');
        const starttls = await curlOk([
          ...login,
          '--ssl-reqd',
          imapUrl(store, 'INBOX;MAILINDEX=1;SECTION=HEADER.FIELDS%20(SUBJECT)'),
        ]);
        assert(starttls.toString('utf8').includes(marker), 'STARTTLS: no marker');
      });
    }
  }

  add('virtual-domain users (uid NAME+DOMAIN) log in to their stores', async () => {
    for (const user of testbed.usersOfKind('virtual')) {
      assert(user.store !== null, `${user.uid} has a store`);
      const subject = await imapSubject(testbed.store(user.store), userLogin(user));
      assert(subject === markerSubject(user.store, user.uid), `${user.uid}: ${subject}`);
    }
  });

  add(
    'the special-password user logs in (IMAP LOGIN, AUTHENTICATE PLAIN, POP3 USER/PASS)',
    async () => {
      const [user] = testbed.usersOfKind('special-password');
      assert(user?.store != null, 'special-password user');
      const store = testbed.store(user.store);
      const marker = markerSubject(store.name, user.uid);
      const plain = await imapSubject(store, userLogin(user));
      assert(plain === marker, `AUTHENTICATE PLAIN: ${plain}`);
      const login = await imapLoginSubject(store, user.uid, user.password);
      assert(login === marker, `LOGIN: ${login}`);
      const pop3 = await pop3Subject(store, userLogin(user));
      assert(pop3 === marker, `POP3 AUTH PLAIN: ${pop3}`);
      const userPass = await pop3UserPassSubject(store, user.uid, user.password);
      assert(userPass === marker, `POP3 USER/PASS: ${userPass}`);
    },
  );

  add('LDAP: the failover user has two mailHost values, dead host first', async () => {
    const [user] = testbed.usersOfKind('failover');
    assert(user !== undefined, 'failover user');
    const out = await ldapsearch(testbed, [
      '-D',
      testbed.ldap.bindDn,
      '-w',
      testbed.ldap.bindPassword,
      `(uid=${user.uid})`,
      'mailHost',
    ]);
    const hosts = [...out.matchAll(/^mailHost: (.*)$/gm)].map((m) => m[1]);
    assert(
      JSON.stringify(hosts) === JSON.stringify(user.mailHosts),
      `mailHost ${JSON.stringify(hosts)} != ${JSON.stringify(user.mailHosts)}`,
    );
    assert(hosts[0] !== undefined && testbed.deadHosts.includes(hosts[0]), 'first host is dead');
  });

  add('LDAP: anonymous search, the alternative attribute, escaped virtual-domain DNs', async () => {
    const alt = testbed.usersOfKind('alt')[0];
    assert(alt !== undefined, 'alt user');
    const out = await ldapsearch(testbed, [`(uid=${alt.uid})`, 'mailHost', 'mmpAltMailHost']);
    assert(out.includes(`mmpAltMailHost: ${alt.altMailHosts[0]}`), `alt: ${out}`);
    const virt = testbed.usersOfKind('virtual')[0];
    assert(virt !== undefined, 'virtual user');
    const found = await ldapsearch(testbed, [`(uid=${virt.uid})`, 'uid']);
    // slapd prints the DN with + escaped as \2B (RFC 4514 allows both forms)
    assert(/^dn: uid=alice(\\\+|\\2B)virt\.example,ou=people,o=mmp\.test$/m.test(found), found);
    assert(found.includes(`uid: ${virt.uid}`), found);
  });

  add('LDAP: users bind with their own password; the service account binds', async () => {
    const whoami = async (dn: string, password: string): Promise<string> => {
      const result = await execa(
        'ldapwhoami',
        ['-x', '-H', testbed.ldap.url, '-D', dn, '-w', password],
        { reject: false, stdin: 'ignore' },
      );
      return result.exitCode === 0 ? result.stdout.trim() : `exit ${result.exitCode}`;
    };
    const special = testbed.usersOfKind('special-password')[0];
    assert(special !== undefined, 'special user');
    for (const user of [testbed.userOn('A'), special, testbed.user('alice+virt.example')]) {
      const answer = await whoami(user.dn, user.password);
      assert(answer.startsWith('dn:uid='), `${user.uid}: ${answer}`);
    }
    assert(
      (await whoami(testbed.ldap.bindDn, testbed.ldap.bindPassword)).startsWith('dn:cn=mmp'),
      'bind DN',
    );
    const wrong = await whoami(testbed.userOn('A').dn, 'wrong');
    assert(wrong === 'exit 49', `wrong password: ${wrong}`);
  });

  add('the hanging host accepts connections and never greets', async () => {
    const { host } = testbed.hangingHost;
    const greeting = await readGreeting(host, testbed.backsidePorts.imap, { timeoutMs: 300 }).then(
      (line) => `answered ${line}`,
      (error: Error) => error.message,
    );
    assert(/no greeting/.test(greeting), `hanging host: ${greeting}`);
  });

  add('PROXY-protocol listeners take the client address from the header', async () => {
    const store = testbed.store('A');
    const user = testbed.userOn('A');
    const client = await LineClient.connect(store.host, store.imapHaproxyPort);
    try {
      client.write(`PROXY TCP4 192.0.2.7 ${store.host} 40000 ${store.imapHaproxyPort}\r\n`);
      const greeting = await client.readLine();
      assert(greeting.includes(store.greeting), `greeting: ${greeting}`);
      const login = await client.imap('p1', imapLoginCommand(user.uid, user.password));
      assert(login.at(-1)?.startsWith('p1 OK') === true, `login: ${login.join(' | ')}`);
      await client.imap('p2', 'LOGOUT');
    } finally {
      client.close();
    }
    const log = await readFile(store.logPath, 'utf8');
    assert(
      log.includes(`Login: user=<${user.uid}>`) && log.includes('rip=192.0.2.7'),
      'the store log shows no login from 192.0.2.7',
    );
  });

  add('dead hosts refuse connections on the back-side ports', async () => {
    for (const host of testbed.deadHosts) {
      assert(!(await canConnect(host, testbed.backsidePorts.imap)), `${host} IMAP answers`);
      assert(!(await canConnect(host, testbed.backsidePorts.pop3)), `${host} POP3 answers`);
    }
  });

  return list;
}

export interface SelftestReport {
  ok: boolean;
  failures: string[];
}

/** Start a test bed, run every check, stop it; log one line per check. */
export async function selftest(
  options: TestbedOptions,
  log: (line: string) => void,
): Promise<SelftestReport> {
  const started = Date.now();
  const testbed = await startTestbed(options);
  log(`started in ${Date.now() - started} ms (${testbed.dir})`);
  const failures: string[] = [];
  try {
    for (const check of checks(testbed)) {
      try {
        await check.run();
        log(`ok   ${check.name}`);
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        failures.push(`${check.name}: ${message}`);
        log(`FAIL ${check.name}: ${message}`);
      }
    }
  } finally {
    await testbed.stop();
  }
  log(failures.length === 0 ? 'selftest passed' : `selftest: ${failures.length} failed`);
  return { ok: failures.length === 0, failures };
}
