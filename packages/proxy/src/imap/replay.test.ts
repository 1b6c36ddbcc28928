import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { ConnectionAddresses } from '../clientAddress.js';
import { silentLog } from '../log.js';
import type { ReplayResult, StoreLogin } from '../store.js';
import { StoreConversation } from '../store.js';
import { listenScripted } from '../test-support/scriptedServer.js';
import { idCommand, imapReplay, quoted, takesNonSyncLiterals } from './replay.js';

const greeting = (text: string): Buffer => Buffer.from(text, 'latin1');

describe('non-synchronising literals towards the store (RFC 7888)', () => {
  it('are used when the greeting announces LITERAL+', () => {
    const dovecot = greeting(
      '* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ AUTH=PLAIN] Dovecot ready.',
    );
    expect(takesNonSyncLiterals(dovecot, [5, 100_000])).toBe(true);
    expect(takesNonSyncLiterals(greeting('* OK [capability imap4rev1 literal+] hi'), [1])).toBe(
      true,
    );
  });

  it('under LITERAL- only up to 4096 bytes each', () => {
    const g = greeting('* OK [CAPABILITY IMAP4rev1 LITERAL-] ready');
    expect(takesNonSyncLiterals(g, [4096, 12])).toBe(true);
    expect(takesNonSyncLiterals(g, [4097, 12])).toBe(false);
  });

  it('are not used without a CAPABILITY code, or when it lacks both', () => {
    expect(takesNonSyncLiterals(greeting('* OK ready'), [3])).toBe(false);
    expect(takesNonSyncLiterals(greeting('* OK [CAPABILITY IMAP4rev1] LITERAL+ ready'), [3])).toBe(
      false,
    );
    expect(takesNonSyncLiterals(greeting('* OK [CAPABILITY IMAP4rev1 LITERAL++] x'), [3])).toBe(
      false,
    );
  });
});

describe('the ID that forwards the client address (RFC 2971, Dovecot field names)', () => {
  const v6: ConnectionAddresses = {
    clientIp: '2001:db8::7',
    clientPort: 40000,
    serverIp: '::1',
    serverPort: 143,
  };

  it('names both ends as quoted strings, IPv6 included', () => {
    expect(idCommand('mmp0', v6)).toBe(
      'mmp0 ID ("x-originating-ip" "2001:db8::7" "x-originating-port" "40000" ' +
        '"x-connected-ip" "::1" "x-connected-port" "143")',
    );
  });

  it('escapes quote and backslash, so no value can end its string early', () => {
    expect(quoted('a"b\\c')).toBe('"a\\"b\\\\c"');
    const sneaky = { ...v6, clientIp: '1.2.3.4" "x-connected-ip" "6.6.6.6' };
    expect(idCommand('mmp0', sneaky)).toContain('"1.2.3.4\\" \\"x-connected-ip\\" \\"6.6.6.6"');
  });

  it('refuses what a quoted string cannot hold: CR, LF, NUL, 8-bit', () => {
    for (const bad of ['a\r\nmmp1 LOGIN x y', 'a\nb', 'a\0b', 'caf\u00e9']) {
      expect(quoted(bad)).toBeUndefined();
      expect(idCommand('mmp0', { ...v6, clientIp: bad })).toBeUndefined();
    }
  });
});

interface ScriptedImapStore {
  port: number;
  /** Everything received, per connection. */
  received: string[];
  close(): Promise<void>;
}

const open: ScriptedImapStore[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close()));
});

/**
 * A store that answers ID with `idAnswer`, `+` after a synchronising literal's length, and OK
 * after the LOGIN's last line (the names here hold no CRLF, so each literal ends its line), or
 * `+` to AUTHENTICATE PLAIN and OK to the message after it.
 * Announcing LITERAL+, it answers ID only once the LOGIN is in too: a replay that waited for
 * the ID's answer before sending the LOGIN would time out.
 */
async function scriptedImapStore(greeting: string, idAnswer = 'OK ID completed.') {
  const received: string[] = [];
  const server = await listenScripted((socket) => {
    const index = received.push('') - 1;
    let buffered = '';
    let inLogin = false;
    let inAuthenticate = false;
    let heldId: string | undefined;
    socket.write(`${greeting}\r\n`);
    socket.on('data', (chunk: Buffer) => {
      received[index] += chunk.toString('latin1');
      buffered += chunk.toString('latin1');
      for (let nl = buffered.indexOf('\r\n'); nl >= 0; nl = buffered.indexOf('\r\n')) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 2);
        if (line.startsWith('mmp0 ID ')) {
          const answer = `* ID ("name" "scripted")\r\nmmp0 ${idAnswer}\r\n`;
          if (greeting.includes('LITERAL+')) heldId = answer;
          else socket.write(answer);
          continue;
        }
        if (inAuthenticate) socket.write('mmp1 OK Logged in\r\n');
        inAuthenticate = line === 'mmp1 AUTHENTICATE PLAIN';
        if (inAuthenticate) socket.write('+ \r\n');
        if (line.startsWith('mmp1 LOGIN ')) inLogin = true;
        if (!inLogin) continue;
        if (/\{\d+\}$/.test(line)) socket.write('+ go ahead\r\n');
        else if (!line.endsWith('+}')) socket.write(`${heldId ?? ''}mmp1 OK Logged in\r\n`);
      }
    });
  });
  const store: ScriptedImapStore = { ...server, received };
  open.push(store);
  return store;
}

