/** QUIT (RFC 1939 §5, §6). In the spoof inbox there is nothing to update: DELE changed nothing. */

import { describePlain, type CommandSpec } from './types.js';

export const quit: CommandSpec = {
  name: 'QUIT',
  states: ['authorization', 'transaction'],
  describe: describePlain,
  handle(ctx) {
    ctx.send('+OK Logging out');
    return { kind: 'quit' };
  },
};
