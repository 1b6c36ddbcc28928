/** LIST [msg] (RFC 1939 §5), spoof inbox: scan listings `n size`. */

import { inboxCommand } from './types.js';

export const list = inboxCommand(
  'LIST',
  [{ kind: 'number', text: 'an optional message number', optional: true }],
  (inbox, [n]) => inbox.list(n),
);
