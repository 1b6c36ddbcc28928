/** RETR msg (RFC 1939 §5), spoof inbox: the message, dot-stuffed. */

import { messageCommand } from './types.js';

export const retr = messageCommand('RETR', (inbox, n) => inbox.retr(n));
