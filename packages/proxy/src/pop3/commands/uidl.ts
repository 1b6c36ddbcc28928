/** UIDL [msg] (RFC 1939 §7), spoof inbox: a unique-id stable while the file is unchanged. */

import { inboxCommand } from './types.js';

export const uidl = inboxCommand(
  'UIDL',
  [{ kind: 'number', text: 'an optional message number', optional: true }],
  (inbox, [n]) => inbox.uidl(n),
);
