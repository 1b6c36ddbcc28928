/** RSET (RFC 1939 §5), spoof inbox: unmark the deleted message. */

import { answer, describePlain, inboxOf, type CommandSpec } from './types.js';

export const rset: CommandSpec = {
  name: 'RSET',
  states: ['transaction'],
  describe: describePlain,
  handle(ctx, arg) {
    const inbox = inboxOf(ctx);
    if ('kind' in inbox) return inbox;
    if (arg !== undefined) return { kind: 'error', message: 'RSET takes no argument' };
    return answer(ctx, inbox.rset());
  },
};
