/**
 * USER name (RFC 1939 §7). Always `+OK password required`, whether the name exists or not: the
 * directory is consulted only at PASS, so names cannot be probed. The name is not echoed (the
 * Netscape multiplexor did): reflected input is what a cross-protocol attack (ALPACA) builds its
 * payload from, and Dovecot and nginx echo nothing.
 */

import { nameForLog } from '../../dialect.js';
import { command } from './types.js';

/** Octets that could end or split a response line if echoed, or a replayed command. */
function hasControl(bytes: Buffer): boolean {
  return bytes.some((b) => b < 0x20 || b === 0x7f);
}

export const user = command({
  name: 'USER',
  states: ['authorization'],
  args: [{ kind: 'rest', text: 'a user name' }],
  describe: (arg) => ({ user: arg === undefined ? null : nameForLog(arg) }),
  plaintext: () => true,
  handle(_ctx, [name]) {
    if (hasControl(name)) return { kind: 'bad', text: 'User name contains control characters' };
    return {
      kind: 'ok',
      text: 'password required',
      pendingUser: name,
    };
  },
});
