/**
 * USER name (RFC 1939 §7). Always `+OK password required for user NAME`, whether the name exists
 * or not: the directory is consulted only at PASS, so names cannot be probed (the answer the
 * Netscape multiplexor gave).
 */

import { type CommandSpec, nameForLog } from './types.js';

/** Octets that could end or split a response line if echoed, or a replayed command. */
export function hasControl(bytes: Buffer): boolean {
  return bytes.some((b) => b < 0x20 || b === 0x7f);
}

export const user: CommandSpec = {
  name: 'USER',
  states: ['authorization'],
  describe(arg) {
    return { user: arg === undefined ? null : nameForLog(arg) };
  },
  handle(ctx, arg) {
    if (arg === undefined || arg.length === 0) {
      return { kind: 'error', message: 'USER expects a user name' };
    }
    if (hasControl(arg)) return { kind: 'error', message: 'User name contains control characters' };
    ctx.pendingUser = arg;
    ctx.send(`+OK password required for user ${arg.toString('latin1')}`);
    return { kind: 'done' };
  },
};
