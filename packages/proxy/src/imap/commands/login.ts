/**
 * LOGIN (RFC 3501 §6.2.3): `tag LOGIN astring astring`. Name and password stay bytes exactly as
 * sent (atom, quoted string with its escapes removed, or literal), to be replayed to the store.
 * With LOGINDISABLED advertised (plaintext refused before TLS), the dispatcher refuses it.
 */

import { nameForLog } from '../../dialect.js';
import { astringBytes } from '../parser.js';
import { command } from './types.js';

export const login = command({
  name: 'LOGIN',
  args: [
    { kind: 'astring', text: 'a user name' },
    { kind: 'astring', text: 'a password' },
  ],
  literals: true,
  describe(args) {
    const user = astringBytes(args[0]);
    return { user: user === undefined ? null : nameForLog(user), password: '<redacted>' };
  },
  plaintext: () => true,
  handle: (_ctx, [user, password]) => ({
    kind: 'login',
    principal: { kind: 'password', credentials: { user, password }, sasl: false },
  }),
});
