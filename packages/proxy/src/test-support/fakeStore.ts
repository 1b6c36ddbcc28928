/**
 * A minimal IMAP store for the session's unit tests (the end-to-end tests use real Dovecot).
 * It accepts `LOGIN` with literals (what our replay sends: non-synchronising ones only when its
 * greeting announced LITERAL+), sends an untagged
 * CAPABILITY before its tagged answer (as some stores do), and after login answers NOOP, LOGOUT,
 * `ECHO text` (answers `* ECHO text`), `SEND n` (n bytes in a literal), and `DIE` (closes at once).
 */

import { type AddressInfo, type Server, type Socket, createServer } from 'node:net';

export interface FakeStore {
  name: string;
  port: number;
  /** Every login attempt: name and password bytes. */
  /** Every login attempt: name and password bytes, and whether the literals were `{n+}`. */
  logins: { user: Buffer; password: Buffer; nonSync: boolean }[];
  /** Lines received after login. */
  received: string[];
  /** Connections open now. */
  readonly connections: number;
  close(): Promise<void>;
}

export async function startFakeStore(opts: {
  name: string;
  /** user → password */
  accounts: Record<string, Buffer | string>;
  greeting?: string;
  /** Never greet (a hung store). */
  hang?: boolean;
  /** Wait this long before answering a login (a slow password backend). */
  loginDelayMs?: number;
  /** Untagged lines said before the tagged answer to a login, accepted or not. */
  untagged?: readonly string[];
}): Promise<FakeStore> {
  const sockets = new Set<Socket>();
  const store: FakeStore = {
    name: opts.name,
    port: 0,
    logins: [],
    received: [],
    get connections() {
      return sockets.size;
    },
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    if (opts.hang) return;
    serve(socket, store, opts);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  store.port = (server.address() as AddressInfo).port;
  return store;
}

function serve(
  socket: Socket,
  store: FakeStore,
  opts: {
    name: string;
    accounts: Record<string, Buffer | string>;
    greeting?: string;
    loginDelayMs?: number;
    untagged?: readonly string[];
  },
): void {
  let buf = Buffer.alloc(0);
  let loggedIn = false;
  /** A literal being read: bytes still expected, and what to do with them. */
  let literal: { size: number; then: (bytes: Buffer) => void } | undefined;
  const parts: Buffer[] = [];
  let tag = '';
  let nonSync = false;
  const greeting = opts.greeting ?? `* OK [CAPABILITY IMAP4rev1] fake store ${opts.name} ready`;
  const literalPlus = /\[CAPABILITY [^\]]*\bLITERAL\+/i.test(greeting);
  socket.write(`${greeting}\r\n`);

  const onLine = (line: string): void => {
    if (!loggedIn) {
      const m = /^(\S+) LOGIN \{(\d+)(\+?)\}$/.exec(line);
      if (m === null || (m[3] === '+' && !literalPlus)) {
        socket.write(`${line.split(' ')[0]} BAD fake store expects LOGIN {n}\r\n`);
        return;
      }
      tag = m[1] as string;
      parts.length = 0;
      nonSync = m[3] === '+';
      expectLiteral(Number(m[2]), m[3] === '+', (user) => {
        parts.push(user);
      });
      return;
    }
    store.received.push(line);
    const [t, verb, ...rest] = line.split(' ');
    switch (verb?.toUpperCase()) {
      case 'NOOP':
        socket.write(`${t} OK NOOP on store ${opts.name}\r\n`);
        return;
      case 'ECHO':
        socket.write(`* ECHO ${rest.join(' ')}\r\n${t} OK ECHO done\r\n`);
        return;
      case 'SEND': {
        const n = Number(rest[0]);
        const body = Buffer.alloc(n, 0x78);
        socket.write(`* 1 FETCH (BODY[] {${n}}\r\n`);
        socket.write(body);
        socket.write(`)\r\n${t} OK SEND done\r\n`);
        return;
      }
      case 'LOGOUT':
        socket.end(`* BYE store ${opts.name} logging out\r\n${t} OK LOGOUT completed\r\n`);
        return;
      case 'DIE':
        socket.end(`* 1 EXISTS\r\n`);
        return;
      default:
        socket.write(`${t} BAD unknown\r\n`);
    }
  };

  const expectLiteral = (size: number, plus: boolean, then: (b: Buffer) => void): void => {
    literal = { size, then };
    if (!plus) socket.write('+ OK\r\n');
  };

  // After the name literal comes ` {m}` CRLF, then the password literal, then CRLF.
  const onLoginTail = (line: string): boolean => {
    if (parts.length === 1) {
      const m = /^ \{(\d+)(\+?)\}$/.exec(line);
      if (m === null || (m[2] === '+') !== nonSync) return false;
      expectLiteral(Number(m[1]), m[2] === '+', (password) => parts.push(password));
      return true;
    }
    if (parts.length === 2 && line === '') {
      const [user, password] = parts as [Buffer, Buffer];
      parts.length = 0;
      store.logins.push({ user, password, nonSync });
      const expected = opts.accounts[user.toString('utf8')];
      const accepted = expected !== undefined && Buffer.from(expected).equals(password);
      // Lines after the login wait until it is answered (read on, as a real store's buffer would).
      loggedIn = accepted;
      const answer = (): void => {
        for (const line of opts.untagged ?? []) socket.write(`${line}\r\n`);
        if (accepted) {
          socket.write(`${tag} OK [CAPABILITY IMAP4rev1 X-STORE-${opts.name}] Logged in\r\n`);
        } else {
          socket.write(`${tag} NO [AUTHENTICATIONFAILED] Authentication failed.\r\n`);
        }
      };
      if (opts.loginDelayMs === undefined) answer();
      else {
        held = true;
        setTimeout(() => {
          answer();
          held = false;
          work();
        }, opts.loginDelayMs);
      }
      return true;
    }
    return false;
  };

  let held = false;
  const work = (): void => {
    while (!held) {
      if (literal !== undefined) {
        if (buf.length < literal.size) return;
        const bytes = buf.subarray(0, literal.size);
        buf = buf.subarray(literal.size);
        const l = literal;
        literal = undefined;
        l.then(Buffer.from(bytes));
        continue;
      }
      const lf = buf.indexOf(0x0a);
      if (lf < 0) return;
      const line = buf.subarray(0, lf).toString('latin1').replace(/\r$/, '');
      buf = buf.subarray(lf + 1);
      if (!loggedIn && parts.length > 0 && onLoginTail(line)) continue;
      onLine(line);
    }
  };
  socket.on('data', (chunk: Buffer) => {
    buf = Buffer.concat([buf, chunk]);
    work();
  });
}
