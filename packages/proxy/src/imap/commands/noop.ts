/** NOOP (RFC 3501 §6.1.2): nothing to report before login. */

import { type CommandSpec, describeArgs } from './types.js';

export const noop: CommandSpec = {
  name: 'NOOP',
  literals: false,
  describe: describeArgs,
  handle(ctx, cmd) {
    if (cmd.args.length > 0) return { kind: 'bad', message: 'NOOP takes no arguments' };
    ctx.send(`${cmd.tag} OK NOOP completed`);
    return { kind: 'done' };
  },
};
