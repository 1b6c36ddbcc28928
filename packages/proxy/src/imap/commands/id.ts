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
import { command } from './types.js';

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

export const id = command({
  name: 'ID',
  args: [{ kind: 'nil-or-list', text: 'NIL or a parenthesised list' }],
  literals: true,
  describe(args) {
    const parsed = parseParams(args[0]);
    if (!parsed.ok || parsed.params === null) return { id: 'NIL' };
    return { id: formatParams(parsed.params) };
  },
  handle(_ctx, [params]) {
    const parsed = parseParams(params);
    if (!parsed.ok) return { kind: 'bad', text: parsed.message };
    return {
      kind: 'ok',
      data: ['* ID NIL'],
      ...(parsed.params === null ? {} : { clientId: formatParams(parsed.params) }),
    };
  },
});

function formatParams(params: ReadonlyMap<string, string | null>): string {
  return [...params].map(([k, v]) => `${k}=${v ?? 'NIL'}`).join('; ');
}
