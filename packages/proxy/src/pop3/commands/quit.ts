/** QUIT (RFC 1939 §5, §6). In the spoof inbox there is nothing to update: DELE changed nothing. */

import { command } from './types.js';

export const quit = command({
  name: 'QUIT',
  states: ['authorization', 'transaction'],
  args: 'any',
  handle: () => ({ kind: 'logout' }),
});
