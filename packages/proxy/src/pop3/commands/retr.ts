/** RETR msg (RFC 1939 §5), spoof inbox: the message, dot-stuffed. */

import { messageNumber, words } from '../parser.js';
import { answer, describePlain, inboxOf, type CommandSpec } from './types.js';

export const retr: CommandSpec = {
  name: 'RETR',
  states: ['transaction'],
  describe: describePlain,
  handle(ctx, arg) {
    const inbox = inboxOf(ctx);
    if ('kind' in inbox) return inbox;
    const w = words(arg);
    const n = messageNumber(w[0]);
    if (w.length !== 1 || n === undefined) {
      return { kind: 'error', message: 'RETR expects a message number' };
    }
    return answer(ctx, inbox.retr(n));
  },
};
