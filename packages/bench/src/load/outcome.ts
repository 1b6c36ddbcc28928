// What a legitimate client saw when a login did not work, in the words of issue 14's table: a
// temporary failure (the proxy said try again later), an authentication failure (the proxy said
// the password is wrong: during a fault that is a lie), or a connection error (refused, closed,
// reset, no answer). Pure, unit-tested.

export type LoginOutcome =
  /** logged in, fetched, logged out */
  | 'ok'
  /** `NO [UNAVAILABLE]`, `[SYS/TEMP]`, "temporarily" … */
  | 'temporary'
  /** any other NO: `[AUTHENTICATIONFAILED]` … */
  | 'auth'
  /** the connection was refused or the greeting was a BYE */
  | 'refused'
  /** closed or reset before the login was answered */
  | 'closed'
  /** no answer within the client's time limit */
  | 'timeout'
  /** logged in, then the session broke before its logout was answered */
  | 'dropped';

export const LOGIN_OUTCOMES: readonly LoginOutcome[] = [
  'ok',
  'temporary',
  'auth',
  'refused',
  'closed',
  'timeout',
  'dropped',
];

/** Where the cycle was when it failed. */
export type CyclePhase = 'connect' | 'greeting' | 'login' | 'session';

const TEMPORARY = /\[(UNAVAILABLE|SYS\/TEMP|IN-USE|LIMIT)\]|temporar|try again/i;

/**
 * Classify a failure. `answer` is the server's refusal line when there was one (the tagged NO of
 * the login, the BYE greeting); `error` the error text otherwise.
 */
export function classifyFailure(
  phase: CyclePhase,
  answer: string | undefined,
  error: string,
): LoginOutcome {
  if (phase === 'session') return 'dropped';
  if (phase === 'connect') return /timeout/i.test(error) ? 'timeout' : 'refused';
  if (phase === 'greeting') {
    if (answer !== undefined) return 'refused';
    if (/timeout/i.test(error)) return 'timeout';
    return 'closed';
  }
  if (answer !== undefined) return TEMPORARY.test(answer) ? 'temporary' : 'auth';
  if (/timeout/i.test(error)) return 'timeout';
  return 'closed';
}

/** The untagged or tagged answer carried by a load-generator error, if any. */
export function answerIn(error: string): string | undefined {
  // Conn's texts: "LOGIN: a NO [...]" and "bad greeting: * BYE …"
  const m = /^(?:\w+: |bad greeting: )((?:\S+ )?(?:NO|BAD|BYE|-ERR)\b.*)$/.exec(error);
  return m?.[1];
}
