/** NOOP (RFC 1939 §5). Also accepted before login, as Dovecot does: it harms nothing. */

import { command } from './types.js';

export const noop = command({
  name: 'NOOP',
  states: ['authorization', 'transaction'],
  args: [],
  handle: () => ({ kind: 'ok' }),
});
