/** DELE msg (RFC 1939 §5), spoof inbox: marked for this session only; the file never changes. */

import { messageCommand } from './types.js';

export const dele = messageCommand('DELE', (inbox, n) => inbox.dele(n));
