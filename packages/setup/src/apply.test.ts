/**
 * Nothing half-written: a failure or an abort at any step of apply leaves the instance (and the
 * conf file) exactly as before, with no temporary files behind.
 */
import { chmodSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { applyPlan } from './apply.js';
import type { Answers } from './dialogue.js';
import { type Plan, planInstance } from './plan.js';
import { FAKE_RUNTIME, type TempDir, tempDir } from './test-support/fixtures.js';

let tmp: TempDir;
beforeEach(() => {
  tmp = tempDir();
});
afterEach(() => tmp.cleanup());

/** Every file under dir with its content and mode: the whole observable state. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string, rel: string): void => {
    let names: string[];
    try {
      names = readdirSync(d);
    } catch {
      return;
    }
    for (const n of names.sort()) {
      const p = join(d, n);
      const st = statSync(p);
      if (st.isDirectory()) {
        out[`${rel}${n}/`] = (st.mode & 0o777).toString(8);
        walk(p, `${rel}${n}/`);
      } else out[`${rel}${n}`] = `${(st.mode & 0o777).toString(8)} ${readFileSync(p, 'utf8')}`;
    }
  };
  walk(dir, '');
  return out;
}

function answers(root: string, over: Partial<Answers> = {}): Answers {
  return {
    user: 'nobody',
    root,
    instance: 'mx',
    services: ['imap', 'pop3'],
    values: {
      // A log directory that does not exist yet: made by the apply, taken back by a rollback.
      imap: {
        BaseDN: 'o=example.com',
        ListenPort: '1143',
        BindPass: 'secret',
        LogDir: `${root}-log/mx`,
      },
      pop3: { BaseDN: 'o=example.com', ListenPort: '1110' },
    },
    ...over,
  };
}

function plan(a: Answers): Plan {
  return planInstance(a, {
    runtime: FAKE_RUNTIME,
    confPath: join(tmp.path, 'etc', 'netscape.mmp.conf'),
  });
}

/**
 * Interrupt the n-th step, for n = 0, 1, 2, … until a run gets through: every step of this
 * very plan against this very tree is hit once. Returns the step names seen.
 */
async function interruptEachStep(
  p: Plan,
  how: 'abort' | 'throw',
  check: (at: string, r: Awaited<ReturnType<typeof applyPlan>>) => void,
): Promise<{ steps: string[]; final: Awaited<ReturnType<typeof applyPlan>> }> {
  const seen: string[] = [];
  for (let n = 0; n < 100; n++) {
    const ac = new AbortController();
    let i = 0;
    let at = '';
    const r = await applyPlan(p, {
      signal: ac.signal,
      onStep: (s) => {
        if (i++ !== n) return;
        at = s;
        if (how === 'abort') ac.abort();
        else throw new Error('disk full');
      },
    });
    if (at === '') {
      // No step left to interrupt: this run went through.
      expect(r.ok).toBe(true);
      return { steps: seen, final: r };
    }
    seen.push(at);
    check(at, r);
  }
  throw new Error('too many steps');
}

describe('applyPlan', () => {
  it('creates the instance with the planned files and modes', async () => {
    const root = join(tmp.path, 'opt', 'mmp');
    const p = plan(answers(root));
    const r = await applyPlan(p);
    expect(r).toEqual({ ok: true, value: { created: true, removed: [] } });
    const files = snapshot(root);
    expect(Object.keys(files)).toEqual([
      'MMP_mx/',
      'MMP_mx/ImapMMP',
      'MMP_mx/ImapMMP.config',
      'MMP_mx/PopMMP',
      'MMP_mx/PopMMP.config',
      'MMP_mx/mmp-mx-imap.service',
      'MMP_mx/mmp-mx-pop3.service',
      'bin/',
      'bin/ImapProxy',
      'bin/PopProxy',
      'mmp-setup',
    ]);
    expect(files['MMP_mx/']).toBe('755');
    expect(files['MMP_mx/ImapMMP.config']).toMatch(/^600 /);
    expect(files['MMP_mx/PopMMP.config']).toMatch(/^600 /);
    expect(files['MMP_mx/ImapMMP']).toMatch(/^755 #!\/bin\/sh/);
    expect(files['MMP_mx/mmp-mx-imap.service']).toMatch(/^644 /);
    expect(readFileSync(join(tmp.path, 'etc', 'netscape.mmp.conf'), 'utf8')).toContain(
      `MMPRoot='${root}'`,
    );
    // Table 13.6: MMPRoot/bin/ImapProxy, bin/PopProxy and mmp-setup run the installed runtime.
    const layout = snapshot(join(root, '..'));
    expect(layout['mmp/bin/ImapProxy']).toMatch(
      /^755 #!\/bin\/sh\n[^]*\nexec node '--max-semi-space-size=2' '\/opt\/test\/ImapProxy\.mjs' "\$@"\n$/,
    );
    expect(layout['mmp/bin/PopProxy']).toContain('\'/opt/test/PopProxy.mjs\' "$@"');
    expect(layout['mmp/mmp-setup']).toMatch(/\nexec node '\/opt\/test\/mmp-setup\.mjs' "\$@"\n$/);
    // The new log directory, private to its user.
    expect(layout['mmp-log/']).toBe('755');
    expect(layout['mmp-log/mx/']).toBe('750');
  });

  it('an abort or a failure at any step of a new instance leaves nothing behind', async () => {
    const root = join(tmp.path, 'opt', 'mmp');
    const p = plan(answers(root));
    const before = snapshot(tmp.path);
    for (const how of ['abort', 'throw'] as const) {
      const { steps } = await interruptEachStep(p, how, (at, r) => {
        expect(r, `${how} at ${at}`).toEqual({
          ok: false,
          error: `${how === 'abort' ? 'interrupted' : 'disk full'}; nothing was changed`,
        });
        expect(snapshot(tmp.path), `${how} at ${at}`).toEqual(before);
      });
      expect(steps).toContain('stage ImapMMP.config');
      expect(steps).toContain('instance directory');
      expect(steps).toContain(`directory ${root}-log/mx`);
      expect(steps).toContain(`file ${join(tmp.path, 'etc', 'netscape.mmp.conf')}`);
      // The run that got through created it: remove it for the next kind of interruption.
      tmp.cleanup();
      mkdirSync(tmp.path);
    }
  });

  it('an abort or a failure at any step of an update restores every file', async () => {
    const root = join(tmp.path, 'mmp');
    const conf = join(tmp.path, 'etc', 'netscape.mmp.conf');
    expect((await applyPlan(plan(answers(root)))).ok).toBe(true);
    // The operator has been running it: pid file, output, a hand-made file.
    writeFileSync(join(root, 'MMP_mx', 'ImapMMP.out'), 'log\n');
    writeFileSync(conf, "MMPRoot='/somewhere/else'\n");
    // The update drops POP3 and changes IMAP: every kind of step happens.
    const p = plan(
      answers(root, {
        services: ['imap'],
        user: 'nsmmp',
        values: { imap: { BaseDN: 'o=changed' }, pop3: {} },
      }),
    );
    const before = snapshot(tmp.path);
    const { steps } = await interruptEachStep(p, 'abort', (at, r) => {
      expect(r.ok, `abort at ${at}`).toBe(false);
      expect(snapshot(tmp.path), `abort at ${at}`).toEqual(before);
    });
    expect(steps).toEqual([
      'root',
      'stage ImapMMP.config',
      'stage ImapMMP',
      'stage mmp-mx-imap.service',
      'commit ImapMMP.config',
      'commit ImapMMP',
      'commit mmp-mx-imap.service',
      'remove PopMMP.config',
      'remove PopMMP',
      'remove mmp-mx-pop3.service',
      `file ${root}/bin/ImapProxy`,
      `file ${root}/bin/PopProxy`,
      `file ${root}/mmp-setup`,
      `file ${conf}`,
    ]);
    expect(readFileSync(join(root, 'MMP_mx', 'ImapMMP.config'), 'utf8')).toContain(
      "BaseDN='o=changed'",
    );
    // Back to the state before, to check failures the same way.
    const b = await applyPlan(plan(answers(root)));
    expect(b.ok).toBe(true);
    writeFileSync(conf, "MMPRoot='/somewhere/else'\n");
    expect(snapshot(tmp.path)).toEqual(before);
    const { final } = await interruptEachStep(p, 'throw', (at, r) => {
      expect(r, `failure at ${at}`).toEqual({
        ok: false,
        error: 'disk full; nothing was changed',
      });
      expect(snapshot(tmp.path), `failure at ${at}`).toEqual(before);
    });
    // The run that went through did the whole update.
    expect(final).toEqual({
      ok: true,
      value: { created: false, removed: ['PopMMP.config', 'PopMMP', 'mmp-mx-pop3.service'] },
    });
    expect(readFileSync(join(root, 'MMP_mx', 'ImapMMP.config'), 'utf8')).toContain(
      "BaseDN='o=changed'",
    );
    expect(readFileSync(join(root, 'MMP_mx', 'ImapMMP.config'), 'utf8')).toContain(
      "RunAsUser='nsmmp'",
    );
    expect(readFileSync(join(root, 'MMP_mx', 'ImapMMP.out'), 'utf8')).toBe('log\n');
    expect(readFileSync(conf, 'utf8')).toContain(`MMPRoot='${root}'`);
  });

  it('a real file-system failure in the middle rolls back (a directory in the way)', async () => {
    const root = join(tmp.path, 'mmp');
    expect((await applyPlan(plan(answers(root, { services: ['imap'] })))).ok).toBe(true);
    // Something sits where PopMMP's start script must go: that rename fails after the IMAP
    // files have already been replaced.
    mkdirSync(join(root, 'MMP_mx', 'PopMMP'));
    writeFileSync(join(root, 'MMP_mx', 'PopMMP', 'x'), 'x');
    const before = snapshot(tmp.path);
    const r = await applyPlan(plan(answers(root, { user: 'other' })));
    expect(r.ok).toBe(false);
    expect(snapshot(tmp.path)).toEqual(before);
  });

  it('fails cleanly when MMPRoot cannot be written', async () => {
    if (process.getuid?.() === 0) {
      // root ignores permissions; a file in the way of the directory does the same job.
      writeFileSync(join(tmp.path, 'ro'), 'not a directory');
    } else {
      mkdirSync(join(tmp.path, 'ro'));
      chmodSync(join(tmp.path, 'ro'), 0o555);
    }
    const before = snapshot(tmp.path);
    const r = await applyPlan(plan(answers(join(tmp.path, 'ro', 'mmp'))));
    expect(r.ok).toBe(false);
    expect(snapshot(tmp.path)).toEqual(before);
  });
});
