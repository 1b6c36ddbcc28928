/** CAPABILITY (RFC 3501 §6.1.1): this connection's list, then OK. */

import { command } from './types.js';

export const capability = command({
  name: 'CAPABILITY',
  args: [],
  handle: (ctx) => ({ kind: 'ok', data: [`* CAPABILITY ${ctx.capabilities.text}`] }),
});
