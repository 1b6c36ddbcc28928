/** DELE msg (RFC 1939 §5), spoof inbox: marked for this session only; the file never changes. */

import { messageNumber, words } from '../parser.js';
import { answer, describePlain, inboxOf, type CommandSpec } from './types.js';

export const dele: CommandSpec = {
  name: 'DELE',
  states: ['transaction'],
  describe: describePlain,
  handle(ctx, arg) {
    const inbox = inboxOf(ctx);
    if ('kind' in inbox) return inbox;
    const w = words(arg);
    const n = messageNumber(w[0]);
    if (w.length !== 1 || n === undefined) {
      return { kind: 'error', message: 'DELE expects a message number' };
    }
    return answer(ctx, inbox.dele(n));
  },
};
