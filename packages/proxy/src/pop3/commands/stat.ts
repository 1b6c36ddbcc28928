/** STAT (RFC 1939 §5), spoof inbox: `+OK count size`. */

import { answer, describePlain, inboxOf, type CommandSpec } from './types.js';

export const stat: CommandSpec = {
  name: 'STAT',
  states: ['transaction'],
  describe: describePlain,
  handle(ctx, arg) {
    const inbox = inboxOf(ctx);
    if ('kind' in inbox) return inbox;
    if (arg !== undefined) return { kind: 'error', message: 'STAT takes no argument' };
    return answer(ctx, inbox.stat());
  },
};
