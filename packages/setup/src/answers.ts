/**
 * The non-interactive form (`--answers FILE`, with `--yes`): a JSON or YAML file of answers for
 * configuration-management tools and tests. It is not a second implementation of the dialogue:
 * the answers become the dialogue's defaults and a prompter that presses Enter at every question
 * runs the very same dialogue, so the same validators produce the same messages.
 */
import { readFileSync } from 'node:fs';
import {
  INSTALLER_PARAMETERS,
  type Protocol,
  type Result,
  checkInstanceName,
  err,
  ok,
  suggestName,
} from '@mmp/config';
import { parse as parseYaml } from 'yaml';
import { type DialogueStart, SERVICE_MENU, checkRoot, checkUser, emptyValues } from './dialogue.js';
import type { Prompter, QuestionParameter } from './prompter.js';
import {
  PROTOCOL_LABEL,
  type ProtocolValues,
  canonicalName,
  findSpec,
  validateValue,
} from './table.js';

/** What an answers file says, before it is merged with an instance's current values. */
export interface AnswersFile {
  readonly user?: string;
  readonly root?: string;
  readonly instance?: string;
  readonly services?: readonly Protocol[];
  /** Per protocol: a text to set, or null to go back to the default. */
  readonly values: Record<Protocol, Record<string, string | null>>;
}

const META_KEYS = ['user', 'root', 'MMPRoot', 'instance', 'services'];

/** YAML scalars to the text a person would type: `true` → yes, `143` → 143. */
function scalarText(v: unknown): string | null | undefined {
  if (v === null) return null;
  if (typeof v === 'string') return v;
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  if (typeof v === 'boolean') return v ? 'yes' : 'no';
  // A YAML list for a comma-separated parameter (MailHostAttrs: [mailHost, host]).
  if (Array.isArray(v) && v.every((x) => typeof x === 'string' || typeof x === 'number'))
    return v.join(',');
  return undefined;
}

function parseServices(v: unknown): Result<readonly Protocol[], string> {
  const bad = err(
    `services: expected 1, 2, 3, imap, pop3, both or a list of imap and pop3, got ${JSON.stringify(v)}`,
  );
  if (Array.isArray(v)) {
    const out: Protocol[] = [];
    for (const x of v) {
      if (x !== 'imap' && x !== 'pop3') return bad;
      if (!out.includes(x)) out.push(x);
    }
    return out.length > 0 ? ok(out.sort()) : bad;
  }
  const s = typeof v === 'number' ? String(v) : typeof v === 'string' ? v.trim().toLowerCase() : '';
  if (s in SERVICE_MENU) return ok(SERVICE_MENU[s as '1' | '2' | '3']);
  if (s === 'imap' || s === 'imap4') return ok(['imap']);
  if (s === 'pop3' || s === 'pop') return ok(['pop3']);
  if (s === 'both') return ok(['imap', 'pop3']);
  return bad;
}

/** Parse an answers file's text (YAML 1.2, so JSON too). Errors name the key. */
export function parseAnswers(text: string, fileName: string): Result<AnswersFile, string[]> {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    return err([`${fileName}: ${(e as Error).message.split('\n')[0] ?? ''}`]);
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc))
    return err([`${fileName}: expected a mapping of answers (name: value)`]);

  const problems: string[] = [];
  const values: AnswersFile['values'] = { imap: {}, pop3: {} };
  let user: string | undefined;
  let root: string | undefined;
  let instance: string | undefined;
  let services: readonly Protocol[] | undefined;

  const take = (key: string, raw: unknown, protocols: readonly Protocol[]): void => {
    const name = canonicalName(key);
    if (name === INSTALLER_PARAMETERS.runAsUser) {
      problems.push(`${name}: one user runs both services: give it as "user:" at the top`);
      return;
    }
    if (name === undefined) {
      const hint = suggestName(key);
      problems.push(`unknown parameter '${key}'${hint ? ` (did you mean ${hint}?)` : ''}`);
      return;
    }
    const text = scalarText(raw);
    if (text === undefined) {
      problems.push(`${name}: expected a single value, got ${JSON.stringify(raw)}`);
      return;
    }
    for (const p of protocols) values[p][name] = text;
  };

  for (const [given, raw] of Object.entries(doc)) {
    // The config files' name for the installer's "user to run as".
    const key = given === INSTALLER_PARAMETERS.runAsUser ? 'user' : given;
    if (key === 'imap' || key === 'pop3') {
      if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
        problems.push(`${key}: expected a mapping of ${PROTOCOL_LABEL[key]} answers`);
        continue;
      }
      // Handled after the shared keys, so that a per-protocol answer wins.
      continue;
    }
    if (META_KEYS.includes(key)) {
      const text = scalarText(raw);
      if (key === 'services') {
        const s = parseServices(raw);
        if (s.ok) services = s.value;
        else problems.push(s.error);
        continue;
      }
      if (typeof text !== 'string') {
        problems.push(`${key}: expected a single value, got ${JSON.stringify(raw)}`);
        continue;
      }
      const check = key === 'user' ? checkUser : key === 'instance' ? checkInstanceName : checkRoot;
      const r = check(text);
      if (!r.ok) problems.push(r.error);
      else if (key === 'user') user = r.value;
      else if (key === 'instance') instance = r.value;
      else root = r.value;
      continue;
    }
    take(key, raw, ['imap', 'pop3']);
  }
  for (const p of ['imap', 'pop3'] as const) {
    const section = (doc as Record<string, unknown>)[p];
    if (section === null || typeof section !== 'object' || Array.isArray(section)) continue;
    for (const [key, raw] of Object.entries(section)) take(key, raw, [p]);
  }
  if (problems.length > 0) return err(problems.map((m) => `${fileName}: ${m}`));
  return ok({
    values,
    ...(user !== undefined ? { user } : {}),
    ...(root !== undefined ? { root } : {}),
    ...(instance !== undefined ? { instance } : {}),
    ...(services !== undefined ? { services } : {}),
  });
}

