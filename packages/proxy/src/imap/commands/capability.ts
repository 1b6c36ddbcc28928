/** CAPABILITY (RFC 3501 §6.1.1): the configured list, then OK. */

import { type CommandSpec, describeArgs } from './types.js';

export const capability: CommandSpec = {
  name: 'CAPABILITY',
  literals: false,
  describe: describeArgs,
  handle(ctx, cmd) {
    if (cmd.args.length > 0) return { kind: 'bad', message: 'CAPABILITY takes no arguments' };
    ctx.send(`* CAPABILITY ${ctx.capabilities.text}`);
    ctx.send(`${cmd.tag} OK CAPABILITY completed`);
    return { kind: 'done' };
  },
};
