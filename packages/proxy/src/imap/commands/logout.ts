/** LOGOUT (RFC 3501 §6.1.3): untagged BYE, tagged OK, then the server closes. */

import { command } from './types.js';

export const logout = command({ name: 'LOGOUT', args: [], handle: () => ({ kind: 'logout' }) });