const CLIENT: ConnectionAddresses = {
  clientIp: '::ffff:192.0.2.7',
  clientPort: 40000,
  serverIp: '198.51.100.1',
  serverPort: 143,
};
const ID_LINE =
  'mmp0 ID ("x-originating-ip" "192.0.2.7" "x-originating-port" "40000" ' +
  '"x-connected-ip" "198.51.100.1" "x-connected-port" "143")\r\n';
const PLUS = 'mmp1 LOGIN {5+}\r\nalice {6+}\r\nsecret\r\n';
const SYNC = 'mmp1 LOGIN {5}\r\nalice {6}\r\nsecret\r\n';

const ALICE: StoreLogin = {
  kind: 'user',
  name: Buffer.from('alice'),
  password: Buffer.from('secret'),
  sasl: false,
};

async function replayTo(
  store: ScriptedImapStore,
  forwardAddress: ConnectionAddresses | undefined,
  login: StoreLogin = ALICE,
  greeted?: () => void,
): Promise<ReplayResult> {
  const socket = connect(store.port, '127.0.0.1');
  await new Promise((r) => socket.once('connect', r));
  const options = { greetingTimeoutMs: 2_000, replyTimeoutMs: 1_000, forwardAddress, greeted };
  try {
    return await imapReplay(new StoreConversation(socket), login, options, silentLog);
  } finally {
    socket.destroy();
  }
}

describe('IMAP replay: the store greeted (the attempt limiter frees its slot then)', () => {
  async function replayCountingGreeted(greeting: string) {
    const store = await scriptedImapStore(greeting);
    const seen: string[] = [];
    // what the store had received when the replay said so
    const result = await replayTo(store, undefined, ALICE, () =>
      seen.push(store.received[0] ?? ''),
    );
    return { result: result.kind, seen };
  }
  it('is told once, after a * OK greeting and before the login is sent', async () => {
    expect(await replayCountingGreeted('* OK [CAPABILITY IMAP4rev1 LITERAL+] ready')).toEqual({
      result: 'accepted',
      seen: [''],
    });
  });
  it('is not told when the store greets with * BYE', async () => {
    expect(await replayCountingGreeted('* BYE too busy')).toEqual({ result: 'failed', seen: [] });
  });
});

describe('IMAP replay with ForwardClientAddress', () => {
  const LITERAL_PLUS = '* OK [CAPABILITY IMAP4rev1 ID LITERAL+] ready';

  it('sends ID and LOGIN in one write under LITERAL+, an IPv4-mapped client as plain IPv4', async () => {
    const store = await scriptedImapStore(LITERAL_PLUS);
    const result = await replayTo(store, CLIENT);
    expect(result.kind).toBe('accepted');
    expect(result.kind === 'accepted' && result.answer.toString()).toBe('OK Logged in');
    expect(store.received).toEqual([ID_LINE + PLUS]);
  });

  it('sends ID before synchronising literals, and logs in though the store said BAD or NO', async () => {
    for (const answer of ['BAD unknown command', 'NO not now']) {
      const store = await scriptedImapStore('* OK ready', answer);
      const result = await replayTo(store, CLIENT);
      expect(result.kind).toBe('accepted');
      expect(store.received).toEqual([ID_LINE + SYNC]);
    }
  });

  it('sends no ID to a store whose greeting lists its capabilities without ID', async () => {
    const store = await scriptedImapStore('* OK [CAPABILITY IMAP4rev1 LITERAL+] ready');
    expect((await replayTo(store, CLIENT)).kind).toBe('accepted');
    expect(store.received).toEqual([PLUS]);
  });

  it('off: the replay is byte for byte what it was', async () => {
    const plus = await scriptedImapStore(LITERAL_PLUS);
    expect((await replayTo(plus, undefined)).kind).toBe('accepted');
    expect(plus.received).toEqual([PLUS]);
    const sync = await scriptedImapStore('* OK ready');
    expect((await replayTo(sync, undefined)).kind).toBe('accepted');
    expect(sync.received).toEqual([SYNC]);
  });
});

