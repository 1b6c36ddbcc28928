/**
 * ID (RFC 2971). Clients (webmail, mobile apps) send it before LOGIN; a routing proxy does not
 * know the store yet, so it answers itself — never BAD, which breaks those clients (NOTES.md) —
 * and keeps what the client said, for the log and for a later replay to the store.
 *
 * We answer `* ID NIL` (§3.2: allowed), revealing nothing about the software in front of the
 * stores. After login, an ID sent by the client reaches the store and gets the store's answer.
 */

import { ID_MAX_FIELD_BYTES, ID_MAX_PAIRS, ID_MAX_VALUE_BYTES } from '../../limits.js';
import { type ImapArg, atomUpper } from '../parser.js';
import type { CommandSpec } from './types.js';

type Parsed =
  { ok: true; params: Map<string, string | null> | null } | { ok: false; message: string };

function parseParams(arg: ImapArg | undefined): Parsed {
  if (atomUpper(arg) === 'NIL') return { ok: true, params: null };
  if (arg?.kind !== 'list') return { ok: false, message: 'ID expects NIL or a parenthesised list' };
  const items = arg.items;
  // §3.3: at most 30 field/value pairs, fields at most 30 octets, values at most 1024.
  if (items.length % 2 !== 0) return { ok: false, message: 'ID list must hold field/value pairs' };
  if (items.length / 2 > ID_MAX_PAIRS) return { ok: false, message: 'Too many ID fields' };
  const params = new Map<string, string | null>();
  for (let i = 0; i < items.length; i += 2) {
    const field = items[i] as ImapArg;
    const value = items[i + 1] as ImapArg;
    if (field.kind !== 'string' || field.bytes.length > ID_MAX_FIELD_BYTES) {
      return { ok: false, message: 'ID field names are strings of at most 30 octets' };
    }
    let v: string | null;
    if (atomUpper(value) === 'NIL') v = null;
    else if (value.kind === 'string' && value.bytes.length <= ID_MAX_VALUE_BYTES) {
      v = value.bytes.toString('utf8');
    } else return { ok: false, message: 'ID values are NIL or strings of at most 1024 octets' };
    params.set(field.bytes.toString('utf8').toLowerCase(), v);
  }
  return { ok: true, params };
}

export const id: CommandSpec = {
  name: 'ID',
  literals: true,
  describe(args) {
    const parsed = parseParams(args[0]);
    if (!parsed.ok || parsed.params === null) return { id: 'NIL' };
    return { id: [...parsed.params].map(([k, v]) => `${k}=${v ?? 'NIL'}`).join('; ') };
  },
  handle(ctx, cmd) {
    if (cmd.args.length !== 1) return { kind: 'bad', message: 'ID takes one argument' };
    const parsed = parseParams(cmd.args[0]);
    if (!parsed.ok) return { kind: 'bad', message: parsed.message };
    ctx.rememberClientId(parsed.params);
    ctx.send('* ID NIL');
    ctx.send(`${cmd.tag} OK ID completed`);
    return { kind: 'done' };
  },
};
