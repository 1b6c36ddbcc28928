/** LIST [msg] (RFC 1939 §5), spoof inbox: scan listings `n size`. */

import { listingCommand } from './types.js';

export const list = listingCommand('LIST', (inbox, n) => inbox.list(n));
