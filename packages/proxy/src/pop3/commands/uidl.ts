/** UIDL [msg] (RFC 1939 §7), spoof inbox: a unique-id stable while the file is unchanged. */

import { messageNumber, words } from '../parser.js';
import { answer, describePlain, inboxOf, type CommandSpec } from './types.js';

export const uidl: CommandSpec = {
  name: 'UIDL',
  states: ['transaction'],
  describe: describePlain,
  handle(ctx, arg) {
    const inbox = inboxOf(ctx);
    if ('kind' in inbox) return inbox;
    const w = words(arg);
    if (w.length === 0) return answer(ctx, inbox.uidl(undefined));
    const n = messageNumber(w[0]);
    if (w.length > 1 || n === undefined) {
      return { kind: 'error', message: 'UIDL expects an optional message number' };
    }
    return answer(ctx, inbox.uidl(n));
  },
};
