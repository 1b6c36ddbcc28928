/**
 * AUTH mechanism [initial-response] (RFC 5034). Only PLAIN (RFC 4616) is offered: the multiplexor
 * needs the plaintext password to replay the login. `=` is the empty initial response (§4); without
 * one the session sends the empty challenge `+ ` and reads the response line, where `*` cancels.
 * AUTH without an argument lists the mechanisms (the pre-RFC 5034 form some clients still send,
 * answered as Dovecot does).
 */

import { externalRefusal } from '../../certlogin.js';
import { decodeInitialResponse, startSasl } from '../../sasl.js';
import { PLAIN_SECURITY } from '../../tls/security.js';
import { words } from '../parser.js';
import type { CommandSpec } from './types.js';

export const AUTH_MECHANISMS = ['PLAIN'] as const;

export const auth: CommandSpec = {
  name: 'AUTH',
  states: ['authorization'],
  describe(arg) {
    const w = words(arg);
    return {
      mechanism: w[0]?.slice(0, 32).toUpperCase() ?? null,
      initialResponse: w.length > 1 ? '<redacted>' : null,
    };
  },
  handle(ctx, arg) {
    const w = words(arg);
    if (w.length === 0) {
      // The mechanisms usable on this connection, as CAPA's SASL line says (tls/security.ts).
      const security = ctx.security ?? PLAIN_SECURITY;
      const usable = [
        ...(security.plainAllowed ? AUTH_MECHANISMS : []),
        ...(security.external ? ['EXTERNAL'] : []),
      ];
      ctx.sendMultiline('+OK', Buffer.from(`${usable.map((m) => `${m}\r\n`).join('')}.\r\n`));
      return { kind: 'done' };
    }
    if (w.length > 2) {
      return {
        kind: 'error',
        message: 'AUTH expects a mechanism and an optional initial response',
      };
    }
    const mechanism = (w[0] as string).toUpperCase();
    if (mechanism === 'EXTERNAL') {
      // RFC 4422 App. A, with a verified client certificate only (certlogin.ts).
      if (ctx.security?.external !== true) {
        ctx.send(`-ERR [AUTH] ${externalRefusal(ctx.security ?? PLAIN_SECURITY)}`);
        return { kind: 'done' };
      }
      ctx.pendingUser = undefined;
      const external = startSasl('EXTERNAL');
      if (w.length === 1)
        return { kind: 'sasl', exchange: external, step: external.start(undefined) };
      const decoded = decodeInitialResponse(Buffer.from(w[1] as string, 'latin1'));
      if (!decoded.ok) return { kind: 'error', message: 'Invalid initial response' };
      return { kind: 'sasl', exchange: external, step: external.start(decoded.value) };
    }
    if (mechanism !== 'PLAIN') {
      return { kind: 'error', message: 'Unsupported authentication mechanism' };
    }
    ctx.pendingUser = undefined;
    let initial: Buffer | undefined;
    if (w.length === 2) {
      const decoded = decodeInitialResponse(Buffer.from(w[1] as string, 'latin1'));
      if (!decoded.ok) return { kind: 'error', message: 'Invalid initial response' };
      initial = decoded.value;
    }
    const exchange = startSasl('PLAIN');
    return { kind: 'sasl', exchange, step: exchange.start(initial) };
  },
};
