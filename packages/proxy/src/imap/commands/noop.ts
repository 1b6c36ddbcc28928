/** NOOP (RFC 3501 §6.1.2): nothing to report before login. */

import { command } from './types.js';

export const noop = command({ name: 'NOOP', args: [], handle: () => ({ kind: 'ok' }) });
