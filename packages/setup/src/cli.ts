/**
 * `mmp-setup`: arguments, the choice between the interactive and the answers-file form, and the
 * plan → apply → report sequence. Everything the process touches (streams, environment, prompts,
 * signals) comes in through CliIo, so the tests run it in-process.
 */
import { existsSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { type Protocol, checkInstanceName, findInstances, locateInstance } from '@mmp/config';
import {
  AnswerError,
  type AnswersFile,
  type Refusal,
  collectingPrompter,
  defaultsPrompter,
  mergeAnswers,
  overlayAnswers,
  parseSetOptions,
  readAnswersFile,
  refusalLine,
} from './answers.js';
import { type ApplyOptions, applyPlan } from './apply.js';
import { account, directoryWarnings } from './checks.js';
import {
  type DialogueEnv,
  DialogueError,
  type DialogueStart,
  checkRoot,
  runDialogue,
} from './dialogue.js';
import {
  confFilePath,
  listInstances,
  loadInstance,
  loadInstanceAt,
  recordedRoot,
  userExists,
} from './instances.js';
import { importAnswers, planImport, planText, readImportSources } from './import.js';
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
  --import DIR|FILE    take them from another multiplexor's configuration: the successors'
                       AService.cfg, ImapProxyAService.cfg, PopProxyAService.cfg, or a 4.x
                       ImapMMP.config / PopMMP.config (a directory: the ones it holds);
                       prints the plan, one line per setting not carried over or changed
  --instance NAME      the instance to create or update (with --import, --answers or alone)
  --set [imap:|pop3:]Name=value
                       an answer on the command line, over the file's (repeatable; an empty
                       value unsets it)
  --yes, -y            do not ask: accept the defaults (with --answers, the file's answers)
  --dry-run            as --yes, but write nothing: print the plan and what would be written
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

Import: mmp-setup --import /old/config --instance mail1 --dry-run, then --yes. A setting the
proxy needs and the files cannot give (a PEM certificate for an NSS database) is asked for, or
with --yes refused in one line naming the --set options to add.

Exit status: 0 done, 1 failed (nothing changed), 2 refused answer or bad usage, 130 interrupted.
`;

interface Options {
  help: boolean;
  list: boolean;
  yes: boolean;
  dryRun: boolean;
  modify?: string;
  answers?: string;
  root?: string;
  instance?: string;
  import: readonly string[];
  set: readonly string[];
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
        instance: { type: 'string' },
        import: { type: 'string', multiple: true },
        set: { type: 'string', multiple: true },
        'dry-run': { type: 'boolean' },
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
        dryRun: values['dry-run'] ?? false,
        import: values.import ?? [],
        set: values.set ?? [],
        ...(values.modify !== undefined ? { modify: values.modify } : {}),
        ...(values.answers !== undefined ? { answers: values.answers } : {}),
        ...(values.root !== undefined ? { root: values.root } : {}),
        ...(values.instance !== undefined ? { instance: values.instance } : {}),
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

  const importing = o.import.length > 0;
  const noPrompt = o.yes || o.dryRun;
  if (importing && o.modify !== undefined)
    return fail(
      EXIT.usage,
      '--import takes no --modify: --instance NAME names the instance to create or update',
    );
  const empty: AnswersFile = { values: { imap: {}, pop3: {} } };
  let file: AnswersFile | undefined = io.answers;
  if (o.answers !== undefined) {
    const a = readAnswersFile(o.answers);
    if (!a.ok) return fail(EXIT.usage, ...a.error);
    file = a.value;
    if (file.root !== undefined && o.root === undefined) root = file.root;
  }
  const sets = parseSetOptions(o.set);
  if (!sets.ok) return fail(EXIT.usage, ...sets.error);

  // --import: the plan is printed whatever follows; its values become the answers, under those
  // of --answers and --set (a password is better in an answers file than on a command line).
  if (importing) {
    if (noPrompt && o.instance === undefined && file?.instance === undefined)
      return fail(
        EXIT.usage,
        `--import with ${o.dryRun ? '--dry-run' : '--yes'} needs --instance NAME (the instance to create or update)`,
      );
    const sources = readImportSources(o.import);
    if (!sources.ok) return fail(EXIT.usage, ...sources.error);
    const given = overlayAnswers(file ?? empty, sets.value).values;
    const planned = planImport(sources.value, given);
    if (!planned.ok) return fail(EXIT.usage, ...planned.error);
    io.stdout(planText(planned.value));
    const imported = importAnswers(planned.value, undefined);
    file = file === undefined ? imported : overlayAnswers(imported, file);
  }
  if (o.instance !== undefined) {
    if (file?.instance !== undefined && file.instance !== o.instance)
      return fail(
        EXIT.usage,
        `--instance ${o.instance} and the answers' instance ${file.instance} differ`,
      );
    file = { ...(file ?? empty), instance: o.instance };
  }
  if (o.set.length > 0) file = overlayAnswers(file ?? empty, sets.value);

  // --modify NAME, or answers naming an instance that exists: its files are the start.
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
      // An import adds its services to the instance's; it never drops one.
      if (importing && file !== undefined)
        file = {
          ...file,
          services: [...new Set([...loaded.value.services, ...(file.services ?? [])])].sort(),
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
  const say = (t: string): void => io.stdout(t.endsWith('\n') ? t : `${t}\n`);
  // An import without prompts reports everything it lacks at once, with the options to add;
  // what the dialogue says (the summary) is shown only when nothing was lacking.
  const said: string[] = [];
  const collector = importing && noPrompt ? collectingPrompter((t) => said.push(t)) : undefined;
  const prompter =
    io.prompter ??
    collector ??
    (noPrompt
      ? defaultsPrompter(say)
      : terminalPrompter(io.signal !== undefined ? { signal: io.signal } : {}));
  const refused = (more: readonly Refusal[]): number =>
    fail(EXIT.usage, refusalLine(more, start.services ?? file?.services ?? ['imap']));
  let answers;
  try {
    answers = await runDialogue(prompter, env, start);
  } catch (e) {
    if (e instanceof AnswerError || e instanceof DialogueError)
      return collector !== undefined && collector.refusals.length > 0
        ? refused([
            ...collector.refusals,
            ...(collector.refusals.some((r) => r.message === e.message)
              ? []
              : [{ message: e.message }]),
          ])
        : fail(EXIT.usage, e.message);
    if (isPromptExit(e)) return fail(EXIT.interrupted, 'interrupted; nothing was written');
    throw e;
  }
  if (collector !== undefined && collector.refusals.length > 0) return refused(collector.refusals);
  said.forEach(say);

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

  if (o.dryRun) {
    const exists = listInstances(answers.root).includes(answers.instance);
    io.stdout(
      [
        `Dry run: would ${exists ? 'update' : 'create'} instance ${answers.instance} in ${plan.instanceDir}:`,
        ...plan.files.map((f) => `  ${plan.instanceDir}/${f.name}`),
        ...plan.dirs.map((d) => `  ${d.path}/  (log directory)`),
        'Nothing was written.',
        '',
      ].join('\n'),
    );
    return EXIT.ok;
  }

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
