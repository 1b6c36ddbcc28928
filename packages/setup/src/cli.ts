/**
 * `mmp-setup`: arguments, the choice between the interactive and the answers-file form, and the
 * plan → apply → report sequence. Everything the process touches (streams, environment, prompts,
 * signals) comes in through CliIo, so the tests run it in-process.
 */
import { existsSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Protocol } from '@mmp/config';
import {
  AnswerError,
  type AnswersFile,
  defaultsPrompter,
  mergeAnswers,
  readAnswersFile,
} from './answers.js';
import { type ApplyOptions, applyPlan } from './apply.js';
import { account, directoryWarnings } from './checks.js';
import {
  type DialogueEnv,
  DialogueError,
  type DialogueStart,
  checkInstanceName,
  checkRoot,
  runDialogue,
} from './dialogue.js';
import {
  confFilePath,
  findInstances,
  listInstances,
  loadInstance,
  loadInstanceAt,
  locateInstance,
  recordedRoot,
  userExists,
} from './instances.js';
import { planInstance } from './plan.js';
import { type Prompter, terminalPrompter } from './prompter.js';
import { logRoot } from './layout.js';
import { reportText } from './report.js';
import { type Runtime, findRuntime } from './runtime.js';
import { pidFileName } from './scripts.js';
import { PROTOCOL_LABEL } from './table.js';

export interface CliIo {
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly cwd: string;
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  /** Defaults to real prompts on the terminal. */
  readonly prompter?: Prompter;
  /** Aborted on SIGINT/SIGTERM: prompts stop, a running apply rolls back. */
  readonly signal?: AbortSignal;
  readonly hostName?: string;
  readonly passwdFile?: string;
  /** Answers already parsed (`ImapProxy install -n`, options.ts), as if from --answers. */
  readonly answers?: AnswersFile;
  /** Override for tests: the runtime MMPRoot's launchers run. */
  readonly runtime?: Runtime;
  readonly onApplyStep?: ApplyOptions['onStep'];
}

export const EXIT = { ok: 0, failed: 1, usage: 2, interrupted: 130 } as const;

export const USAGE = `Usage: mmp-setup [options]

Create or change a Messaging Multiplexor instance (MMPRoot/MMP_<instance>/: ImapMMP.config,
PopMMP.config, the ImapMMP / PopMMP start scripts and systemd units).

  (no option)          ask the installer's questions (guide, Table 13.7)
  --modify NAME        change instance NAME: its current values are the defaults
  --list               list the instances under MMPRoot
  --answers FILE       take the answers from FILE (JSON or YAML) as the defaults
  --yes, -y            do not ask: accept the defaults (with --answers, the file's answers)
  --root DIR           MMPRoot, instead of the one recorded in the conf file
  --help, -h           this text

MMPRoot is recorded in /etc/netscape.mmp.conf (env MMP_CONF_FILE names another file);
without one it is /opt/mmp.

An answers file maps parameter names (as in the config files) to values, plus user, root
(or MMPRoot), instance and services (imap, pop3 or both). Values under an "imap:" or "pop3:"
key apply to that protocol only; null resets a parameter to its default. Example:
  instance: mail1
  services: both
  LDAPHost: ldap.example.com
  BaseDN: o=example.com
  imap: { ListenPort: 1143 }

Exit status: 0 done, 1 failed (nothing changed), 2 refused answer or bad usage, 130 interrupted.
`;

interface Options {
  help: boolean;
  list: boolean;
  yes: boolean;
  modify?: string;
  answers?: string;
  root?: string;
}

function parseOptions(
  argv: readonly string[],
): { ok: true; value: Options } | { ok: false; error: string } {
  try {
    const { values } = parseArgs({
      args: [...argv],
      options: {
        help: { type: 'boolean', short: 'h' },
        list: { type: 'boolean' },
        yes: { type: 'boolean', short: 'y' },
        modify: { type: 'string' },
        answers: { type: 'string' },
        root: { type: 'string' },
      },
      strict: true,
      allowPositionals: false,
    });
    return {
      ok: true,
      value: {
        help: values.help ?? false,
        list: values.list ?? false,
        yes: values.yes ?? false,
        ...(values.modify !== undefined ? { modify: values.modify } : {}),
        ...(values.answers !== undefined ? { answers: values.answers } : {}),
        ...(values.root !== undefined ? { root: values.root } : {}),
      },
    };
  } catch (e) {
    return { ok: false, error: (e as Error).message };
  }
}

/** Inquirer rejects with these when the person presses Ctrl-C or the signal aborts a prompt. */
function isPromptExit(e: unknown): boolean {
  return e instanceof Error && (e.name === 'ExitPromptError' || e.name === 'AbortPromptError');
}

/** A pid file naming a live process: that service is running. */
function runningPid(dir: string, p: Protocol): string | undefined {
  try {
    const pid = readFileSync(join(dir, pidFileName(p)), 'utf8').trim();
    return /^\d+$/.test(pid) && existsSync(`/proc/${pid}`) ? pid : undefined;
  } catch {
    return undefined;
  }
}

