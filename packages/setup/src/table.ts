/**
 * The installer's one door onto the parameter table of `@mmp/config`. Every prompt, its order,
 * its y/n branch, its default and its validation come from there (STYLE.md: the table is the
 * only place a parameter is written); this module only turns table rows into dialogue steps.
 * Nothing in the installer names a parameter.
 */
import { existsSync, statSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import {
  type ParamName,
  type ParameterSpec,
  type Protocol,
  type Result,
  allParameters,
  err,
  findParameter,
  formatValue,
  ok,
  parseValue,
  promptText,
} from '@mmp/config';

export type Spec = ParameterSpec & { name: ParamName };

/** Textual values per protocol, as the config writer takes them. */
export type ValueMap = Partial<Record<ParamName, string>>;
export type ProtocolValues = Record<Protocol, ValueMap>;

export const PROTOCOL_LABEL: Record<Protocol, string> = { imap: 'IMAP4', pop3: 'POP3' };

/**
 * One question of the dialogue: a group of parameters asked together, optionally behind one y/n
 * branch (the guide's BindDN and BindPass share "Should the MMP bind to LDAP as someone in
 * particular"), for one or several protocols at once.
 */
export interface Step {
  readonly params: readonly Spec[];
  /** The guarding y/n question, already filled for the protocol; absent: always asked. */
  readonly branch?: string;
  /** Boolean parameter that must be yes (for every protocol of the step) for it to be asked. */
  readonly dependsOn?: ParamName;
  /** The protocols this step's answers are written for. */
  readonly protocols: readonly Protocol[];
  /**
   * Set when the chosen services share a question that must be answered per protocol (ports,
   * log directory): then the text is prefixed or filled with this protocol.
   */
  readonly label?: Protocol;
}

const PLACEHOLDER = '[IMAP4/POP3]';

/**
 * A parameter is asked once per protocol when the guide's text itself is per protocol (the
 * `[IMAP4/POP3]` placeholder), when the table gives the protocols different defaults (ports:
 * 143/110, 993/995; the server-down text), or when the current values already differ. Everything
 * else is asked once and written to every chosen protocol's file: asking "Base DN" twice would
 * only invite typos.
 */
function perProtocol(spec: Spec, services: readonly Protocol[], current: ProtocolValues): boolean {
  const applicable = services.filter((p) => spec.protocols.includes(p));
  if (applicable.length < 2) return false;
  const prompt = spec.prompt;
  if (prompt?.question.includes(PLACEHOLDER) || prompt?.branch?.includes(PLACEHOLDER)) return true;
  const distinct = (f: (p: Protocol) => string | undefined): boolean =>
    new Set(applicable.map(f)).size > 1;
  if (distinct((p) => spec.defaults[p])) return true;
  // Only protocols that already have a configuration can disagree (adding POP3 to an IMAP
  // instance must not split every question in two).
  const configured = applicable.filter((p) => Object.keys(current[p]).length > 0);
  return new Set(configured.map((p) => current[p][spec.name])).size > 1;
}

/** The prompted parameters for the chosen services, grouped into steps, in the table's order. */
export function dialogueSteps(
  services: readonly Protocol[],
  current: ProtocolValues,
): readonly Step[] {
  const prompted = allParameters()
    .filter((p) => p.prompt !== undefined && services.some((s) => p.protocols.includes(s)))
    .sort((a, b) => (a.prompt?.order ?? 0) - (b.prompt?.order ?? 0));

  // Consecutive rows with the same branch text form one group (one y/n for all of them).
  const groups: Spec[][] = [];
  for (const spec of prompted) {
    const last = groups.at(-1);
    const head = last?.[0];
    const sameBranch =
      head !== undefined &&
      spec.prompt?.branch !== undefined &&
      head.prompt?.branch === spec.prompt.branch &&
      head.prompt.dependsOn === spec.prompt.dependsOn;
    if (last !== undefined && sameBranch) last.push(spec);
    else groups.push([spec]);
  }

  const steps: Step[] = [];
  for (const group of groups) {
    const head = group[0];
    if (head === undefined) continue;
    const protocols = services.filter((s) => group.some((g) => g.protocols.includes(s)));
    const dependsOn = head.prompt?.dependsOn as ParamName | undefined;
    // A step depending on a per-protocol yes/no is asked once per protocol when its own rows are
    // per protocol, and otherwise once for the protocols that said yes (see dialogue.ts).
    const split = group.some((g) => perProtocol(g, services, current));
    const branchFor = (p: Protocol | undefined): string | undefined => {
      const b = head.prompt?.branch;
      if (b === undefined) return undefined;
      return labelled(b, p, protocols);
    };
    if (split) {
      for (const p of protocols) {
        const branch = branchFor(p);
        steps.push({
          params: group,
          protocols: [p],
          label: p,
          ...(branch !== undefined ? { branch } : {}),
          ...(dependsOn !== undefined ? { dependsOn } : {}),
        });
      }
    } else {
      const only = protocols.length === 1 ? protocols[0] : undefined;
      const branch = branchFor(only);
      steps.push({
        params: group,
        protocols,
        ...(branch !== undefined ? { branch } : {}),
        ...(dependsOn !== undefined ? { dependsOn } : {}),
      });
    }
  }
  return steps;
}

/**
 * The text of a question for a step: the guide's `[IMAP4/POP3]` filled with the protocol; when
 * the services are both and the text names none, "(IMAP4) " in front so the operator knows which
 * of the two answers this is.
 */
function labelled(text: string, p: Protocol | undefined, all: readonly Protocol[]): string {
  if (p === undefined) return text;
  if (text.includes(PLACEHOLDER)) return promptText(text, p);
  return all.length > 1 ? `(${PROTOCOL_LABEL[p]}) ${text}` : text;
}

export function questionText(spec: Spec, step: Step, services: readonly Protocol[]): string {
  const q = spec.prompt?.question ?? spec.name;
  const only = step.protocols.length === 1 ? step.protocols[0] : undefined;
  return labelled(q, step.label ?? only, step.label !== undefined ? services : step.protocols);
}

export function isBoolean(spec: Spec): boolean {
  return spec.kind === 'boolean';
}

export function tableDefault(spec: Spec, protocol: Protocol): string | undefined {
  return spec.defaults[protocol];
}

/**
 * Whether the value is a file that must exist when the installer writes it: what the table says
 * (CertMapFile), else a path parameter without a default is a file the operator points to
 * (vdmap, spoof message, certificate, key), while a path with a default (LogDir ".") names a
 * place the proxy copes with being absent.
 */
export function mustExist(spec: Spec): 'file' | 'dir' | undefined {
  if (spec.mustExist !== undefined) return spec.mustExist;
  if (spec.kind !== 'path') return undefined;
  return Object.keys(spec.defaults).length === 0 ? 'file' : undefined;
}

export interface ValidateContext {
  /** Relative file names are made absolute against this directory (the operator's cwd). */
  readonly cwd: string;
}

/**
 * Check one answer exactly as the table's parser would read it back, and return the text to
 * write (normalised by formatValue so `Y` becomes `yes` and `143` stays `143`).
 */
export function validateValue(
  spec: Spec,
  raw: string,
  ctx: ValidateContext,
): Result<string, string> {
  const parsed = parseValue(spec, raw);
  if (!parsed.ok) return parsed;
  let text = formatValue(spec, parsed.value);
  const need = mustExist(spec);
  if (need !== undefined && text.trim() !== '') {
    // The proxy runs in the instance directory; an absolute name means the same file there.
    const abs = isAbsolute(text) ? text : resolve(ctx.cwd, text);
    if (!existsSync(abs)) return err(`${spec.name}: ${abs} does not exist`);
    const st = statSync(abs);
    if (need === 'file' && !st.isFile()) return err(`${spec.name}: ${abs} is not a file`);
    if (need === 'dir' && !st.isDirectory()) return err(`${spec.name}: ${abs} is not a directory`);
    text = abs;
  }
  return ok(text);
}

/**
 * Listening addresses must not collide: with both services, or a plain and an SSL port, on one
 * machine, the second proxy would fail to bind. `effective` holds what this pass of the dialogue
 * has settled so far (answers and kept defaults), so a port given earlier can be moved later.
 */
export function listenConflict(
  spec: Spec,
  protocol: Protocol,
  text: string,
  effective: ProtocolValues,
): string | undefined {
  if (spec.kind !== 'listen') return undefined;
  const parsed = parseValue(spec, text);
  if (!parsed.ok) return undefined;
  const mine = parsed.value as { host?: string; port: number };
  for (const p of Object.keys(effective) as Protocol[]) {
    for (const other of allParameters()) {
      if (other.kind !== 'listen' || (p === protocol && other.name === spec.name)) continue;
      const raw = effective[p][other.name];
      if (raw === undefined) continue;
      const o = parseValue(other, raw);
      if (!o.ok) continue;
      const theirs = o.value as { host?: string; port: number };
      const overlap =
        theirs.port === mine.port &&
        (theirs.host === undefined || mine.host === undefined || theirs.host === mine.host);
      if (overlap)
        return `${spec.name}: ${text} is already taken by ${PROTOCOL_LABEL[p]} ${other.name}`;
    }
  }
  return undefined;
}

export function isYes(spec: Spec, text: string | undefined): boolean {
  if (text === undefined) return false;
  const v = parseValue(spec, text);
  return v.ok && v.value === true;
}

export function findSpec(name: string): Spec {
  const spec = findParameter(name);
  if (spec === undefined) throw new Error(`parameter table has no ${name}`);
  return spec;
}

/** Canonical name for an answers-file key (aliases accepted, as in config files). */
export function canonicalName(key: string): ParamName | undefined {
  return findParameter(key)?.name;
}

export function isSecret(name: ParamName): boolean {
  return findSpec(name).secret;
}

/** Table order, for stable summaries. */
export function tableOrder(): readonly ParamName[] {
  return allParameters().map((p) => p.name);
}
