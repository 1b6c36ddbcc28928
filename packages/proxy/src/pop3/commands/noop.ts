/** NOOP (RFC 1939 §5). Also accepted before login, as Dovecot does: it harms nothing. */

import { describePlain, type CommandSpec } from './types.js';

export const noop: CommandSpec = {
  name: 'NOOP',
  states: ['authorization', 'transaction'],
  describe: describePlain,
  handle(ctx, arg) {
    if (arg !== undefined) return { kind: 'error', message: 'NOOP takes no argument' };
    ctx.send('+OK');
    return { kind: 'done' };
  },
};