export async function main(io: CliIo): Promise<number> {
  const fail = (code: number, ...messages: string[]): number => {
    for (const m of messages) io.stderr(`mmp-setup: ${m}\n`);
    return code;
  };
  const opts = parseOptions(io.argv);
  if (!opts.ok) return fail(EXIT.usage, opts.error, 'mmp-setup --help lists the options');
  const o = opts.value;
  if (o.help) {
    io.stdout(USAGE);
    return EXIT.ok;
  }

  const confPath = confFilePath(io.env);
  let root: string;
  if (o.root !== undefined) {
    const r = checkRoot(o.root);
    if (!r.ok) return fail(EXIT.usage, r.error);
    root = r.value;
  } else {
    const r = recordedRoot(confPath);
    if (!r.ok) return fail(EXIT.usage, r.error);
    root = r.value;
  }

  if (o.list) {
    const entries = findInstances(root);
    if (entries.length === 0) io.stdout(`No instances in ${root}.\n`);
    for (const e of entries) {
      const loaded = loadInstanceAt(e.dir, e.name);
      const what = loaded.ok
        ? loaded.value.services.map((s) => PROTOCOL_LABEL[s]).join('+')
        : `unreadable: ${loaded.error.split('\n')[0] ?? ''}`;
      io.stdout(`${e.name}\t${what}\t${e.dir}\n`);
    }
    return EXIT.ok;
  }

  let file: AnswersFile | undefined = io.answers;
  if (o.answers !== undefined) {
    const a = readAnswersFile(o.answers);
    if (!a.ok) return fail(EXIT.usage, ...a.error);
    file = a.value;
    if (file.root !== undefined && o.root === undefined) root = file.root;
  }

  // --modify NAME, or an answers file naming an instance that exists: its files are the start.
  let start: DialogueStart = { root };
  const target = o.modify ?? file?.instance;
  if (target !== undefined) {
    const n = checkInstanceName(target);
    if (!n.ok) return fail(EXIT.usage, n.error);
    if (o.modify !== undefined && file?.instance !== undefined && file.instance !== n.value)
      return fail(
        EXIT.usage,
        `--modify ${n.value} and the answers' instance ${file.instance} differ`,
      );
    if (o.modify !== undefined || listInstances(root).includes(n.value)) {
      const loaded = loadInstance(root, n.value);
      if (!loaded.ok) return fail(EXIT.usage, loaded.error);
      start = {
        root,
        instance: n.value,
        modify: true,
        services: loaded.value.services,
        values: loaded.value.values,
        ...(loaded.value.user !== undefined ? { user: loaded.value.user } : {}),
      };
    } else start = { root, instance: n.value };
  }
  if (file !== undefined) {
    const merged = mergeAnswers(start, file, io.cwd);
    if (!merged.ok) return fail(EXIT.usage, ...merged.error);
    start = merged.value;
  }

  const env: DialogueEnv = {
    cwd: io.cwd,
    hostName: io.hostName ?? hostname(),
    userExists: (u) => userExists(u, io.passwdFile),
    logRoot: logRoot(io.env),
    listInstances,
    loadInstance,
  };
  const prompter =
    io.prompter ??
    (o.yes
      ? defaultsPrompter((t) => io.stdout(t.endsWith('\n') ? t : `${t}\n`))
      : terminalPrompter(io.signal !== undefined ? { signal: io.signal } : {}));
  let answers;
  try {
    answers = await runDialogue(prompter, env, start);
  } catch (e) {
    if (e instanceof AnswerError || e instanceof DialogueError) return fail(EXIT.usage, e.message);
    if (isPromptExit(e)) return fail(EXIT.interrupted, 'interrupted; nothing was written');
    throw e;
  }

  const runtime = io.runtime ?? findRuntime();
  for (const m of runtime.missing)
    io.stderr(`mmp-setup: warning: ${m} does not exist yet (pnpm build in the checkout)\n`);
  // Root gives the log directories it makes to the run-as user; anyone else keeps them.
  const who = process.getuid?.() === 0 ? account(answers.user, io.passwdFile) : undefined;
  // An existing instance stays where it is, in whichever of the guide's spellings.
  const located = locateInstance(answers.root, answers.instance);
  if (!located.ok) return fail(EXIT.usage, located.error);
  const plan = planInstance(answers, {
    runtime,
    confPath,
    instanceDir: located.value,
    ...(who !== undefined ? { owner: who } : {}),
  });
  for (const p of ['imap', 'pop3'] as const) {
    const pid = answers.services.includes(p) ? undefined : runningPid(plan.instanceDir, p);
    if (pid !== undefined)
      return fail(
        EXIT.failed,
        `${PROTOCOL_LABEL[p]} of instance ${answers.instance} is running (pid ${pid}); stop it before removing the service`,
      );
  }

  const installer = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
  for (const w of directoryWarnings(answers, plan.instanceDir, installer, io.passwdFile))
    io.stderr(`mmp-setup: ${w}\n`);

  const applied = await applyPlan(plan, {
    ...(io.signal !== undefined ? { signal: io.signal } : {}),
    ...(io.onApplyStep !== undefined ? { onStep: io.onApplyStep } : {}),
  });
  if (!applied.ok) {
    const hint = /EACCES|EPERM|EROFS/.test(applied.error)
      ? [`(run it as root, or set MMP_CONF_FILE and choose an MMPRoot you can write)`]
      : [];
    return fail(
      io.signal?.aborted === true ? EXIT.interrupted : EXIT.failed,
      applied.error,
      ...hint,
    );
  }
  io.stdout(reportText(plan, applied.value));
  return EXIT.ok;
}