describe('IMAP replay by the master user (StoreAdmin, certificate login)', () => {
  const MASTER: StoreLogin = {
    kind: 'master',
    user: Buffer.from('alice'),
    admin: Buffer.from('admin'),
    password: Buffer.from('admin-secret'),
  };
  const PLAIN = `mmp1 AUTHENTICATE PLAIN\r\n${Buffer.from('alice\0admin\0admin-secret').toString('base64')}\r\n`;

  it('authenticates PLAIN with the user as authorization identity, LITERAL+ or not', async () => {
    for (const greeting of ['* OK [CAPABILITY IMAP4rev1 ID LITERAL+] ready', '* OK ready']) {
      const store = await scriptedImapStore(greeting);
      const result = await replayTo(store, undefined, MASTER);
      expect(result.kind === 'accepted' && result.answer.toString()).toBe('OK Logged in');
      expect(store.received).toEqual([PLAIN]);
    }
  });

  it('forwards the client address by ID first, as for a password login', async () => {
    const store = await scriptedImapStore('* OK ready');
    expect((await replayTo(store, CLIENT, MASTER)).kind).toBe('accepted');
    expect(store.received).toEqual([ID_LINE + PLAIN]);
  });
});

describe('OAuth2 replay (RFC 7628): the message as sent, the refusal relayed', () => {
  const CHALLENGE = '+ eyJzdGF0dXMiOiJpbnZhbGlkX3Rva2VuIn0=';
  const MESSAGE = Buffer.from('n,a=alice,\x01auth=Bearer t0k\x01\x01');
  const B64 = MESSAGE.toString('base64');
  const BEARER: StoreLogin = { kind: 'bearer', mechanism: 'OAUTHBEARER', message: MESSAGE };

  /** A store refusing every token as Dovecot does: the JSON challenge, then NO (BAD to `*`). */
  async function refusingStore(greeting: string): Promise<ScriptedImapStore> {
    const received: string[] = [];
    const server = await listenScripted((socket) => {
      const index = received.push('') - 1;
      let buffered = '';
      let step: 'command' | 'message' | 'reply' = 'command';
      socket.write(`${greeting}\r\n`);
      socket.on('data', (chunk: Buffer) => {
        received[index] += chunk.toString('latin1');
        buffered += chunk.toString('latin1');
        for (let nl = buffered.indexOf('\r\n'); nl >= 0; nl = buffered.indexOf('\r\n')) {
          const line = buffered.slice(0, nl);
          buffered = buffered.slice(nl + 2);
          if (step === 'command' && line === 'mmp1 AUTHENTICATE OAUTHBEARER') {
            socket.write('+ \r\n');
            step = 'message';
          } else if (step === 'command' || step === 'message') {
            socket.write(`${CHALLENGE}\r\n`);
            step = 'reply';
          } else
            socket.write(
              line === '*'
                ? 'mmp1 BAD Authentication aborted by client.\r\n'
                : 'mmp1 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n',
            );
        }
      });
    });
    const store: ScriptedImapStore = { ...server, received };
    open.push(store);
    return store;
  }

  async function bearerTo(
    store: ScriptedImapStore,
    reply: string,
  ): Promise<{ result: ReplayResult; challenges: string[] }> {
    const socket = connect(store.port, '127.0.0.1');
    await new Promise((r) => socket.once('connect', r));
    const challenges: string[] = [];
    const options = {
      greetingTimeoutMs: 2_000,
      replyTimeoutMs: 1_000,
      forwardAddress: undefined,
      relay: (line: Buffer) => {
        challenges.push(line.toString('latin1'));
        return Promise.resolve(Buffer.from(reply));
      },
    };
    try {
      const result = await imapReplay(new StoreConversation(socket), BEARER, options, silentLog);
      return { result, challenges };
    } finally {
      socket.destroy();
    }
  }

  it('sends the message as an initial response when the greeting lists SASL-IR, else after +', async () => {
    const ir = await refusingStore('* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=OAUTHBEARER] ready');
    const withIr = await bearerTo(ir, 'AQ==');
    expect(ir.received[0]).toBe(`mmp1 AUTHENTICATE OAUTHBEARER ${B64}\r\nAQ==\r\n`);
    expect(withIr.challenges).toEqual([CHALLENGE]);
    expect(withIr.result).toEqual({
      kind: 'refused',
      answer: Buffer.from('NO [AUTHENTICATIONFAILED] Authentication failed.'),
    });
    const noIr = await refusingStore('* OK [CAPABILITY IMAP4rev1 AUTH=OAUTHBEARER] ready');
    await bearerTo(noIr, 'AQ==');
    expect(noIr.received[0]).toBe(`mmp1 AUTHENTICATE OAUTHBEARER\r\n${B64}\r\nAQ==\r\n`);
  });

  it("passes the client's * on, and the store's BAD back as its final word", async () => {
    const store = await refusingStore('* OK [CAPABILITY IMAP4rev1 SASL-IR] ready');
    expect((await bearerTo(store, '*')).result).toEqual({
      kind: 'refused',
      answer: Buffer.from('BAD Authentication aborted by client.'),
    });
  });
});
