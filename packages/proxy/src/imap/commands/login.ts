/**
 * LOGIN (RFC 3501 §6.2.3): `tag LOGIN astring astring`. Name and password stay bytes exactly as
 * sent (atom, quoted string with its escapes removed, or literal), to be replayed to the store.
 */

import { astringBytes } from '../parser.js';
import { type CommandSpec, nameForLog } from './types.js';

export const login: CommandSpec = {
  name: 'LOGIN',
  literals: true,
  describe(args) {
    const user = astringBytes(args[0]);
    return { user: user === undefined ? null : nameForLog(user), password: '<redacted>' };
  },
  handle(ctx, cmd) {
    if (ctx.capabilities.loginDisabled) {
      // RFC 3501 §6.2.3: LOGINDISABLED advertised means LOGIN must be refused.
      ctx.send(`${cmd.tag} NO [PRIVACYREQUIRED] LOGIN is disabled on this connection`);
      return { kind: 'done' };
    }
    const user = astringBytes(cmd.args[0]);
    const password = astringBytes(cmd.args[1]);
    if (cmd.args.length !== 2 || user === undefined || password === undefined) {
      return { kind: 'bad', message: 'LOGIN expects a user name and a password' };
    }
    return { kind: 'login', credentials: { user, password } };
  },
};
