/** RETR msg (RFC 1939 §5), spoof inbox: the message, dot-stuffed. */

import { inboxCommand } from './types.js';

export const retr = inboxCommand(
  'RETR',
  [{ kind: 'number', text: 'a message number' }],
  (inbox, [n]) => inbox.retr(n),
);
