/** TOP msg n (RFC 1939 §7), spoof inbox: the header and the body's first n lines. */

import { messageNumber, words } from '../parser.js';
import { answer, describePlain, inboxOf, type CommandSpec } from './types.js';

export const top: CommandSpec = {
  name: 'TOP',
  states: ['transaction'],
  describe: describePlain,
  handle(ctx, arg) {
    const inbox = inboxOf(ctx);
    if ('kind' in inbox) return inbox;
    const w = words(arg);
    const n = messageNumber(w[0]);
    const lines = w[1] !== undefined && /^[0-9]{1,9}$/.test(w[1]) ? Number(w[1]) : undefined;
    if (w.length !== 2 || n === undefined || lines === undefined) {
      return { kind: 'error', message: 'TOP expects a message number and a line count' };
    }
    return answer(ctx, inbox.top(n, lines));
  },
};