export function readAnswersFile(path: string): Result<AnswersFile, string[]> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    return err([`${path}: ${(e as Error).message}`]);
  }
  return parseAnswers(text, path);
}

/**
 * Lay answers over a starting point (an instance's current values, or nothing). Only the keys
 * that apply to the chosen services are taken, and each is checked by the same validator as at
 * the prompt — also the ones the dialogue never asks, which would otherwise go unchecked.
 */
export function mergeAnswers(
  start: DialogueStart,
  file: AnswersFile,
  cwd: string,
): Result<DialogueStart, string[]> {
  const services = file.services ?? start.services ?? ['imap'];
  const values: ProtocolValues = {
    imap: { ...(start.values?.imap ?? emptyValues().imap) },
    pop3: { ...(start.values?.pop3 ?? emptyValues().pop3) },
  };
  const problems: string[] = [];
  const given = new Set<string>();
  for (const p of services) {
    for (const [name, text] of Object.entries(file.values[p])) {
      const spec = findSpec(name);
      if (!spec.protocols.includes(p)) continue;
      given.add(name);
      if (text === null) {
        delete values[p][spec.name];
        continue;
      }
      const r = validateValue(spec, text, { cwd });
      if (!r.ok) problems.push(r.error);
      else values[p][spec.name] = r.value;
    }
  }
  // A key that applies to none of the chosen services is almost certainly a mistake.
  for (const p of ['imap', 'pop3'] as const)
    for (const name of Object.keys(file.values[p]))
      if (!given.has(name) && services.every((s) => !findSpec(name).protocols.includes(s)))
        problems.push(
          `${name}: does not apply to ${services.map((s) => PROTOCOL_LABEL[s]).join(' or ')}`,
        );
  if (problems.length > 0) return err([...new Set(problems)]);
  return ok({
    ...start,
    services,
    values,
    ...(file.user !== undefined ? { user: file.user } : {}),
    ...(file.root !== undefined ? { root: file.root } : {}),
    ...(file.instance !== undefined ? { instance: file.instance } : {}),
  });
}

/** Refused answer in the non-interactive form: the prompt's own message. */
export class AnswerError extends Error {
  override name = 'AnswerError';
}

/**
 * The person who always presses Enter: takes every default, and stops with the validator's
 * message where the interactive prompt would have asked again.
 */
export function defaultsPrompter(say: (text: string) => void): Prompter {
  const check = (v: string, validate?: (v: string) => true | string): string => {
    const r = validate?.(v) ?? true;
    if (r !== true) throw new AnswerError(r);
    return v;
  };
  return {
    input: (q) => Promise.resolve().then(() => check(q.default ?? '', q.validate)),
    password: (q) => Promise.resolve().then(() => check('', q.validate)),
    select: (q) =>
      Promise.resolve().then(() => {
        const v = q.default ?? q.choices[0]?.value;
        if (v === undefined) throw new AnswerError(`${q.message} no choice`);
        return v;
      }),
    say,
  };
}

/**
 * `--set [imap:|pop3:]Name=value`, repeatable: answers given on the command line, laid over an
 * answers file or an import (`--set SSLCertFile=/etc/ssl/mail.pem`). An empty value unsets the
 * parameter (its default applies), as null does in an answers file.
 */
