/** TOP msg n (RFC 1939 §7), spoof inbox: the header and the body's first n lines. */

import { inboxCommand } from './types.js';

export const top = inboxCommand(
  'TOP',
  [
    { kind: 'number', text: 'a message number' },
    { kind: 'count', text: 'a line count' },
  ],
  (inbox, [n, lines]) => inbox.top(n, lines),
);
