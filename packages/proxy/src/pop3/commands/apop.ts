/**
 * APOP (RFC 1939 §7) is refused: it proves knowledge of the password without sending it, and
 * the multiplexor must have the password itself to log in to the store on the user's behalf. The
 * greeting therefore carries no timestamp, and APOP says why it fails.
 */

import type { CommandSpec } from './types.js';

export const apop: CommandSpec = {
  name: 'APOP',
  states: ['authorization'],
  describe() {
    return { digest: '<redacted>' };
  },
  handle() {
    return {
      kind: 'error',
      message:
        'APOP is not supported: the multiplexor needs the password to log in to your mail store; use USER/PASS or AUTH PLAIN',
    };
  },
};
