/**
 * The installer dialogue of the guide ("Creating a Multiplexor Instance (Unix)", steps 1–10, and
 * Table 13.7), asked through an injected Prompter. Pure apart from the DialogueEnv it is given:
 * it decides nothing about files, it only returns the answers.
 */
import {
  INSTALLER_PARAMETERS,
  PROTOCOLS,
  type Protocol,
  type Result,
  checkInstanceName,
  configFileName,
} from '@mmp/config';
import { defaultLogDir } from './layout.js';
import type { Prompter } from './prompter.js';
import {
  PROTOCOL_LABEL,
  type ProtocolValues,
  type Spec,
  type Step,
  dialogueSteps,
  findSpec,
  isBoolean,
  isSecret,
  isYes,
  listenConflict,
  questionText,
  tableOrder,
  validateValue,
} from './table.js';

export interface Answers {
  /** The Unix user the proxies run as (guide step 1). */
  readonly user: string;
  /** MMPRoot (guide step 3). */
  readonly root: string;
  readonly instance: string;
  readonly services: readonly Protocol[];
  /** What goes into each protocol's config file (textual, validated). */
  readonly values: ProtocolValues;
}

export interface LoadedInstance {
  readonly user?: string;
  readonly services: readonly Protocol[];
  readonly values: ProtocolValues;
}

/** What the dialogue needs to know about the machine. */
export interface DialogueEnv {
  readonly cwd: string;
  /** Default instance name (guide step 5: the host name). */
  readonly hostName: string;
  userExists(name: string): boolean;
  /** Where a new instance's log directory goes (layout.ts). */
  readonly logRoot: string;
  listInstances(root: string): readonly string[];
  loadInstance(root: string, name: string): Result<LoadedInstance, string>;
}

/** Where the dialogue starts: defaults from the command line, an answers file or `--modify`. */
export interface DialogueStart {
  readonly user?: string;
  readonly root: string;
  readonly instance?: string;
  readonly services?: readonly Protocol[];
  readonly values?: ProtocolValues;
  /** `--modify NAME`: MMPRoot and the instance are fixed, the rest is asked. */
  readonly modify?: boolean;
}

// The installer's own questions (not parameters, so not in the table). The guide gives the
// menu's texts; the others follow its wording ("the user name that Multiplexor should run as").
export const QUESTIONS = {
  user: 'What user should the MMP run as:',
  root: 'Installation directory (MMPRoot):',
  existing: 'Configure an existing instance or create a new one:',
  newChoice: 'Create a new instance',
  name: 'Name of the new instance:',
  services: [
    '1 - Configure this instance for IMAP mail service',
    '2 - Configure this instance for POP3 mail service',
    '3 - Configure this instance for both IMAP4 and POP3 mail service',
    'Enter 1, 2 or 3:',
  ].join('\n'),
  confirm: 'Is this information correct (y/n):',
} as const;

/** The package's own system user (scripts/package creates it), the default run-as user. */
export const PACKAGE_USER = 'mmp';
/** Where that user does not exist (a checkout): the guide's usual choice. */
export const FALLBACK_USER = 'nobody';

export function defaultUser(env: Pick<DialogueEnv, 'userExists'>): string {
  return env.userExists(PACKAGE_USER) ? PACKAGE_USER : FALLBACK_USER;
}

/** The menu numbers of guide step 7. */
export const SERVICE_MENU: Record<'1' | '2' | '3', readonly Protocol[]> = {
  '1': ['imap'],
  '2': ['pop3'],
  '3': ['imap', 'pop3'],
};

export function menuNumber(services: readonly Protocol[]): '1' | '2' | '3' {
  if (services.includes('imap') && services.includes('pop3')) return '3';
  return services.includes('pop3') ? '2' : '1';
}

// POSIX portable user names (useradd's default rule). Instance names (safe in a path, a shell
// script and a systemd unit name) are checked by `@mmp/config` checkInstanceName, which the
// instance finder shares.
const USER_RE = /^[a-z_][a-z0-9_-]*\$?$/i;

