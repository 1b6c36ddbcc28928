/** DELE msg (RFC 1939 §5), spoof inbox: marked for this session only; the file never changes. */

import { inboxCommand } from './types.js';

export const dele = inboxCommand(
  'DELE',
  [{ kind: 'number', text: 'a message number' }],
  (inbox, [n]) => inbox.dele(n),
);
