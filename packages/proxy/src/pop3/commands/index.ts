/** The POP3 commands the multiplexor answers itself, by keyword. Anything else gets `-ERR`. */

import { apop } from './apop.js';
import { auth } from './auth.js';
import { capa } from './capa.js';
import { dele } from './dele.js';
import { list } from './list.js';
import { noop } from './noop.js';
import { pass } from './pass.js';
import { quit } from './quit.js';
import { retr } from './retr.js';
import { rset } from './rset.js';
import { stat } from './stat.js';
import { stls } from './stls.js';
import { top } from './top.js';
import type { CommandSpec } from './types.js';
import { uidl } from './uidl.js';
import { user } from './user.js';

export const COMMANDS: ReadonlyMap<string, CommandSpec> = new Map(
  [capa, user, pass, auth, apop, stls, quit, noop, stat, list, uidl, retr, top, dele, rset].map(
    (c) => [c.name, c],
  ),
);
