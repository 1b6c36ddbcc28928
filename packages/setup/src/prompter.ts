/**
 * How the dialogue asks. The dialogue only talks to this interface, so tests drive it with a
 * fake (a scripted person) or with real inquirer prompts on a virtual screen, and the executable
 * with real inquirer prompts on the terminal.
 */
import { input, password, select } from '@inquirer/prompts';
import type { Protocol } from '@mmp/config';

/** A validator returns true, or the message to show before asking again. */
export type Validate = (value: string) => true | string;

/**
 * The parameter a question sets, so that a prompter that cannot ask (`--import --yes`) can say
 * which option would have answered it.
 */
export interface QuestionParameter {
  readonly name: string;
  readonly protocols: readonly Protocol[];
  /**
   * Settings under which the question is not asked at all, each alternative its space-separated
   * `Name=value`s (`SSLEnable=no`; `StoreAdmin= StoreAdminPass=`).
   */
  readonly avoidedBy: readonly string[];
}

export interface InputQuestion {
  readonly message: string;
  /** Shown in brackets and taken when the operator just presses Enter. */
  readonly default?: string;
  readonly validate?: Validate;
  readonly param?: QuestionParameter;
}

export interface PasswordQuestion {
  readonly message: string;
  readonly validate?: Validate;
  readonly param?: QuestionParameter;
}

export interface Choice<T extends string> {
  readonly value: T;
  readonly name: string;
}

export interface SelectQuestion<T extends string> {
  readonly message: string;
  readonly choices: readonly Choice<T>[];
  readonly default?: T;
}

export interface Prompter {
  input(q: InputQuestion): Promise<string>;
  /** Typed without echo (passwords). */
  password(q: PasswordQuestion): Promise<string>;
  select<T extends string>(q: SelectQuestion<T>): Promise<T>;
  /** Text that is not a question: the summary, warnings. */
  say(text: string): void;
}

/**
 * The inquirer configuration for each kind of question, shared by the terminal prompter and the
 * tests that render the same prompts on a virtual screen.
 */
export function inputConfig(q: InputQuestion): Parameters<typeof input>[0] {
  return {
    message: q.message,
    ...(q.default !== undefined ? { default: q.default } : {}),
    // Keep what was typed when refused, so a typo can be fixed rather than retyped.
    theme: { validationFailureMode: 'keep' },
    ...(q.validate !== undefined ? { validate: q.validate } : {}),
  };
}

export function passwordConfig(q: PasswordQuestion): Parameters<typeof password>[0] {
  return {
    message: q.message,
    mask: '*',
    ...(q.validate !== undefined ? { validate: q.validate } : {}),
  };
}

export function selectConfig<T extends string>(
  q: SelectQuestion<T>,
): Parameters<typeof select<T>>[0] {
  return {
    message: q.message,
    choices: q.choices.map((c) => ({ value: c.value, name: c.name })),
    ...(q.default !== undefined ? { default: q.default } : {}),
  };
}

export interface TerminalStreams {
  readonly input?: NodeJS.ReadableStream;
  readonly output?: NodeJS.WritableStream;
  /** Aborting it cancels the open prompt (kill -INT while a question is on screen). */
  readonly signal?: AbortSignal;
}

/** Real prompts on the terminal. Ctrl-C rejects with inquirer's ExitPromptError. */
export function terminalPrompter(streams: TerminalStreams = {}): Prompter {
  const ctx = {
    ...(streams.input !== undefined ? { input: streams.input } : {}),
    ...(streams.output !== undefined ? { output: streams.output } : {}),
    ...(streams.signal !== undefined ? { signal: streams.signal } : {}),
  };
  const out = streams.output ?? process.stdout;
  return {
    input: (q) => input(inputConfig(q), ctx),
    password: (q) => password(passwordConfig(q), ctx),
    select: <T extends string>(q: SelectQuestion<T>) => select<T>(selectConfig(q), ctx),
    say: (text) => {
      out.write(text.endsWith('\n') ? text : `${text}\n`);
    },
  };
}