export function parseSetOptions(items: readonly string[]): Result<AnswersFile, string[]> {
  const problems: string[] = [];
  const values: AnswersFile['values'] = { imap: {}, pop3: {} };
  let user: string | undefined;
  for (const item of items) {
    const m = /^(?:(imap|pop3):)?([A-Za-z][A-Za-z0-9_]*)=(.*)$/s.exec(item);
    if (m === null) {
      problems.push(`--set ${item}: expected [imap:|pop3:]Name=value`);
      continue;
    }
    const [, only, key = '', text = ''] = m;
    const name = canonicalName(key);
    if (name === undefined) {
      const hint = suggestName(key);
      problems.push(`--set: unknown parameter '${key}'${hint ? ` (did you mean ${hint}?)` : ''}`);
      continue;
    }
    if (name === INSTALLER_PARAMETERS.runAsUser) {
      const u = checkUser(text);
      if (u.ok) user = u.value;
      else problems.push(u.error);
      continue;
    }
    const protocols = only === undefined ? (['imap', 'pop3'] as const) : [only as Protocol];
    for (const p of protocols) values[p][name] = text === '' ? null : text;
  }
  if (problems.length > 0) return err(problems);
  return ok({ values, ...(user !== undefined ? { user } : {}) });
}

/** `top` over `base`: its values per protocol, and its user, root, instance and services. */
export function overlayAnswers(base: AnswersFile, top: AnswersFile): AnswersFile {
  return {
    ...base,
    ...top,
    values: {
      imap: { ...base.values.imap, ...top.values.imap },
      pop3: { ...base.values.pop3, ...top.values.pop3 },
    },
  };
}

/** A question the collecting prompter could not answer with its default. */
export interface Refusal {
  readonly message: string;
  readonly param?: QuestionParameter;
}

/**
 * Like defaultsPrompter, but a refused default is recorded and answered with nothing, which leaves
 * the parameter unset and lets the dialogue go on, so that everything missing is reported at once,
 * each with the option that answers it (`--import --yes`: the SSL files of an NSS-only
 * configuration). Nothing is written after a refusal.
 */
export function collectingPrompter(
  say: (text: string) => void,
): Prompter & { readonly refusals: Refusal[] } {
  const refusals: Refusal[] = [];
  const take = (
    v: string,
    validate: ((v: string) => true | string) | undefined,
    param: QuestionParameter | undefined,
  ): string => {
    const r = validate?.(v) ?? true;
    if (r === true) return v;
    refusals.push({ message: r, ...(param !== undefined ? { param } : {}) });
    return '';
  };
  const defaults = defaultsPrompter(say);
  return {
    refusals,
    input: (q) => Promise.resolve().then(() => take(q.default ?? '', q.validate, q.param)),
    password: (q) => Promise.resolve().then(() => take('', q.validate, q.param)),
    select: (q) => defaults.select(q),
    say,
  };
}

/** How to say "FILE" or "PORT" in an option a refusal asks for. */
function placeholder(name: string): string {
  const spec = findSpec(name);
  if (spec.secret) return 'PASSWORD';
  if (spec.kind === 'path') return 'FILE';
  if (spec.kind === 'port' || spec.kind === 'listen') return 'PORT';
  return 'VALUE';
}

/**
 * One line for everything the collecting prompter could not answer: per question group, which
 * parameters the proxy would miss, the `--set` options that give them, and those under which the
 * group is not asked at all.
 */
export function refusalLine(refusals: readonly Refusal[], services: readonly Protocol[]): string {
  const prefix = (protocols: readonly Protocol[]): string =>
    services.every((s) => protocols.includes(s)) ? '' : `${protocols.join(',')}:`;
  const unique = (xs: readonly string[]): string[] => [...new Set(xs)];
  const parts = unique(refusals.filter((r) => r.param === undefined).map((r) => r.message));
  const groups = new Map<string, QuestionParameter[]>();
  for (const r of refusals) {
    if (r.param === undefined) continue;
    const key = `${r.param.protocols.join(',')} ${r.param.avoidedBy.join(' ')}`;
    groups.set(key, [...(groups.get(key) ?? []), r.param]);
  }
  const clauses: string[] = [];
  for (const params of groups.values()) {
    const first = params[0];
    if (first === undefined) continue;
    const where = prefix(first.protocols);
    const label =
      where === '' ? '' : ` (${first.protocols.map((x) => PROTOCOL_LABEL[x]).join(', ')})`;
    const names = unique(params.map((p) => p.name));
    const add = names.map((n) => `--set ${where}${n}=${placeholder(n)}`);
    const instead = first.avoidedBy.map((alt) =>
      alt
        .split(' ')
        .map((a) => `--set ${where}${a}`)
        .join(' '),
    );
    clauses.push(
      `${names.join(', ')}${label}: add ${add.join(' ')}` +
        (instead.length > 0 ? ` (or ${instead.join(', or ')})` : ''),
    );
  }
  if (clauses.length > 0) parts.push(`the proxy would not start without ${clauses.join('; ')}`);
  return parts.join('; ');
}
