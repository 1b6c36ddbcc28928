import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { QUESTIONS, runDialogue } from './dialogue.js';
import { type TempDir, fakeEnv, tempDir } from './test-support/fixtures.js';
import { type Line, ScriptedPerson } from './test-support/person.js';

let tmp: TempDir;
beforeEach(() => {
  tmp = tempDir();
});
afterEach(() => tmp.cleanup());

/** Every question of an IMAP-only run, in the guide's order (Table 13.7). */
const imapWalk = (root: string): Line[] => [
  [QUESTIONS.user, 'nsmmp'],
  [QUESTIONS.root, root],
  [QUESTIONS.name, 'mail1'],
  ['1 - Configure this instance for IMAP mail service', '1'],
  ['LDAP Host:', 'ldap.example.com:389'],
  ['Base DN:', 'o=example.com'],
  ['IMAP4 MMP LogDir:', ''],
  ['Log Level:', '3'],
  ['Should the MMP bind to LDAP as someone in particular (y/n):', 'y'],
  ['What user should the MMP authenticate as:', 'cn=Directory Manager'],
  ['What\'s the password for "BindDN":', 's3cret'],
  ['Number of Threads:', ''],
  ['Should the MMP listen on a non-default port (y/n):', 'y'],
  ['Which port:', '1143'],
  ['Do your main IMAP4 servers listen on non-default ports (y/n):', ''],
  ['Should the MMP connect to your main IMAP4 servers with SSL (y/n):', ''],
  ["Would you like to override the IMAP4 MMP's CAPABILITY response (y/n):", ''],
  ["Would you like to override the MMP's banner (y/n):", 'y'],
  ['Please type in the new banner, and hit return.', 'Example mail ready'],
  ["Would you like to override the MMP's LDAP search string (y/n):", ''],
  ['Would you like MMP to use a particular attribute for auth replay (y/n):', ''],
  ['Would you like the MMP to use a non-default attribute for the mailhost? (y/n):', ''],
  ['Should the MMP pre-authenticate users by binding to LDAP as them (y/n):', ''],
  ['Do your stores accept OAuth2 bearer tokens (Dovecot: an oauth2 passdb) (y/n):', ''],
  ['Should this MMP do virtual domain mapping(y/n):', ''],
  ['Do you want to specify a list of virtual domain delimiters? (y/n)', ''],
  ['Do you want to specify a canonical virtual domain delimiter? (y/n)', ''],
  ['Would you like to override the Server Down Alert for the MMP? (y/n)', ''],
  ['Should the IMAP4 MMP do SSL (y/n):', ''],
  [QUESTIONS.confirm, 'y'],
];

