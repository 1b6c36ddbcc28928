/** RSET (RFC 1939 §5), spoof inbox: unmark the deleted message. */

import { inboxCommand } from './types.js';

export const rset = inboxCommand('RSET', [], (inbox) => inbox.rset());
