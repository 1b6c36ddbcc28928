/**
 * Scripted people for the dialogue tests.
 *
 * ScriptedPerson answers through the Prompter interface the way inquirer behaves: Enter (an empty
 * answer) takes the default, a refused answer shows the validator's message and asks again.
 *
 * renderPrompter runs every question as a real inquirer prompt on @inquirer/testing's virtual
 * screen and types the answers key by key, reading the screen like a person would.
 */
import { input, password, select } from '@inquirer/prompts';
import { render } from '@inquirer/testing';
import {
  type InputQuestion,
  type PasswordQuestion,
  type Prompter,
  type SelectQuestion,
  inputConfig,
  passwordConfig,
  selectConfig,
} from '../prompter.js';

/** One expected question (a substring or pattern of its text) and what the person types. */
export type Line = readonly [ask: string | RegExp, answer: string];

const matches = (ask: string | RegExp, message: string): boolean =>
  typeof ask === 'string' ? message.includes(ask) : ask.test(message);

export interface Transcript {
  /** Each question as asked: `message [default] => answer`. */
  readonly asked: string[];
  /** Every refusal message shown, in order. */
  readonly refusals: string[];
  /** Everything said that is not a question (summary, warnings). */
  readonly said: string[];
}

/**
 * Answers the scripted lines in order; a question that does not match the next line is answered
 * with Enter (its default), so a script only lists the answers that matter. With `strict`, every
 * question must match the next line.
 */
export class ScriptedPerson implements Prompter {
  readonly transcript: Transcript = { asked: [], refusals: [], said: [] };
  #script: Line[];

  constructor(
    script: readonly Line[],
    private readonly strict = false,
  ) {
    this.#script = [...script];
  }

  get remaining(): readonly Line[] {
    return this.#script;
  }

  #next(message: string): string {
    const head = this.#script[0];
    if (head !== undefined && matches(head[0], message)) {
      this.#script.shift();
      return head[1];
    }
    if (this.strict)
      throw new Error(`unexpected question '${message}', expected '${String(head?.[0])}'`);
    return '';
  }

  input(q: InputQuestion): Promise<string> {
    for (let i = 0; i < 20; i++) {
      const typed = this.#next(q.message);
      const value = typed === '' ? (q.default ?? '') : typed;
      this.transcript.asked.push(`${q.message} [${q.default ?? ''}] => ${typed}`);
      const verdict = q.validate?.(value) ?? true;
      if (verdict === true) return Promise.resolve(value);
      this.transcript.refusals.push(verdict);
    }
    return Promise.reject(new Error(`'${q.message}' refused 20 answers`));
  }

  password(q: PasswordQuestion): Promise<string> {
    for (let i = 0; i < 20; i++) {
      const typed = this.#next(q.message);
      this.transcript.asked.push(`${q.message} [] => ${typed === '' ? '' : '******'}`);
      const verdict = q.validate?.(typed) ?? true;
      if (verdict === true) return Promise.resolve(typed);
      this.transcript.refusals.push(verdict);
    }
    return Promise.reject(new Error(`'${q.message}' refused 20 answers`));
  }

  select<T extends string>(q: SelectQuestion<T>): Promise<T> {
    const typed = this.#next(q.message);
    this.transcript.asked.push(`${q.message} [${q.default ?? ''}] => ${typed}`);
    if (typed === '') {
      const d = q.default ?? q.choices[0]?.value;
      return d === undefined ? Promise.reject(new Error('no choices')) : Promise.resolve(d);
    }
    const choice = q.choices.find((c) => c.name.includes(typed) || c.value === typed);
    return choice === undefined
      ? Promise.reject(new Error(`no choice '${typed}' in ${q.message}`))
      : Promise.resolve(choice.value);
  }

  say(text: string): void {
    this.transcript.said.push(text);
  }
}

/** Let inquirer's promise chains and re-renders run. */
const settle = async (): Promise<void> => {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
};

/** Screens seen by the renderPrompter person, for assertions. */
export interface ScreenLog {
  readonly screens: string[];
}

/**
 * A Prompter whose every question is a real inquirer prompt rendered on a virtual screen: the
 * person reads the screen, checks the question is there, types, presses Enter, and if an error
 * appears instead of the prompt finishing, clears the line and types the next scripted answer.
 */
export function renderPrompter(script: readonly Line[], log: ScreenLog): Prompter {
  const lines = [...script];
  const take = (message: string): string => {
    const head = lines[0];
    if (head !== undefined && matches(head[0], message)) {
      lines.shift();
      return head[1];
    }
    return '';
  };

  const typeUntilDone = async <V>(
    r: Awaited<ReturnType<typeof render>>,
    answer: Promise<V>,
    message: string,
    first: string,
  ): Promise<V> => {
    let done = false;
    void answer.then(
      () => (done = true),
      () => (done = true),
    );
    let typed = first;
    for (let i = 0; i < 20; i++) {
      const before = r.getScreen();
      log.screens.push(before);
      // The virtual screen is 80 columns wide: a long question wraps.
      const flat = (t: string): string => t.replace(/\s+/g, ' ');
      if (!flat(before).includes(flat(message.split('\n')[0] ?? message)))
        throw new Error(`screen does not show '${message}':\n${before}`);
      r.events.type(typed);
      r.events.keypress('enter');
      await settle();
      if (done) return answer;
      log.screens.push(r.getScreen());
      // Refused: erase what was typed (validationFailureMode 'keep' leaves it) and retype.
      for (let k = 0; k < typed.length; k++) r.events.keypress('backspace');
      typed = take(message);
    }
    throw new Error(`'${message}' never accepted an answer`);
  };

  return {
    async input(q) {
      const r = await render(input, inputConfig(q));
      return typeUntilDone(r, r.answer, q.message, take(q.message));
    },
    async password(q) {
      const r = await render(password, passwordConfig(q));
      return typeUntilDone(r, r.answer, q.message, take(q.message));
    },
    async select<T extends string>(q: SelectQuestion<T>): Promise<T> {
      const r = await render(select<T>, selectConfig(q));
      log.screens.push(r.getScreen());
      const wanted = take(q.message);
      if (wanted !== '') {
        // Walk down the list until the wanted choice is highlighted (the cursor line).
        for (let i = 0; i < q.choices.length; i++) {
          const cursorLine = r
            .getScreen()
            .split('\n')
            .find((l) => l.trimStart().startsWith('❯'));
          if (cursorLine?.includes(wanted) === true) break;
          r.events.keypress('down');
          await settle();
        }
      }
      r.events.keypress('enter');
      await settle();
      return r.answer;
    },
    say(text) {
      log.screens.push(text);
    },
  };
}
