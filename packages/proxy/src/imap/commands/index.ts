/** The commands accepted before login, by name. Anything else is answered BAD (`../dialect.ts`). */

import { authenticate } from './authenticate.js';
import { capability } from './capability.js';
import { id } from './id.js';
import { login } from './login.js';
import { logout } from './logout.js';
import { noop } from './noop.js';
import { starttls } from './starttls.js';
import type { CommandSpec } from './types.js';

export const COMMANDS: ReadonlyMap<string, CommandSpec> = new Map(
  [capability, noop, logout, id, login, authenticate, starttls].map((c) => [c.name, c]),
);

/** Commands of the authenticated and selected states (RFC 9051 §6.3, §6.4; RFC 3501): told
 * "not before login" rather than "unknown", so a confused client gets a useful answer. */
export const AFTER_LOGIN_COMMANDS: ReadonlySet<string> = new Set([
  'SELECT',
  'EXAMINE',
  'CREATE',
  'DELETE',
  'RENAME',
  'SUBSCRIBE',
  'UNSUBSCRIBE',
  'LIST',
  'LSUB',
  'NAMESPACE',
  'STATUS',
  'APPEND',
  'IDLE',
  'ENABLE',
  'CHECK',
  'CLOSE',
  'UNSELECT',
  'EXPUNGE',
  'SEARCH',
  'FETCH',
  'STORE',
  'COPY',
  'MOVE',
  'UID',
  'GETQUOTA',
  'GETQUOTAROOT',
  'GETACL',
  'MYRIGHTS',
  'COMPRESS',
  'NOTIFY',
  'METADATA',
  'GETMETADATA',
  'SETMETADATA',
]);
