/** LIST [msg] (RFC 1939 §5), spoof inbox: scan listings `n size`. */

import { messageNumber, words } from '../parser.js';
import { answer, describePlain, inboxOf, type CommandSpec } from './types.js';

export const list: CommandSpec = {
  name: 'LIST',
  states: ['transaction'],
  describe: describePlain,
  handle(ctx, arg) {
    const inbox = inboxOf(ctx);
    if ('kind' in inbox) return inbox;
    const w = words(arg);
    if (w.length === 0) return answer(ctx, inbox.list(undefined));
    const n = messageNumber(w[0]);
    if (w.length > 1 || n === undefined) {
      return { kind: 'error', message: 'LIST expects an optional message number' };
    }
    return answer(ctx, inbox.list(n));
  },
};
