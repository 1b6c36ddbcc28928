/**
 * PASS string (RFC 1939 §7). The password is every byte after `PASS ` up to the CRLF, spaces
 * included (§7: "the server may treat the remainder of the line as the password"). It is never
 * decoded and never logged. PASS only right after a successful USER (the session forgets the
 * name after any other answer than a plain OK).
 */

import { command } from './types.js';

const NUL = 0x00;
const CR = 0x0d;

export const pass = command({
  name: 'PASS',
  states: ['authorization'],
  args: [{ kind: 'rest', text: 'a password' }],
  describe: () => ({ password: '<redacted>' }),
  plaintext: () => true,
  handle(ctx, [password]) {
    const user = ctx.pendingUser;
    if (user === undefined) return { kind: 'bad', text: 'USER first' };
    // A NUL or a lone CR cannot be replayed in a command line (nor in SASL PLAIN, for NUL).
    if (password.includes(NUL) || password.includes(CR))
      return { kind: 'bad', text: 'Password contains characters that cannot be sent on' };
    return {
      kind: 'login',
      principal: { kind: 'password', credentials: { user, password }, sasl: false },
    };
  },
});
