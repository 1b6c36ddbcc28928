/**
 * APOP (RFC 1939 §7) is refused: it proves knowledge of the password without sending it, and
 * the multiplexor must have the password itself to log in to the store on the user's behalf. The
 * greeting therefore carries no timestamp, and APOP says why it fails.
 */

import { command } from './types.js';

export const apop = command({
  name: 'APOP',
  states: ['authorization'],
  args: 'any',
  describe: () => ({ digest: '<redacted>' }),
  handle: () => ({
    kind: 'bad',
    text: 'APOP is not supported: the multiplexor needs the password to log in to your mail store; use USER/PASS or AUTH PLAIN',
  }),
});
