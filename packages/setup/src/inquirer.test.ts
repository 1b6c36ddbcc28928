/**
 * The dialogue on real inquirer prompts (@inquirer/testing's virtual screen), typed key by key.
 */
import { input } from '@inquirer/prompts';
import { render } from '@inquirer/testing';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { QUESTIONS, askYesNo, runDialogue } from './dialogue.js';
import { inputConfig } from './prompter.js';
import { findSpec, validateValue } from './table.js';
import { type TempDir, fakeEnv, tempDir } from './test-support/fixtures.js';
import { type ScreenLog, renderPrompter } from './test-support/person.js';

let tmp: TempDir;
beforeEach(() => {
  tmp = tempDir();
});
afterEach(() => tmp.cleanup());

const settle = async (): Promise<void> => {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
};

describe('single prompts on a virtual screen', () => {
  it('the port prompt shows its default, refuses a non-port and accepts a port', async () => {
    const spec = findSpec('ListenPort');
    const { answer, events, getScreen } = await render(
      input,
      inputConfig({
        message: 'Which port:',
        default: '143',
        validate: (v) => {
          const r = validateValue(spec, v, { cwd: '/' });
          return r.ok ? true : r.error;
        },
      }),
    );
    expect(getScreen()).toBe('? Which port: (143)');
    events.type('14x');
    events.keypress('enter');
    await settle();
    // The virtual screen is 80 columns wide: compare with the wrapping undone.
    expect(getScreen().replace(/\s+/g, ' ')).toContain(
      "> ListenPort: expected [IP:]port with port 1–65535, got '14x' (the port is missing)",
    );
    // The refused text stays on the line (validationFailureMode 'keep') to be corrected.
    events.keypress('backspace');
    events.type('3');
    events.keypress('enter');
    await expect(answer).resolves.toBe('143');
    expect(getScreen()).toBe('✔ Which port: 143');
  });

  it('a y/n question of the guide takes Enter as its default and refuses other words', async () => {
    const log: ScreenLog = { screens: [] };
    const p = renderPrompter(
      [
        ['(y/n)', 'perhaps'],
        ['(y/n)', 'Y'],
      ],
      log,
    );
    await expect(
      askYesNo(p, 'Should the MMP listen on a non-default port (y/n):', false),
    ).resolves.toBe(true);
    expect(log.screens[0]).toBe('? Should the MMP listen on a non-default port (y/n): (n)');
    expect(log.screens).toContain(
      '? Should the MMP listen on a non-default port (y/n): perhaps\n> Please answer y or n.',
    );
  });
});

describe('the whole dialogue on inquirer prompts', () => {
  it('creates an IMAP instance as a person typing at the screen would', async () => {
    const log: ScreenLog = { screens: [] };
    const root = join(tmp.path, 'mmp');
    const p = renderPrompter(
      [
        [QUESTIONS.user, 'nsmmp'],
        [QUESTIONS.root, root],
        [QUESTIONS.name, 'screen'],
        ['1 - Configure', '1'],
        ['Base DN:', 'o=example.com'],
        ['Should the MMP bind to LDAP as someone in particular', 'y'],
        ['What user should the MMP authenticate as:', 'cn=Directory Manager'],
        ['password for "BindDN"', 'pw'],
        ['Should the MMP listen on a non-default port (y/n):', 'y'],
        ['Which port:', 'no'],
        ['Which port:', '1143'],
      ],
      log,
    );
    const answers = await runDialogue(p, fakeEnv(tmp.path), { root: '/opt/mmp' });
    expect(answers).toMatchObject({ user: 'nsmmp', root, instance: 'screen', services: ['imap'] });
    expect(answers.values.imap).toMatchObject({
      BaseDN: 'o=example.com',
      ListenPort: '1143',
      BindDN: 'cn=Directory Manager',
      BindPass: 'pw',
    });
    const screens = log.screens.join('\n---\n');
    expect(screens).toContain('? What user should the MMP run as: (nobody)');
    expect(screens).toContain(
      '? 1 - Configure this instance for IMAP mail service\n2 - Configure this instance for POP3 mail service\n3 - Configure this instance for both IMAP4 and POP3 mail service\nEnter 1, 2 or 3: (1)',
    );
    expect(screens).toContain('> ListenPort: expected [IP:]port with port 1–65535, got');
    // The password is echoed as stars only.
    expect(screens).not.toMatch(/What's the password for "BindDN": pw/);
    expect(screens).toContain('BindPass=******');
  });

  it('certificate login on the screen: after SSL, a refused certmap path shown, the StoreAdmin password as stars', async () => {
    const log: ScreenLog = { screens: [] };
    const pki = join(tmp.path, 'pki');
    mkdirSync(pki);
    const f = (n: string): string => join(pki, n);
    for (const n of ['server.pem', 'server.key', 'certmap.conf', 'ca.pem'])
      writeFileSync(f(n), 'x');
    const p = renderPrompter(
      [
        [QUESTIONS.root, join(tmp.path, 'mmp')],
        [QUESTIONS.name, 'screen'],
        ['Should the IMAP4 MMP do SSL (y/n):', 'y'],
        ['server certificate file', f('server.pem')],
        ['private key file', f('server.key')],
        ['Should the MMP accept certificate-based client authentication (y/n):', 'y'],
        ['certmap.conf file', f('nope.conf')],
        ['certmap.conf file', f('certmap.conf')],
        ['issues client certificates', f('ca.pem')],
        ['What store administrator', 'mmpstore'],
        ['password for "StoreAdmin"', 'seen-by-no-one'],
      ],
      log,
    );
    const answers = await runDialogue(p, fakeEnv(tmp.path), { root: '/opt/mmp' });
    expect(answers.values.imap).toMatchObject({
      CertMapFile: f('certmap.conf'),
      SSLClientCAFile: f('ca.pem'),
      StoreAdmin: 'mmpstore',
      StoreAdminPass: 'seen-by-no-one',
    });
    const screens = log.screens.join('\n---\n');
    expect(screens).toContain(
      '? Should the MMP accept certificate-based client authentication (y/n): (n)',
    );
    expect(screens.replace(/\s+/g, ' ')).toContain(
      `> CertMapFile: ${f('nope.conf')} does not exist`,
    );
    expect(screens).not.toContain('seen-by-no-one');
    expect(screens).toContain('StoreAdminPass=******');
  });

  it('chooses an existing instance with the arrow keys', async () => {
    const log: ScreenLog = { screens: [] };
    const env = fakeEnv(tmp.path, ['nobody'], {
      alpha: { services: ['pop3'], values: { imap: {}, pop3: { BaseDN: 'o=alpha' } } },
      beta: { services: ['imap'], values: { imap: { BaseDN: 'o=beta' }, pop3: {} } },
    });
    const p = renderPrompter([[QUESTIONS.existing, 'Configure instance beta']], log);
    const answers = await runDialogue(p, env, { root: join(tmp.path, 'mmp') });
    expect(answers.instance).toBe('beta');
    expect(answers.services).toEqual(['imap']);
    expect(answers.values.imap.BaseDN).toBe('o=beta');
    expect(log.screens.join('\n')).toContain(
      '? Configure an existing instance or create a new one:',
    );
  });
});