export function checkUser(name: string): Result<string, string> {
  const v = name.trim();
  return USER_RE.test(v) && v.length <= 32
    ? { ok: true, value: v }
    : { ok: false, error: `user: '${name}' is not a valid user name` };
}

export function checkRoot(path: string): Result<string, string> {
  const v = path.trim().replace(/(.)\/+$/, '$1');
  if (!v.startsWith('/')) return { ok: false, error: `MMPRoot: '${path}' is not an absolute path` };
  // It ends up in shell scripts and systemd units: quotes and backslashes would need a second
  // quoting scheme each, and no sane installation directory has them.
  const control = [...v].some((c) => c.charCodeAt(0) < 0x20);
  if (control || /["'\\`$]/.test(v))
    return { ok: false, error: `MMPRoot: '${path}' has quotes, $, \\ or control characters` };
  return { ok: true, value: v };
}

export function userWarning(user: string): string {
  return `Warning: user '${user}' does not exist in /etc/passwd; create it (useradd --system ${user}) before starting the instance.`;
}

const NEW = '+new';

export const emptyValues = (): ProtocolValues => ({ imap: {}, pop3: {} });

function copyValues(v: ProtocolValues | undefined): ProtocolValues {
  return { imap: { ...(v?.imap ?? {}) }, pop3: { ...(v?.pop3 ?? {}) } };
}

const asValidate =
  <T>(check: (v: string) => Result<T, string>) =>
  (v: string): true | string => {
    const r = check(v);
    return r.ok ? true : r.error;
  };

function yesNo(raw: string): boolean | undefined {
  const v = raw.trim().toLowerCase();
  if (v === 'y' || v === 'yes') return true;
  if (v === 'n' || v === 'no') return false;
  return undefined;
}

/**
 * A y/n question of the guide. Asked as text rather than inquirer's confirm, because the guide's
 * questions already end in "(y/n):" and confirm would print a second "(y/N)".
 */
export async function askYesNo(p: Prompter, message: string, dflt: boolean): Promise<boolean> {
  const answer = await p.input({
    message,
    default: dflt ? 'y' : 'n',
    validate: (v) => (yesNo(v) === undefined ? 'Please answer y or n.' : true),
  });
  return yesNo(answer) ?? dflt;
}

/** Run the whole dialogue; loops until the summary is confirmed. */
export async function runDialogue(
  p: Prompter,
  env: DialogueEnv,
  start: DialogueStart,
): Promise<Answers> {
  let state = start;
  for (;;) {
    const answers = await onePass(p, env, state);
    p.say(summaryText(answers));
    if (await askYesNo(p, QUESTIONS.confirm, true)) return answers;
    // Guide step 9: "n" takes the operator back through the prompts, answers as defaults.
    state = { ...answers, modify: start.modify ?? false };
  }
}

async function onePass(p: Prompter, env: DialogueEnv, state: DialogueStart): Promise<Answers> {
  let user = (
    await p.input({
      message: QUESTIONS.user,
      default: state.user ?? defaultUser(env),
      validate: asValidate(checkUser),
    })
  ).trim();
  if (!env.userExists(user)) p.say(userWarning(user));

  let root = state.root;
  let instance = state.instance;
  let current = copyValues(state.values);
  let services = state.services;
  if (state.modify !== true) {
    root = checkRootOrThrow(
      await p.input({
        message: QUESTIONS.root,
        default: state.root,
        validate: asValidate(checkRoot),
      }),
    );
    const existing = env.listInstances(root);
    let choice = NEW;
    if (existing.length > 0) {
      const wasExisting = instance !== undefined && existing.includes(instance);
      choice = await p.select({
        message: QUESTIONS.existing,
        choices: [
          { value: NEW, name: QUESTIONS.newChoice },
          ...existing.map((n) => ({ value: n, name: `Configure instance ${n}` })),
        ],
        default: wasExisting && instance !== undefined ? instance : NEW,
      });
    }
    if (choice === NEW) {
      const taken = new Set(existing);
      const suggested =
        instance !== undefined && !taken.has(instance) ? instance : defaultName(env, taken);
      instance = (
        await p.input({
          message: QUESTIONS.name,
          default: suggested,
          validate: (v) => {
            const r = checkInstanceName(v);
            if (!r.ok) return r.error;
            return taken.has(r.value)
              ? `instance: ${r.value} already exists; choose it in the list above to change it`
              : true;
          },
        })
      ).trim();
    } else if (choice !== state.instance || state.values === undefined) {
      // Another instance than the one whose answers we carry: its files are the defaults.
      const loaded = env.loadInstance(root, choice);
      if (!loaded.ok) throw new DialogueError(loaded.error);
      instance = choice;
      current = copyValues(loaded.value.values);
      services = loaded.value.services;
      // The user was asked before the instance was known (the guide's order); an Enter there
      // must not silently change who an existing instance runs as.
      const recorded = loaded.value.user;
      if (recorded !== undefined && recorded !== user) {
        user = (
          await p.input({
            message: `Instance ${choice} runs as ${recorded}. ${QUESTIONS.user}`,
            default: recorded,
            validate: asValidate(checkUser),
          })
        ).trim();
        if (!env.userExists(user)) p.say(userWarning(user));
      }
    }
  }
  if (instance === undefined) throw new DialogueError('no instance name');
  if (state.modify !== true && !env.listInstances(root).includes(instance))
    // A new instance logs where its user can write (issue 12), unless told otherwise.
    for (const pr of ['imap', 'pop3'] as const)
      current[pr][INSTALLER_PARAMETERS.logDir] ??= defaultLogDir(env.logRoot, instance);

  const menu = await p.input({
    message: QUESTIONS.services,
    default: menuNumber(services ?? ['imap']),
    validate: (v) => (v.trim() in SERVICE_MENU ? true : 'Please enter 1, 2 or 3.'),
  });
  const chosen = SERVICE_MENU[menu.trim() as '1' | '2' | '3'];
  // A protocol without a LogDir (added to an instance, or imported from another host's files)
  // logs where the other one does, else where a new instance would: not in the root-owned
  // instance directory, the guide's default, where the proxy's user cannot write.
  const logDir = INSTALLER_PARAMETERS.logDir;
  for (const pr of chosen)
    current[pr][logDir] ??=
      PROTOCOLS.map((o) => current[o][logDir]).find((d) => d !== undefined) ??
      defaultLogDir(env.logRoot, instance);
  const values = await askParameters(p, chosen, current, env.cwd);
  return { user, root, instance, services: chosen, values };
}

function checkRootOrThrow(v: string): string {
  const r = checkRoot(v);
  if (!r.ok) throw new DialogueError(r.error);
  return r.value;
}

function defaultName(env: DialogueEnv, taken: ReadonlySet<string>): string {
  // Host names may carry a domain; the first label makes a friendlier instance name.
  const host = checkInstanceName(env.hostName.split('.')[0] ?? '');
  const base = host.ok ? host.value : 'mmp';
  if (!taken.has(base)) return base;
  for (let i = 2; ; i++) if (!taken.has(`${base}${i}`)) return `${base}${i}`;
}

/** The parameter prompts (Table 13.7) for the chosen services. */
export async function askParameters(
  p: Prompter,
  services: readonly Protocol[],
  current: ProtocolValues,
  cwd: string,
): Promise<ProtocolValues> {
  // Parameters that are not asked (or whose step is skipped) keep their current value: --modify
  // must not lose what an operator wrote by hand.
  const result = copyValues(current);
  const effective = emptyValues();
  for (const step of dialogueSteps(services, current)) {
    const protos = unlessSet(p, step, stepProtocols(step, result), result);
    if (protos.length === 0) continue;
    // What the operator could set instead of answering (for --import --yes's refusal): each
    // alternative turns the whole step off.
    const avoidedBy: string[] = [];
    if (step.dependsOn !== undefined) avoidedBy.push(`${step.dependsOn}=no`);
    if (step.branch !== undefined) {
      const customised = step.params.filter((s) =>
        protos.some((pr) => {
          const v = current[pr][s.name];
          return v !== undefined && v !== s.defaults[pr];
        }),
      );
      if (customised.length > 0) avoidedBy.push(customised.map((s) => `${s.name}=`).join(' '));
      // The branch's own parameter (Table 13.7's LDAPAuth), when the file sets it, decides.
      const records = step.params[0]?.prompt?.records;
      const recorded =
        records === undefined
          ? undefined
          : protos.map((pr) => current[pr][findSpec(records).name]).find((v) => v !== undefined);
      const dflt =
        records !== undefined && recorded !== undefined
          ? isYes(findSpec(records), recorded)
          : customised.length > 0;
      const yes = await askYesNo(p, step.branch, dflt);
      if (records !== undefined)
        for (const pr of protos) {
          // "n" is written (LDAPAuth=no: an anonymous search whatever BindDN says); "y" leaves
          // it to follow the values asked next (BindDN set: yes).
          if (yes) delete result[pr][findSpec(records).name];
          else result[pr][findSpec(records).name] = 'no';
        }
      if (!yes) {
        // "n" keeps the default (NOTES.md), so the file does not set it.
        for (const s of step.params)
          for (const pr of protos) {
            delete result[pr][s.name];
            const d = s.defaults[pr];
            if (d !== undefined) effective[pr][s.name] = d;
          }
        continue;
      }
    }
    for (const spec of step.params) {
      const applies = protos.filter((pr) => spec.protocols.includes(pr));
      const first = applies[0];
      if (first === undefined) continue;
      const text = await askValue(p, spec, step, services, {
        current: current[first][spec.name],
        dflt: spec.defaults[first],
        protocols: applies,
        effective,
        cwd,
        avoidedBy,
        // Behind a "yes", or with no default to fall back on (the certificate and key files
        // once SSL is on), an empty answer makes no sense; a password may be empty (none).
        required:
          step.branch !== undefined ||
          (spec.defaults[first] === undefined &&
            current[first][spec.name] === undefined &&
            !spec.secret),
      });
      for (const pr of applies) {
        if (text === undefined) delete result[pr][spec.name];
        else {
          result[pr][spec.name] = text;
          effective[pr][spec.name] = text;
        }
      }
    }
  }
  for (const pr of ['imap', 'pop3'] as const) if (!services.includes(pr)) result[pr] = {};
  return result;
}

/**
 * Leave out the protocols where the step's parameters are replaced by another one that is set
 * (LdapUrl replaces LDAPHost and BaseDN), and say so: the file keeps what it has.
 */
function unlessSet(
  p: Prompter,
  step: Step,
  protos: readonly Protocol[],
  values: ProtocolValues,
): readonly Protocol[] {
  const replaced = (pr: Protocol): string | undefined => {
    const names = step.params.map((s) => s.prompt?.unlessSet);
    const first = names[0];
    if (first === undefined || names.some((n) => n !== first)) return undefined;
    return values[pr][findSpec(first).name] === undefined ? undefined : first;
  };
  const kept = protos.filter((pr) => replaced(pr) === undefined);
  const by = protos.map(replaced).find((n) => n !== undefined);
  if (by !== undefined) {
    const asked = step.params.map((s) => questionText(s, step, protos)).join(' / ');
    p.say(`${asked} not asked: ${by} is set and replaces it.`);
  }
  return kept;
}

/** The protocols a step is asked for: those whose guarding yes/no (SSLEnable) is yes. */
function stepProtocols(step: Step, values: ProtocolValues): readonly Protocol[] {
  if (step.dependsOn === undefined) return step.protocols;
  const dep = findSpec(step.dependsOn);
  return step.protocols.filter((pr) => isYes(dep, values[pr][dep.name] ?? dep.defaults[pr]));
}

interface AskContext {
  readonly current: string | undefined;
  readonly dflt: string | undefined;
  readonly protocols: readonly Protocol[];
  readonly effective: ProtocolValues;
  readonly cwd: string;
  /** Behind a "yes": an empty answer makes no sense. */
  readonly required: boolean;
  /** Alternatives, each space-separated `Name=value`s, under which it would not be asked. */
  readonly avoidedBy: readonly string[];
}

/** One parameter's question; returns the text to write, or undefined for "leave unset". */
async function askValue(
  p: Prompter,
  spec: Spec,
  step: Step,
  services: readonly Protocol[],
  ctx: AskContext,
): Promise<string | undefined> {
  const message = questionText(spec, step, services);
  const shown = ctx.current ?? ctx.dflt;
  const param = { name: spec.name, protocols: ctx.protocols, avoidedBy: ctx.avoidedBy };
  const check = (raw: string): Result<string, string> => {
    const r = validateValue(spec, raw, { cwd: ctx.cwd });
    if (!r.ok) return r;
    for (const pr of ctx.protocols) {
      const clash = listenConflict(spec, pr, r.value, ctx.effective);
      if (clash !== undefined) return { ok: false, error: clash };
    }
    return r;
  };

  if (isBoolean(spec)) {
    const yes = await askYesNo(p, message, isYes(spec, shown));
    return validated(check(yes ? 'yes' : 'no'));
  }

  if (spec.secret) {
    // A password is never shown, not even as a default; Enter keeps the current one.
    const keep = ctx.current !== undefined && ctx.current !== '';
    const raw = await p.password({
      message: keep ? `${message} (Enter keeps the current one)` : message,
      param,
      validate: (v) => {
        if (v === '') return keep || !ctx.required ? true : `${spec.name}: a value is required`;
        const r = check(v);
        return r.ok ? true : r.error;
      },
    });
    if (raw === '') return keep ? ctx.current : undefined;
    return validated(check(raw));
  }

  const raw = await p.input({
    message,
    param,
    ...(shown !== undefined ? { default: shown } : {}),
    validate: (v) => {
      if (v.trim() === '') {
        // Unset is fine for an optional parameter that was not set before.
        return ctx.required ? `${spec.name}: a value is required` : true;
      }
      const r = check(v);
      return r.ok ? true : r.error;
    },
  });
  if (raw.trim() === '') return undefined;
  return validated(check(raw));
}

function validated(r: Result<string, string>): string {
  // The prompt's validator already accepted this exact text.
  if (!r.ok) throw new DialogueError(r.error);
  return r.value;
}

/** A dialogue that cannot go on (an instance that cannot be read): a message, not a crash. */
export class DialogueError extends Error {
  override name = 'DialogueError';
}

/** The summary of guide step 9. Secrets are masked. */
export function summaryText(a: Answers): string {
  const lines = [
    '',
    'Summary',
    `  User to run as:     ${a.user}`,
    `  MMPRoot:            ${a.root}`,
    `  Instance:           ${a.instance}`,
    `  Services:           ${a.services.map((s) => PROTOCOL_LABEL[s]).join(' and ')}`,
  ];
  for (const pr of a.services) {
    lines.push(`  ${configFileName(pr)}:`);
    const vals = a.values[pr];
    const names = tableOrder().filter((n) => vals[n] !== undefined);
    if (names.length === 0) lines.push('    (all defaults)');
    for (const n of names)
      lines.push(`    ${n}=${isSecret(n) ? '******' : JSON.stringify(vals[n] ?? '')}`);
  }
  lines.push('');
  return lines.join('\n');
}
