/**
 * mmp-setup run in-process: the answers-file form, --modify, --list, refusals, interruptions,
 * and the written config files read back by the config package exactly as the proxy reads them.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { cliAction, parseConfigFile } from '@mmp/config';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { QUESTIONS } from './dialogue.js';
import { type TempDir, runCli, tempDir } from './test-support/fixtures.js';
import { ScriptedPerson } from './test-support/person.js';

let tmp: TempDir;
let conf: string;
let root: string;
beforeEach(() => {
  tmp = tempDir();
  conf = join(tmp.path, 'netscape.mmp.conf');
  root = join(tmp.path, 'mmp');
});
afterEach(() => tmp.cleanup());

const opts = (): { confFile: string; cwd: string } => ({ confFile: conf, cwd: tmp.path });

function configOf(
  instance: string,
  file: 'ImapMMP.config' | 'PopMMP.config',
): Record<string, string> {
  const path = join(root, `MMP_${instance}`, file);
  const parsed = parseConfigFile(readFileSync(path, 'utf8'), path);
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.error));
  return Object.fromEntries([...parsed.value].map(([k, v]) => [k, v.raw]));
}

const bothYaml = (r: string): string => `# answers for mail1
user: nobody
root: ${r}
instance: mail1
services: both
LDAPHost: ldap.example.com:389
BaseDN: o=example.com
LogLevel: 4
BindDN: cn=Directory Manager
BindPass: "it's secret"
MailHostAttrs: [mailHost, mailRoutingAddress]
LdapCacheSize: 500
LogDir: /tmp
imap:
  ListenPort: 1143
  SSLEnable: false
pop3:
  ListenPort: 1110
`;

describe('mmp-setup --answers FILE --yes', () => {
  it('creates an IMAP and POP3 instance whose config files read back as the answers', async () => {
    writeFileSync(join(tmp.path, 'a.yaml'), bothYaml(root));
    const r = await runCli(['--answers', join(tmp.path, 'a.yaml'), '--yes'], opts());
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const shared = {
      LDAPHost: 'ldap.example.com:389',
      BaseDN: 'o=example.com',
      LogDir: '/tmp',
      LogLevel: '4',
      BindDN: 'cn=Directory Manager',
      BindPass: "it's secret",
      NumThreads: '0',
      MailHostAttrs: 'mailHost,mailRoutingAddress',
      PreAuth: 'no',
      SSLEnable: 'no',
      LdapCacheSize: '500',
      // The installer's "user to run as".
      RunAsUser: 'nobody',
    };
    expect(configOf('mail1', 'ImapMMP.config')).toEqual({ ...shared, ListenPort: '1143' });
    expect(configOf('mail1', 'PopMMP.config')).toEqual({ ...shared, ListenPort: '1110' });

    // The proxy's own entry point reads the file to the same typed values.
    const file = join(root, 'MMP_mail1', 'ImapMMP.config');
    const action = cliAction('imap', ['-f', file], {});
    expect(action.kind).toBe('run');
    if (action.kind !== 'run') return;
    expect(action.config.values).toMatchObject({
      LDAPHost: [{ host: 'ldap.example.com', port: 389 }],
      ListenPort: { port: 1143 },
      LogLevel: 4,
      BindPass: "it's secret",
      MailHostAttrs: ['mailHost', 'mailRoutingAddress'],
      SSLEnable: false,
    });
    // And /bin/sh, which the start script uses, reads the same values.
    const sh = await execa('/bin/sh', [
      '-c',
      `. '${file}'; printf '%s|%s' "$BindPass" "$ListenPort"`,
    ]);
    expect(sh.stdout).toBe("it's secret|1143");

    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readFileSync(conf, 'utf8')).toContain(`MMPRoot='${root}'`);
    expect(r.stdout).toContain(`Created instance mail1 in ${root}/MMP_mail1:`);
    expect(r.stdout).toContain(`start:   ${root}/MMP_mail1/ImapMMP start`);
    expect(r.stdout).toContain(`stop:    ${root}/MMP_mail1/PopMMP stop`);
    expect(r.stdout).toContain(`check:   ${root}/MMP_mail1/ImapMMP status`);
    expect(r.stdout).toContain(`systemctl link ${root}/MMP_mail1/mmp-mail1-imap.service`);
  });

  it('without --yes, the answers file gives the defaults and the prompts still run', async () => {
    writeFileSync(join(tmp.path, 'a.yaml'), bothYaml(root));
    const person = new ScriptedPerson([['Base DN:', 'o=typed']]);
    const r = await runCli(['--answers', join(tmp.path, 'a.yaml')], {
      ...opts(),
      prompter: person,
    });
    expect(r.code).toBe(0);
    const asked = person.transcript.asked;
    expect(asked).toContain(`${QUESTIONS.user} [nobody] => `);
    expect(asked).toContain(`${QUESTIONS.name} [mail1] => `);
    expect(asked).toContain('LDAP Host: [ldap.example.com:389] => ');
    expect(asked).toContain('(IMAP4) Which port: [1143] => ');
    expect(configOf('mail1', 'ImapMMP.config')).toMatchObject({
      BaseDN: 'o=typed',
      ListenPort: '1143',
      BindPass: "it's secret",
    });
  });

  it('warns when the proxy user could not write its LogDir', async () => {
    writeFileSync(
      join(tmp.path, 'a.yaml'),
      `root: ${root}\ninstance: w\nuser: nobody\nLogDir: ${tmp.path}\n`,
    );
    const r = await runCli(['--answers', join(tmp.path, 'a.yaml'), '--yes'], {
      ...opts(),
      passwdFile: join(tmp.path, 'passwd'),
    });
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    // With a passwd file naming nobody as an ordinary user, the check applies.
    writeFileSync(join(tmp.path, 'passwd'), 'nobody:x:65534:65534::/:/bin/false\n');
    const s = await runCli(['--modify', 'w', '--yes'], {
      ...opts(),
      passwdFile: join(tmp.path, 'passwd'),
    });
    expect(s.code).toBe(0);
    expect(s.stderr).toBe(
      `mmp-setup: Warning: LogDir '${tmp.path}' (${tmp.path}) is not writable by nobody, who runs the proxy: ` +
        'create a directory owned by nobody (e.g. install -d -o nobody /var/log/mmp) and give it as LogDir.\n',
    );
  });

  it('creates a POP3-only instance from JSON', async () => {
    writeFileSync(
      join(tmp.path, 'a.json'),
      JSON.stringify({ MMPRoot: root, instance: 'pop', services: 2, ListenPort: 2110 }),
    );
    const r = await runCli(['--answers', join(tmp.path, 'a.json'), '-y'], opts());
    expect(r.code).toBe(0);
    expect(readdirSync(join(root, 'MMP_pop')).sort()).toEqual([
      'PopMMP',
      'PopMMP.config',
      'mmp-pop-pop3.service',
    ]);
    expect(configOf('pop', 'PopMMP.config').ListenPort).toBe('2110');
  });

  it('refuses bad answers with the prompt’s messages, exit 2, and writes nothing', async () => {
    const cases: [string, string[]][] = [
      [
        'ListenPort: 99999\n',
        ["ListenPort: expected [IP:]port with port 1–65535, got '99999' (out of range)"],
      ],
      ['LogLevel: high\n', ["LogLevel: expected an integer 0–10, got 'high'"]],
      [
        `VirtualDomainFile: ${join(tmp.path, 'nope')}\n`,
        [`VirtualDomainFile: ${join(tmp.path, 'nope')} does not exist`],
      ],
      ['ListenPrt: 143\n', ["unknown parameter 'ListenPrt' (did you mean ListenPort?)"]],
      [
        'services: 4\n',
        ['services: expected 1, 2, 3, imap, pop3, both or a list of imap and pop3, got 4'],
      ],
      [
        'instance: ../x\n',
        ["instance: '../x' is not a valid name (letters, digits, '.', '_' and '-')"],
      ],
      [
        'services: imap\nSpoofMessageFile: /etc/passwd\n',
        ['SpoofMessageFile: does not apply to IMAP4'],
      ],
      [
        'services: both\nListenPort: 2000\n',
        ['ListenPort: 2000 is already taken by IMAP4 ListenPort'],
      ],
      [
        'BindDN: not a dn\n',
        [expect.stringMatching(/^BindDN: expected an LDAP DN/) as unknown as string],
      ],
    ];
    for (const [yaml, messages] of cases) {
      const f = join(tmp.path, 'bad.yaml');
      writeFileSync(f, `root: ${root}\n${yaml}`);
      const r = await runCli(['--answers', f, '--yes'], opts());
      expect(r.code, yaml).toBe(2);
      const lines = r.stderr.trimEnd().split('\n');
      expect(lines.map((l) => l.replace(/^mmp-setup: (.*\/bad\.yaml: )?/, ''))).toEqual(messages);
      expect(existsSync(root), yaml).toBe(false);
      expect(existsSync(conf), yaml).toBe(false);
    }
  });

  it('the same refusal message is shown at the prompt', async () => {
    const person = new ScriptedPerson([
      [QUESTIONS.root, root],
      ['Should the MMP listen on a non-default port', 'y'],
      ['Which port:', '99999'],
      ['Which port:', '1143'],
    ]);
    const r = await runCli([], { ...opts(), prompter: person });
    expect(r.code).toBe(0);
    expect(person.transcript.refusals).toEqual([
      "ListenPort: expected [IP:]port with port 1–65535, got '99999' (out of range)",
    ]);
  });
});

describe('mmp-setup --modify NAME', () => {
  async function create(): Promise<void> {
    writeFileSync(join(tmp.path, 'a.yaml'), bothYaml(root));
    expect((await runCli(['--answers', join(tmp.path, 'a.yaml'), '--yes'], opts())).code).toBe(0);
    // A hand edit the dialogue never asks about must survive.
    const f = join(root, 'MMP_mail1', 'ImapMMP.config');
    writeFileSync(f, `${readFileSync(f, 'utf8')}Timeout="120"\nexport Timeout\n`);
  }

  it('walks the dialogue with the current values as defaults; one change keeps the rest', async () => {
    await create();
    const imapBefore = configOf('mail1', 'ImapMMP.config');
    const popBefore = configOf('mail1', 'PopMMP.config');
    const person = new ScriptedPerson([['Log Level:', '7']]);
    const r = await runCli(['--modify', 'mail1'], { ...opts(), prompter: person });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const asked = person.transcript.asked;
    // No MMPRoot or instance questions when modifying; the defaults are the current values.
    expect(asked.some((a) => a.startsWith(QUESTIONS.root))).toBe(false);
    expect(asked).toContain(`${QUESTIONS.user} [nobody] => `);
    expect(asked.some((a) => a.startsWith('1 - ') && a.includes('[3]'))).toBe(true);
    expect(asked).toContain('Base DN: [o=example.com] => ');
    expect(asked).toContain('(IMAP4) Which port: [1143] => ');
    expect(asked).toContain('(POP3) Which port: [1110] => ');
    expect(asked).toContain(
      'What\'s the password for "BindDN": (Enter keeps the current one) [] => ',
    );
    expect(configOf('mail1', 'ImapMMP.config')).toEqual({ ...imapBefore, LogLevel: '7' });
    expect(configOf('mail1', 'PopMMP.config')).toEqual({ ...popBefore, LogLevel: '7' });
    expect(r.stdout).toContain('Updated instance mail1');
    expect(r.stdout).toContain(
      `A running proxy keeps its old settings until restarted: ${root}/MMP_mail1/ImapMMP restart; ${root}/MMP_mail1/PopMMP restart`,
    );
  });

  it('takes an answers file over the current values', async () => {
    await create();
    const imapBefore = configOf('mail1', 'ImapMMP.config');
    writeFileSync(
      join(tmp.path, 'm.yaml'),
      'services: imap\nimap: { ListenPort: 2143 }\nBindPass: new\n',
    );
    const r = await runCli(
      ['--modify', 'mail1', '--answers', join(tmp.path, 'm.yaml'), '--yes'],
      opts(),
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(configOf('mail1', 'ImapMMP.config')).toEqual({
      ...imapBefore,
      ListenPort: '2143',
      BindPass: 'new',
    });
    // POP3 dropped: its files are gone.
    expect(readdirSync(join(root, 'MMP_mail1')).sort()).toEqual([
      'ImapMMP',
      'ImapMMP.config',
      'mmp-mail1-imap.service',
    ]);
    expect(r.stdout).toContain('Removed (service no longer configured): PopMMP.config, PopMMP');
  });

  it('refuses to drop a service that is running', async () => {
    await create();
    const sleeper = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      writeFileSync(join(root, 'MMP_mail1', 'PopMMP.pid'), `${sleeper.pid}\n`);
      writeFileSync(join(tmp.path, 'm.yaml'), 'services: imap\n');
      const r = await runCli(
        ['--modify', 'mail1', '--answers', join(tmp.path, 'm.yaml'), '--yes'],
        opts(),
      );
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`POP3 of instance mail1 is running (pid ${sleeper.pid})`);
      expect(existsSync(join(root, 'MMP_mail1', 'PopMMP.config'))).toBe(true);
    } finally {
      sleeper.kill();
    }
  });

  it('names a missing instance', async () => {
    const r = await runCli(['--modify', 'ghost', '--root', root], opts());
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`mmp-setup: instance ghost: ${root}/MMP_ghost does not exist\n`);
  });
});

describe('mmp-setup, other forms', () => {
  it('--list lists the instances under the recorded MMPRoot', async () => {
    expect((await runCli(['--list'], opts())).stdout).toBe('No instances in /opt/mmp.\n');
    writeFileSync(join(tmp.path, 'a.yaml'), bothYaml(root));
    await runCli(['--answers', join(tmp.path, 'a.yaml'), '--yes'], opts());
    writeFileSync(join(tmp.path, 'b.yaml'), `root: ${root}\ninstance: zeta\nservices: pop3\n`);
    await runCli(['--answers', join(tmp.path, 'b.yaml'), '--yes'], opts());
    const r = await runCli(['--list'], opts());
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`mail1\tIMAP4+POP3\t${root}/MMP_mail1\nzeta\tPOP3\t${root}/MMP_zeta\n`);
  });

  it('--instance names the instance of an answers file, or alone; it must agree with the file', async () => {
    writeFileSync(join(tmp.path, 'a.yaml'), `root: ${root}\nLogLevel: 4\n`);
    const r = await runCli(
      ['--answers', join(tmp.path, 'a.yaml'), '--instance', 'named', '--yes'],
      opts(),
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(configOf('named', 'ImapMMP.config').LogLevel).toBe('4');
    // Alone, as an empty answers file: the existing instance's values, with --set over them.
    const s = await runCli(['--instance', 'named', '--set', 'LogLevel=6', '--yes'], opts());
    expect(s.code).toBe(0);
    expect(configOf('named', 'ImapMMP.config').LogLevel).toBe('6');
    writeFileSync(join(tmp.path, 'b.yaml'), `root: ${root}\ninstance: one\n`);
    const bad = await runCli(
      ['--answers', join(tmp.path, 'b.yaml'), '--instance', 'two', '--yes'],
      opts(),
    );
    expect(bad.code).toBe(2);
    expect(bad.stderr).toBe("mmp-setup: --instance two and the answers' instance one differ\n");
    expect(existsSync(join(root, 'MMP_one'))).toBe(false);
  });

  it('--help prints the usage; an unknown option exits 2', async () => {
    const h = await runCli(['--help'], opts());
    expect(h.code).toBe(0);
    expect(h.stdout).toContain('--modify NAME');
    const bad = await runCli(['--frobnicate'], opts());
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("Unknown option '--frobnicate'");
  });

  it('Ctrl-C at a prompt exits 130 and writes nothing', async () => {
    const person = new ScriptedPerson([[QUESTIONS.root, root]]);
    person.input = (q) => {
      if (q.message.startsWith('Base DN')) {
        const e = new Error('User force closed the prompt with SIGINT');
        e.name = 'ExitPromptError';
        return Promise.reject(e);
      }
      return ScriptedPerson.prototype.input.call(person, q);
    };
    const r = await runCli([], { ...opts(), prompter: person });
    expect(r.code).toBe(130);
    expect(r.stderr).toBe('mmp-setup: interrupted; nothing was written\n');
    expect(existsSync(root)).toBe(false);
    expect(existsSync(conf)).toBe(false);
  });

  it('an abort while writing (the SIGINT of the executable) rolls back and exits 130', async () => {
    writeFileSync(join(tmp.path, 'a.yaml'), bothYaml(root));
    const ac = new AbortController();
    const r = await runCli(['--answers', join(tmp.path, 'a.yaml'), '--yes'], {
      ...opts(),
      signal: ac.signal,
      onApplyStep: (s) => {
        if (s === 'stage PopMMP.config') ac.abort();
      },
    });
    expect(r.code).toBe(130);
    expect(r.stderr).toBe('mmp-setup: interrupted; nothing was changed\n');
    expect(readdirSync(tmp.path).sort()).toEqual(['a.yaml']);
  });
});

describe("the guide's other instance directory spellings (MMPRoot/mplex1, MMPRoot/MMP-name)", () => {
  /** An instance directory as a 4.x installation or an operator's hand left it. */
  function oldInstance(dirName: string, file: 'ImapMMP.config' | 'PopMMP.config', text: string) {
    const dir = join(root, dirName);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, file), text, { mode: 0o600 });
    return dir;
  }

  it('--list finds MMP_name, MMP-name and plain names holding a config file, with their directories', async () => {
    writeFileSync(join(tmp.path, 'a.yaml'), `root: ${root}\ninstance: third\n`);
    expect((await runCli(['--answers', join(tmp.path, 'a.yaml'), '--yes'], opts())).code).toBe(0);
    oldInstance('mplex1', 'ImapMMP.config', 'LDAPHost=ldap1.example.com\nexport LDAPHost\n');
    oldInstance('MMP-second', 'PopMMP.config', 'setenv BaseDN o=example.com\n');
    // Not instances: no config file, a hidden (staging) directory, a name no instance can have.
    mkdirSync(join(root, 'lib'));
    oldInstance('.MMP_x.staging', 'ImapMMP.config', '');
    oldInstance('bad name', 'ImapMMP.config', '');
    const r = await runCli(['--list', '--root', root], opts());
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      [
        `mplex1\tIMAP4\t${root}/mplex1`,
        `second\tPOP3\t${root}/MMP-second`,
        `third\tIMAP4\t${root}/MMP_third`,
        '',
      ].join('\n'),
    );
  });

  it('--modify changes an instance in its own directory, whatever its spelling', async () => {
    const dir = oldInstance(
      'mplex1',
      'ImapMMP.config',
      "LDAPHost='ldap1.example.com'\nexport LDAPHost\nBaseDN='o=old'\nexport BaseDN\n",
    );
    const person = new ScriptedPerson([['Base DN:', 'o=new']]);
    const r = await runCli(['--modify', 'mplex1', '--root', root], { ...opts(), prompter: person });
    expect(r.stderr).toBe('');
    // Without a LogDir (the guide's default '.', the instance directory, which the proxy's user
    // cannot write) it is offered a log directory of its own, as a new instance gets.
    expect(person.transcript.asked).toContain(
      `IMAP4 MMP LogDir: [${join(tmp.path, 'log', 'mplex1')}] => `,
    );
    expect(r.code).toBe(0);
    expect(person.transcript.asked).toContain('LDAP Host: [ldap1.example.com] => ');
    expect(r.stdout).toContain(`Updated instance mplex1 in ${dir}:`);
    const config = readFileSync(join(dir, 'ImapMMP.config'), 'utf8');
    expect(config).toContain("BaseDN='o=new'");
    // The start script and unit are written beside the config, and point at it.
    expect(readFileSync(join(dir, 'ImapMMP'), 'utf8')).toContain(`MMP_INSTANCE_DIR='${dir}'`);
    expect(readFileSync(join(dir, 'mmp-mplex1-imap.service'), 'utf8')).toContain(
      `ExecStart="${dir}/ImapMMP" run`,
    );
    expect(existsSync(join(root, 'MMP_mplex1'))).toBe(false);

    // --answers naming it updates the same directory; so does the guide's MMP- spelling.
    const pop = oldInstance(
      'MMP-second',
      'PopMMP.config',
      'setenv BaseDN o=example.com\nsetenv LogDir /tmp\n',
    );
    writeFileSync(join(tmp.path, 'b.yaml'), `root: ${root}\ninstance: second\nLogLevel: 4\n`);
    const b = await runCli(['--answers', join(tmp.path, 'b.yaml'), '--yes'], opts());
    expect(b.stderr).toBe('');
    expect(b.code).toBe(0);
    expect(readFileSync(join(pop, 'PopMMP.config'), 'utf8')).toContain("LogLevel='4'");
    expect(existsSync(join(root, 'MMP_second'))).toBe(false);
  });

  it('refuses an instance name two directories give, in one line, and writes nothing', async () => {
    oldInstance('MMP_twice', 'ImapMMP.config', "BaseDN='o=a'\nexport BaseDN\n");
    oldInstance('twice', 'ImapMMP.config', "BaseDN='o=b'\nexport BaseDN\n");
    const before = readFileSync(join(root, 'twice', 'ImapMMP.config'), 'utf8');
    const r = await runCli(['--modify', 'twice', '--root', root, '--yes'], opts());
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      `mmp-setup: instance twice: ${root}/MMP_twice and ${root}/twice both hold it; rename one\n`,
    );
    expect(readFileSync(join(root, 'twice', 'ImapMMP.config'), 'utf8')).toBe(before);
    expect(readdirSync(join(root, 'twice'))).toEqual(['ImapMMP.config']);
  });
});
