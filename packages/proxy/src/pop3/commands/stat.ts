/** STAT (RFC 1939 §5), spoof inbox: `+OK count size`. */

import { inboxCommand } from './types.js';

export const stat = inboxCommand('STAT', [], (inbox) => inbox.stat());
