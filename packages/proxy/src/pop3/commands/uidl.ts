/** UIDL [msg] (RFC 1939 §7), spoof inbox: a unique-id stable while the file is unchanged. */

import { listingCommand } from './types.js';

export const uidl = listingCommand('UIDL', (inbox, n) => inbox.uidl(n));