describe('the dialogue, driven through the Prompter interface', () => {
  it('walks every IMAP question of Table 13.7 in order and returns the answers', async () => {
    const root = join(tmp.path, 'mmp');
    const person = new ScriptedPerson(imapWalk(root), true);
    const answers = await runDialogue(person, fakeEnv(tmp.path), { root: '/opt/mmp' });
    expect(person.remaining).toEqual([]);
    expect(answers).toEqual({
      user: 'nsmmp',
      root,
      instance: 'mail1',
      services: ['imap'],
      values: {
        imap: {
          LDAPHost: 'ldap.example.com:389',
          BaseDN: 'o=example.com',
          LogDir: '/var/log/mmp/mail1',
          LogLevel: '3',
          BindDN: 'cn=Directory Manager',
          BindPass: 's3cret',
          NumThreads: '0',
          ListenPort: '1143',
          Banner: 'Example mail ready',
          PreAuth: 'no',
          SSLEnable: 'no',
        },
        pop3: {},
      },
    });
    // Defaults offered: nobody, the recorded root, the host name's first label.
    expect(person.transcript.asked[0]).toContain('[nobody]');
    expect(person.transcript.asked[1]).toContain('[/opt/mmp]');
    expect(person.transcript.asked[2]).toContain('[mx1]');
    // The summary masks the password.
    const summary = person.transcript.said.join('\n');
    expect(summary).toContain('BindPass=******');
    expect(summary).not.toContain('s3cret');
  });

  it('asks only POP3 questions for a POP3 instance, including the spoof message', async () => {
    const spoof = join(tmp.path, 'spoof.eml');
    writeFileSync(spoof, 'Subject: down\r\n\r\nThe mail store is down.\r\n');
    const person = new ScriptedPerson([
      [QUESTIONS.root, join(tmp.path, 'mmp')],
      [QUESTIONS.name, 'pop'],
      [/^1 - /, '2'],
      ['Would you like to provide a "spoof" message for POP3 (y/n):', 'y'],
      ['Please type in the location of the file to be used', spoof],
    ]);
    const answers = await runDialogue(person, fakeEnv(tmp.path), { root: '/opt/mmp' });
    // The parameter questions: everything after the service menu.
    const all = person.transcript.asked;
    const asked = all.slice(all.findIndex((a) => a.startsWith('1 - ')) + 1).join('\n');
    expect(asked).toContain('POP3 MMP LogDir:');
    expect(asked).toContain('Do your main POP3 servers listen on non-default ports');
    expect(asked).toContain('Should the POP3 MMP do SSL (y/n):');
    expect(asked).not.toContain('CAPABILITY');
    expect(asked).not.toContain('IMAP4');
    expect(answers.services).toEqual(['pop3']);
    expect(answers.values.pop3.SpoofMessageFile).toBe(spoof);
    expect(answers.values.imap).toEqual({});
  });

  it('for both services asks shared questions once and ports per protocol', async () => {
    const cert = join(tmp.path, 'cert.pem');
    const key = join(tmp.path, 'key.pem');
    writeFileSync(cert, 'cert');
    writeFileSync(key, 'key');
    const person = new ScriptedPerson([
      [QUESTIONS.root, join(tmp.path, 'mmp')],
      [QUESTIONS.name, 'both'],
      [/^1 - /, '3'],
      ['(IMAP4) Should the MMP listen on a non-default port (y/n):', 'y'],
      ['(IMAP4) Which port:', '1143'],
      ['(POP3) Should the MMP listen on a non-default port (y/n):', 'y'],
      // The IMAP4 port is refused for POP3, then a free one is taken.
      ['(POP3) Which port:', '1143'],
      ['(POP3) Which port:', '1110'],
      ['Should the IMAP4 MMP do SSL (y/n):', 'y'],
      ['Should the POP3 MMP do SSL (y/n):', 'n'],
      ['(IMAP4) Should the MMP listen for SSL on a non-default port (y/n)', 'y'],
      ['(IMAP4) Which port?', '1993'],
      ['server certificate file', ''],
      ['server certificate file', cert],
      ['private key file', key],
      ["private key's password", ''],
      ['list of ciphers', ''],
      ['Should the MMP offer STARTTLS', 'n'],
    ]);
    const answers = await runDialogue(person, fakeEnv(tmp.path), { root: '/opt/mmp' });
    const asked = person.transcript.asked;
    const count = (s: string): number => asked.filter((a) => a.startsWith(s)).length;
    expect(count('LDAP Host:')).toBe(1);
    expect(count('Base DN:')).toBe(1);
    expect(count('IMAP4 MMP LogDir:')).toBe(1);
    expect(count('POP3 MMP LogDir:')).toBe(1);
    expect(count("Would you like to override the IMAP4 MMP's CAPABILITY")).toBe(1);
    expect(count('Would you like to provide a "spoof" message for POP3')).toBe(1);
    expect(person.transcript.refusals).toEqual([
      'ListenPort: 1143 is already taken by IMAP4 ListenPort',
      'SSLCertFile: a value is required',
    ]);
    expect(answers.values.imap).toMatchObject({
      ListenPort: '1143',
      SSLEnable: 'yes',
      SSLListenPort: '1993',
      SSLCertFile: cert,
      SSLKeyFile: key,
      SSLCipherSpecs: 'all',
      SSLStartTLS: 'no',
      BaseDN: 'o=mcom.com',
    });
    expect(answers.values.pop3).toMatchObject({
      ListenPort: '1110',
      SSLEnable: 'no',
      BaseDN: 'o=mcom.com',
    });
    // SSL settings go only where SSL is on.
    expect(answers.values.pop3.SSLCertFile).toBeUndefined();
    expect(answers.values.imap.SSLKeyPasswd).toBeUndefined();
  });

  it('refuses bad answers with the table’s message and asks again', async () => {
    const person = new ScriptedPerson([
      [QUESTIONS.user, 'not a user!'],
      [QUESTIONS.user, 'nsmmp'],
      [QUESTIONS.root, 'relative/dir'],
      [QUESTIONS.root, join(tmp.path, 'mmp')],
      [QUESTIONS.name, '../evil'],
      [QUESTIONS.name, 'ok'],
      [/^1 - /, '4'],
      [/^1 - /, '1'],
      ['LDAP Host:', 'bad host:99999'],
      ['LDAP Host:', 'ldap1:389'],
      ['Log Level:', '11'],
      ['Log Level:', '10'],
      ['Should the MMP listen on a non-default port (y/n):', 'maybe'],
      ['Should the MMP listen on a non-default port (y/n):', 'y'],
      ['Which port:', 'abc'],
      ['Which port:', '70000'],
      ['Which port:', '1143'],
      ['Should this MMP do virtual domain mapping(y/n):', 'y'],
      ['Please type the location of the mapping file', join(tmp.path, 'missing.vdmap')],
      ['Please type the location of the mapping file', ''],
      ['Please type the location of the mapping file', __filename],
    ]);
    const answers = await runDialogue(person, fakeEnv(tmp.path), { root: '/opt/mmp' });
    expect(person.transcript.refusals).toEqual([
      "user: 'not a user!' is not a valid user name",
      "MMPRoot: 'relative/dir' is not an absolute path",
      "instance: '../evil' is not a valid name (letters, digits, '.', '_' and '-')",
      'Please enter 1, 2 or 3.',
      expect.stringMatching(/^LDAPHost: expected host\[:port\].*got 'bad host:99999'/),
      "LogLevel: expected an integer 0–10, got '11' (above 10)",
      'Please answer y or n.',
      "ListenPort: expected [IP:]port with port 1–65535, got 'abc' (the port is missing)",
      "ListenPort: expected [IP:]port with port 1–65535, got '70000' (out of range)",
      `VirtualDomainFile: ${join(tmp.path, 'missing.vdmap')} does not exist`,
      'VirtualDomainFile: a value is required',
    ]);
    expect(answers.values.imap).toMatchObject({
      LDAPHost: 'ldap1:389',
      LogLevel: '10',
      ListenPort: '1143',
      VirtualDomainFile: __filename,
    });
  });

  it('warns when the user does not exist, and still accepts it', async () => {
    const person = new ScriptedPerson([
      [QUESTIONS.user, 'mmpuser'],
      [QUESTIONS.root, join(tmp.path, 'mmp')],
    ]);
    const answers = await runDialogue(person, fakeEnv(tmp.path, ['nobody']), { root: '/opt/mmp' });
    expect(answers.user).toBe('mmpuser');
    expect(person.transcript.said[0]).toMatch(/user 'mmpuser' does not exist in \/etc\/passwd/);
  });

  it('answering n at the summary goes back through the prompts with the answers as defaults', async () => {
    const root = join(tmp.path, 'mmp');
    const person = new ScriptedPerson([
      [QUESTIONS.user, 'nsmmp'],
      [QUESTIONS.root, root],
      [QUESTIONS.name, 'first'],
      [/^1 - /, '3'],
      ['Base DN:', 'o=one'],
      ['(IMAP4) Should the MMP listen on a non-default port (y/n):', 'y'],
      ['(IMAP4) Which port:', '1143'],
      [QUESTIONS.confirm, 'n'],
      // Second pass: Enter everywhere except one change.
      ['Base DN:', 'o=two'],
      [QUESTIONS.confirm, 'y'],
    ]);
    const answers = await runDialogue(person, fakeEnv(tmp.path), { root: '/opt/mmp' });
    const asked = person.transcript.asked;
    const second = asked.slice(asked.findIndex((a) => a.startsWith(QUESTIONS.confirm)) + 1);
    expect(second).toContain(`${QUESTIONS.user} [nsmmp] => `);
    expect(second).toContain(`${QUESTIONS.root} [${root}] => `);
    expect(second).toContain(`${QUESTIONS.name} [first] => `);
    expect(second.some((a) => a.startsWith('1 - ') && a.includes('[3]'))).toBe(true);
    expect(second).toContain('(IMAP4) Should the MMP listen on a non-default port (y/n): [y] => ');
    expect(second).toContain('(IMAP4) Which port: [1143] => ');
    expect(answers).toMatchObject({ user: 'nsmmp', instance: 'first', services: ['imap', 'pop3'] });
    expect(answers.values.imap).toMatchObject({ BaseDN: 'o=two', ListenPort: '1143' });
    expect(answers.values.pop3.ListenPort).toBeUndefined();
  });

  it('offers existing instances and takes the chosen one’s values as defaults', async () => {
    const env = fakeEnv(tmp.path, ['nobody'], {
      old: {
        user: 'nsmmp',
        services: ['imap'],
        values: {
          imap: { BaseDN: 'o=old', ListenPort: '2143', BindPass: 'kept', LdapCacheSize: '5' },
          pop3: {},
        },
      },
    });
    const person = new ScriptedPerson([
      [QUESTIONS.user, ''],
      [QUESTIONS.root, join(tmp.path, 'mmp')],
      [QUESTIONS.existing, 'Configure instance old'],
      // Enter at the first user question took "nobody"; the instance runs as nsmmp.
      [`Instance old runs as nsmmp. ${QUESTIONS.user}`, ''],
      ['Should the MMP bind to LDAP as someone in particular', 'y'],
      ['What user should the MMP authenticate as:', 'cn=admin'],
    ]);
    const answers = await runDialogue(person, env, { root: '/opt/mmp' });
    const asked = person.transcript.asked;
    expect(asked).toContain('Base DN: [o=old] => ');
    expect(asked).toContain('Should the MMP listen on a non-default port (y/n): [y] => ');
    expect(asked).toContain('Which port: [2143] => ');
    expect(asked.some((a) => a.includes('(Enter keeps the current one)'))).toBe(true);
    expect(answers.instance).toBe('old');
    expect(answers.user).toBe('nsmmp');
    // Unasked parameters and the untouched password survive.
    expect(answers.values.imap).toMatchObject({
      BaseDN: 'o=old',
      ListenPort: '2143',
      BindDN: 'cn=admin',
      BindPass: 'kept',
      LdapCacheSize: '5',
    });
  });
});

