/** LOGOUT (RFC 3501 §6.1.3): untagged BYE, tagged OK, then the server closes. */

import { type CommandSpec, describeArgs } from './types.js';

export const logout: CommandSpec = {
  name: 'LOGOUT',
  literals: false,
  describe: describeArgs,
  handle(ctx, cmd) {
    if (cmd.args.length > 0) return { kind: 'bad', message: 'LOGOUT takes no arguments' };
    ctx.send('* BYE Logging out');
    ctx.send(`${cmd.tag} OK LOGOUT completed`);
    return { kind: 'logout' };
  },
};
