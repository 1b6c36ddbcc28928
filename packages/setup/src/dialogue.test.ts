import { writeFileSync } from 'node:fs';
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
  ["Would you like to override the IMAP4 MMP's CAPABILITY response (y/n):", ''],
  ["Would you like to override the MMP's banner (y/n):", 'y'],
  ['Please type in the new banner, and hit return.', 'Example mail ready'],
  ["Would you like to override the MMP's LDAP search string (y/n):", ''],
  ['Would you like MMP to use a particular attribute for auth replay (y/n):', ''],
  ['Would you like the MMP to use a non-default attribute for the mailhost? (y/n):', ''],
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
