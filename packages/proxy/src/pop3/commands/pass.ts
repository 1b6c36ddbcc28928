/**
 * PASS string (RFC 1939 §7). The password is every byte after `PASS ` up to the CRLF, spaces
 * included (§7: "the server may treat the remainder of the line as the password"). It is never
 * decoded and never logged.
 */

import type { CommandSpec } from './types.js';

const NUL = 0x00;
const CR = 0x0d;

export const pass: CommandSpec = {
  name: 'PASS',
  states: ['authorization'],
  describe() {
    return { password: '<redacted>' };
  },
  handle(ctx, arg) {
    const name = ctx.pendingUser;
    // RFC 1939 §7: PASS only right after a successful USER; a failed PASS needs USER again.
    ctx.pendingUser = undefined;
    if (name === undefined) return { kind: 'error', message: 'USER first' };
    if (arg === undefined || arg.length === 0) {
      return { kind: 'error', message: 'PASS expects a password' };
    }
    // A NUL or a lone CR cannot be replayed in a command line (nor in SASL PLAIN, for NUL).
    if (arg.includes(NUL) || arg.includes(CR)) {
      return { kind: 'error', message: 'Password contains characters that cannot be sent on' };
    }
    return { kind: 'login', credentials: { user: name, password: arg }, method: 'user-pass' };
  },
};