describe('certificate login, PreAuth, SSLBacksidePort and LDAPAuth (issue 17)', () => {
  /** PEM-named files the SSL and certificate questions accept (they must exist). */
  function files(): Record<'cert' | 'key' | 'certmap' | 'ca', string> {
    // Not in the directory the dialogue runs in, where the default certmap.conf is looked for.
    const pki = join(tmp.path, 'pki');
    mkdirSync(pki);
    const out = {
      cert: join(pki, 'server.pem'),
      key: join(pki, 'server.key'),
      certmap: join(pki, 'certmap.conf'),
      ca: join(pki, 'client-ca.pem'),
    };
    for (const f of Object.values(out)) writeFileSync(f, 'x');
    return out;
  }

  it('asks for certificate login after the SSL questions, only where SSL is on, in one y/n', async () => {
    const f = files();
    const person = new ScriptedPerson([
      [QUESTIONS.root, join(tmp.path, 'mmp')],
      [QUESTIONS.name, 'certs'],
      [/^1 - /, '3'],
      ['Should the IMAP4 MMP do SSL (y/n):', 'y'],
      ['Should the POP3 MMP do SSL (y/n):', 'n'],
      ['server certificate file', f.cert],
      ['private key file', f.key],
      ['Should the MMP offer STARTTLS', ''],
      ['Should the MMP accept certificate-based client authentication (y/n):', 'y'],
      // The default certmap.conf is looked for where mmp-setup runs: not there, refused.
      ['Please type in the location of the certmap.conf file', ''],
      ['Please type in the location of the certmap.conf file', f.certmap],
      ['Please type in the location of the CA file (PEM) that issues client certificates', ''],
      ['Please type in the location of the CA file (PEM) that issues client certificates', f.ca],
      ['What store administrator should the MMP log in to the stores as:', 'mmpstore'],
      ['What\'s the password for "StoreAdmin":', ''],
      ['What\'s the password for "StoreAdmin":', 'master secret'],
    ]);
    const answers = await runDialogue(person, fakeEnv(tmp.path), { root: '/opt/mmp' });
    expect(person.remaining).toEqual([]);
    const asked = person.transcript.asked;
    const at = (text: string): number => asked.findIndex((a) => a.startsWith(text));
    // After the last SSL question, asked once (not per protocol: POP3 has no SSL).
    expect(at('Should the MMP accept certificate-based')).toBeGreaterThan(
      at('Should the MMP offer STARTTLS'),
    );
    expect(asked.filter((a) => a.includes('certificate-based')).length).toBe(1);
    expect(person.transcript.refusals).toEqual([
      `CertMapFile: ${join(tmp.path, 'certmap.conf')} does not exist`,
      'SSLClientCAFile: a value is required',
      'StoreAdminPass: a value is required',
    ]);
    expect(answers.values.imap).toMatchObject({
      CertMapFile: f.certmap,
      SSLClientCAFile: f.ca,
      StoreAdmin: 'mmpstore',
      StoreAdminPass: 'master secret',
    });
    for (const n of ['CertMapFile', 'SSLClientCAFile', 'StoreAdmin', 'StoreAdminPass'] as const)
      expect(answers.values.pop3[n]).toBeUndefined();
    expect(person.transcript.said.join('\n')).toContain('StoreAdminPass=******');
    expect(person.transcript.said.join('\n')).not.toContain('master secret');
  });

  it('n to certificate login removes what an instance had; without SSL it is not asked', async () => {
    const f = files();
    const env = fakeEnv(tmp.path, ['nobody'], {
      old: {
        services: ['imap', 'pop3'],
        values: {
          imap: {
            SSLEnable: 'yes',
            SSLCertFile: f.cert,
            SSLKeyFile: f.key,
            CertMapFile: f.certmap,
            SSLClientCAFile: f.ca,
            StoreAdmin: 'mmpstore',
            StoreAdminPass: 'kept',
          },
          pop3: { SSLEnable: 'no', StoreAdmin: 'unused' },
        },
      },
    });
    const person = new ScriptedPerson([
      [QUESTIONS.root, join(tmp.path, 'mmp')],
      [QUESTIONS.existing, 'Configure instance old'],
      // The two protocols' values differ: asked per protocol, and only IMAP4 has SSL.
      ['(IMAP4) Should the MMP accept certificate-based client authentication (y/n):', 'n'],
    ]);
    const answers = await runDialogue(person, env, { root: '/opt/mmp' });
    // The current values made "y" the default.
    expect(person.transcript.asked).toContain(
      '(IMAP4) Should the MMP accept certificate-based client authentication (y/n): [y] => n',
    );
    expect(person.transcript.asked.join('\n')).not.toContain('(POP3) Should the MMP accept');
    expect(answers.values.imap).not.toHaveProperty('StoreAdmin');
    expect(answers.values.imap).not.toHaveProperty('CertMapFile');
    expect(answers.values.imap).not.toHaveProperty('StoreAdminPass');
    // POP3 has no SSL: not asked for it, and its file is left as it was.
    expect(answers.values.pop3.StoreAdmin).toBe('unused');
  });

  it('asks OAuth2 pass-through after PreAuth: y then the mechanisms, checked against the table', async () => {
    const person = new ScriptedPerson([
      [QUESTIONS.root, join(tmp.path, 'mmp')],
      [QUESTIONS.name, 'bearer'],
      [/^1 - /, '3'],
      ['Should the MMP pre-authenticate users by binding to LDAP as them (y/n):', ''],
      ['Do your stores accept OAuth2 bearer tokens (Dovecot: an oauth2 passdb) (y/n):', 'y'],
      ['Which OAuth2 mechanisms should the MMP pass through to the stores', 'GSSAPI'],
      ['Which OAuth2 mechanisms should the MMP pass through to the stores', 'XOAUTH2,OAUTHBEARER'],
    ]);
    const answers = await runDialogue(person, fakeEnv(tmp.path), { root: '/opt/mmp' });
    expect(person.remaining).toEqual([]);
    expect(person.transcript.refusals).toHaveLength(1);
    expect(person.transcript.refusals[0]).toMatch(/^OAuth2Mechanisms: /);
    expect(answers.values.imap.OAuth2Mechanisms).toBe('XOAUTH2,OAUTHBEARER');
    expect(answers.values.pop3.OAuth2Mechanisms).toBe('XOAUTH2,OAUTHBEARER');
  });

  it('asks whether a client certificate is required inside the certificate-login questions', async () => {
    const f = files();
    const person = new ScriptedPerson([
      [QUESTIONS.root, join(tmp.path, 'mmp')],
      [QUESTIONS.name, 'required'],
      [/^1 - /, '1'],
      ['Should the IMAP4 MMP do SSL (y/n):', 'y'],
      ['server certificate file', f.cert],
      ['private key file', f.key],
      ['Should the MMP accept certificate-based client authentication (y/n):', 'y'],
      ['Please type in the location of the certmap.conf file', f.certmap],
      ['Please type in the location of the CA file (PEM) that issues client certificates', f.ca],
      ['What store administrator should the MMP log in to the stores as:', 'mmpstore'],
      ['What\'s the password for "StoreAdmin":', 'master secret'],
      ['Should the MMP require a client certificate', 'always'],
      ['Should the MMP require a client certificate', 'implicit'],
    ]);
    const answers = await runDialogue(person, fakeEnv(tmp.path), { root: '/opt/mmp' });
    expect(person.remaining).toEqual([]);
    expect(person.transcript.refusals).toHaveLength(1);
    expect(person.transcript.refusals[0]).toMatch(/^SSLRequireClientCert: /);
    expect(answers.values.imap.SSLRequireClientCert).toBe('implicit');
  });

  it('asks PreAuth after the directory questions and SSLBacksidePort per protocol after BacksidePort', async () => {
    const person = new ScriptedPerson([
      [QUESTIONS.root, join(tmp.path, 'mmp')],
      [QUESTIONS.name, 'pre'],
      [/^1 - /, '3'],
      ['Do your main IMAP4 servers listen on non-default ports (y/n):', ''],
      ['Do your main POP3 servers listen on non-default ports (y/n):', ''],
      ['Should the MMP connect to your main IMAP4 servers with SSL (y/n):', 'y'],
      ['(IMAP4) Which SSL port:', 'imaps'],
      ['(IMAP4) Which SSL port:', '993'],
      ['Should the MMP connect to your main POP3 servers with SSL (y/n):', 'n'],
      ['Would you like the MMP to use a non-default attribute for the mailhost?', ''],
      ['Should the MMP pre-authenticate users by binding to LDAP as them (y/n):', 'y'],
      ['Should this MMP do virtual domain mapping(y/n):', ''],
    ]);
    const answers = await runDialogue(person, fakeEnv(tmp.path), { root: '/opt/mmp' });
    expect(person.remaining).toEqual([]);
    expect(person.transcript.refusals).toEqual([
      "SSLBacksidePort: expected a port 1–65535, got 'imaps'",
    ]);
    expect(answers.values.imap).toMatchObject({ SSLBacksidePort: '993', PreAuth: 'yes' });
    expect(answers.values.pop3).toMatchObject({ PreAuth: 'yes' });
    expect(answers.values.pop3.SSLBacksidePort).toBeUndefined();
  });

  it('n to the bind question writes LDAPAuth=no; LDAPAuth=no in a file makes n the default', async () => {
    const env = fakeEnv(tmp.path, ['nobody'], {
      bound: {
        services: ['imap'],
        values: { imap: { BindDN: 'cn=mmp,o=x', BindPass: 'old' }, pop3: {} },
      },
      anon: { services: ['imap'], values: { imap: { LDAPAuth: 'no' }, pop3: {} }, user: 'nobody' },
    });
    const bound = new ScriptedPerson([
      [QUESTIONS.root, join(tmp.path, 'mmp')],
      [QUESTIONS.existing, 'Configure instance bound'],
      ['Should the MMP bind to LDAP as someone in particular (y/n):', 'n'],
    ]);
    const a = await runDialogue(bound, env, { root: '/opt/mmp' });
    expect(bound.transcript.asked).toContain(
      'Should the MMP bind to LDAP as someone in particular (y/n): [y] => n',
    );
    expect(a.values.imap.LDAPAuth).toBe('no');
    expect(a.values.imap.BindDN).toBeUndefined();
    expect(a.values.imap.BindPass).toBeUndefined();

    const anon = new ScriptedPerson([
      [QUESTIONS.root, join(tmp.path, 'mmp')],
      [QUESTIONS.existing, 'Configure instance anon'],
      ['Should the MMP bind to LDAP as someone in particular (y/n):', ''],
    ]);
    expect((await runDialogue(anon, env, { root: '/opt/mmp' })).values.imap.LDAPAuth).toBe('no');
    expect(anon.transcript.asked).toContain(
      'Should the MMP bind to LDAP as someone in particular (y/n): [n] => ',
    );

    // "y" leaves LDAPAuth to follow BindDN, which it then asks for.
    const yes = new ScriptedPerson([
      [QUESTIONS.root, join(tmp.path, 'mmp')],
      [QUESTIONS.existing, 'Configure instance anon'],
      ['Should the MMP bind to LDAP as someone in particular (y/n):', 'y'],
      ['What user should the MMP authenticate as:', 'cn=mmp,o=x'],
      ['What\'s the password for "BindDN":', 'pw'],
    ]);
    const y = await runDialogue(yes, env, { root: '/opt/mmp' });
    expect(y.values.imap).toMatchObject({ BindDN: 'cn=mmp,o=x', BindPass: 'pw' });
    expect(y.values.imap.LDAPAuth).toBeUndefined();
  });

  it('does not ask LDAP Host and Base DN where LdapUrl replaces them, and says so', async () => {
    const env = fakeEnv(tmp.path, ['nobody'], {
      url: {
        services: ['imap'],
        values: { imap: { LdapUrl: 'ldap://a/o=x ldap://b/o=x', BaseDN: 'o=kept' }, pop3: {} },
        user: 'nobody',
      },
    });
    const person = new ScriptedPerson([
      [QUESTIONS.root, join(tmp.path, 'mmp')],
      [QUESTIONS.existing, 'Configure instance url'],
    ]);
    const answers = await runDialogue(person, env, { root: '/opt/mmp' });
    const asked = person.transcript.asked.join('\n');
    expect(asked).not.toContain('LDAP Host:');
    expect(asked).not.toContain('Base DN:');
    expect(person.transcript.said).toContain(
      'LDAP Host: not asked: LdapUrl is set and replaces it.',
    );
    expect(person.transcript.said).toContain('Base DN: not asked: LdapUrl is set and replaces it.');
    expect(answers.values.imap).toMatchObject({
      LdapUrl: 'ldap://a/o=x ldap://b/o=x',
      BaseDN: 'o=kept',
    });
    expect(answers.values.imap.LDAPHost).toBeUndefined();
  });
});
