// A "scripted store": a TCP server on its own loopback address that speaks just enough IMAP and
// POP3 before login to misbehave in one chosen way, for the tests of a store that fails in the
// ugly ways (issue 14). It runs inside the process that started it. The behaviour can change
// between connections; each connection keeps the behaviour it was accepted with.
import * as net from 'node:net';

export type ScriptedBehaviour =
  /** Accept the connection and never send a byte. */
  | 'never-greet'
  /** Send the first half of the greeting line (no CRLF), then nothing. */
  | 'stall-mid-greeting'
  /** Greet; answer the login with half a line (no CRLF), then nothing. */
  | 'stall-mid-reply'
  /**
   * Greet; reset the connection (TCP RST) as soon as the login starts: IMAP's `LOGIN` or
   * `AUTHENTICATE` line (before any literal), POP3's `PASS` or `AUTH` (`USER` gets `+OK`).
   */
  | 'reset-on-login'
  /** A greeting that is neither IMAP nor POP3 (binary bytes and text), then nothing. */
  | 'garbage-greeting'
  /** Greet; answer the login with a line of garbage, then nothing. */
  | 'garbage-reply'
  /** Greet; accept the login with OK, then close (FIN) right after the OK. */
  | 'close-after-ok'
  /** Greet; accept the login with OK (LOGIN, USER+PASS, AUTH), then echo every byte back. */
  | 'echo';

export const SCRIPTED_BEHAVIOURS: readonly ScriptedBehaviour[] = [
  'never-greet',
  'stall-mid-greeting',
  'stall-mid-reply',
  'reset-on-login',
  'garbage-greeting',
  'garbage-reply',
  'close-after-ok',
  'echo',
];

/** What `garbage-greeting` and `garbage-reply` send: a TLS-record-like start, NUL, escapes. */
export const GARBAGE = Buffer.from(
  '\x16\x03\x01\x00\xff\x00garbage \x1b[31mnot a reply\r\n',
  'latin1',
);

export interface ScriptedStoreOptions {
  host: string;
  /** 0 (default) for a free port; omit a protocol with `null`. */
  imapPort?: number | null;
  pop3Port?: number | null;
  behaviour: ScriptedBehaviour;
  /** In the greeting: `mmp-test scripted store NAME ready` (default: the address). */
  name?: string;
}

export interface ScriptedStore {
  readonly host: string;
  readonly name: string;
  /** 0 when not listening for that protocol. */
  readonly imapPort: number;
  readonly pop3Port: number;
  /** The behaviour of connections accepted from now on. */
  behaviour: ScriptedBehaviour;
  /** Connections accepted so far. */
  readonly accepted: number;
  /** Logins answered with OK so far (close-after-ok and echo). */
  readonly logins: number;
  /**
   * The first line of every command received before login, in order (IMAP: literal contents
   * left out; POP3: the argument of PASS replaced by `***`), prefixed by the protocol:
   * `imap: mmp1 LOGIN {5}`, `pop3: USER alice`.
   */
  readonly commands: readonly string[];
  /** Connections now open. */
  readonly open: number;
  stop(): Promise<void>;
}

type Protocol = 'imap' | 'pop3';

const IMAP_CAPABILITIES = 'IMAP4rev1 LITERAL+ SASL-IR ID AUTH=PLAIN';

function greeting(protocol: Protocol, name: string): string {
  return protocol === 'imap'
    ? `* OK [CAPABILITY ${IMAP_CAPABILITIES}] mmp-test scripted store ${name} ready\r\n`
    : `+OK mmp-test scripted store ${name} ready.\r\n`;
}

/**
 * Reads CRLF lines; an IMAP line ending in a literal announcement `{N}` / `{N+}` takes the N
 * bytes and the rest of the command with it (RFC 3501 section 7.5: a synchronising literal
 * gets a `+` continuation first).
 */
class CommandReader {
  private buffer = Buffer.alloc(0);
  private pendingLiteral = 0;
  private parts: string[] = [];

  constructor(
    private readonly protocol: Protocol,
    private readonly onContinue: () => void,
  ) {}

  push(chunk: Buffer): void {
    this.buffer = Buffer.concat([this.buffer, chunk]);
  }

  /**
   * The next whole command (the text of its first line), or undefined until more bytes come.
   * One at a time, so that what follows a login stays unread in rest().
   */
  next(): string | undefined {
    for (;;) {
      if (this.pendingLiteral > 0) {
        if (this.buffer.length < this.pendingLiteral) return undefined;
        this.buffer = this.buffer.subarray(this.pendingLiteral);
        this.pendingLiteral = 0;
        continue;
      }
      const end = this.buffer.indexOf('\n');
      if (end < 0) return undefined;
      const line = this.buffer.subarray(0, end).toString('latin1').replace(/\r$/, '');
      this.buffer = this.buffer.subarray(end + 1);
      this.parts.push(line);
      const literal = this.protocol === 'imap' ? /\{(\d+)(\+?)\}$/.exec(line) : null;
      if (literal !== null) {
        this.pendingLiteral = Number(literal[1]);
        if (literal[2] !== '+') this.onContinue();
        continue;
      }
      const [first = ''] = this.parts;
      this.parts = [];
      return first;
    }
  }

  /** The first line of the command in progress, if it has started (a literal is pending). */
  get started(): string | undefined {
    return this.parts[0];
  }

  /** Bytes received and not read as a command yet. */
  rest(): Buffer {
    return this.buffer;
  }
}

const LOGIN_VERBS: Record<Protocol, readonly string[]> = {
  imap: ['LOGIN', 'AUTHENTICATE'],
  pop3: ['PASS', 'AUTH', 'APOP'],
};

function verbOf(protocol: Protocol, line: string): { tag: string; verb: string; args: string } {
  if (protocol === 'imap') {
    const [tag = '', verb = '', ...args] = line.split(' ');
    return { tag, verb: verb.toUpperCase(), args: args.join(' ') };
  }
  const [verb = '', ...args] = line.split(' ');
  return { tag: '', verb: verb.toUpperCase(), args: args.join(' ') };
}

function serve(
  socket: net.Socket,
  protocol: Protocol,
  behaviour: ScriptedBehaviour,
  name: string,
  record: { command(line: string): void; login(): void },
): void {
  socket.on('error', () => undefined);
  const hello = greeting(protocol, name);
  switch (behaviour) {
    case 'never-greet':
      socket.resume();
      return;
    case 'stall-mid-greeting':
      socket.write(hello.slice(0, Math.floor(hello.length / 2)));
      socket.resume();
      return;
    case 'garbage-greeting':
      socket.write(GARBAGE);
      socket.resume();
      return;
    default:
      break;
  }
  socket.write(hello);

  let stopped = false;
  // AUTHENTICATE / AUTH without an initial response: the next line is the client's response.
  let saslPending: { tag: string } | undefined;
  const reader = new CommandReader(protocol, () => {
    const started = reader.started ?? '';
    if (
      behaviour === 'reset-on-login' &&
      LOGIN_VERBS[protocol].includes(verbOf(protocol, started).verb)
    ) {
      return; // handled in onData: the reset comes before any continuation
    }
    socket.write('+ go ahead\r\n');
  });

  const ok = (tag: string): string =>
    protocol === 'imap'
      ? `${tag} OK [CAPABILITY ${IMAP_CAPABILITIES}] Logged in\r\n`
      : '+OK Logged in.\r\n';

  const loginArrived = (tag: string): void => {
    stopped = true;
    socket.off('data', onData);
    switch (behaviour) {
      case 'stall-mid-reply': {
        const reply = ok(tag);
        socket.write(reply.slice(0, Math.floor(reply.length / 2)));
        socket.resume();
        return;
      }
      case 'garbage-reply':
        socket.write(GARBAGE);
        socket.resume();
        return;
      case 'close-after-ok':
        record.login();
        socket.end(ok(tag));
        return;
      case 'echo': {
        record.login();
        socket.write(ok(tag));
        const rest = reader.rest();
        if (rest.length > 0) socket.write(rest);
        socket.pipe(socket);
        return;
      }
      default:
        socket.resetAndDestroy();
    }
  };

  const answer = (line: string): void => {
    if (saslPending !== undefined) {
      const { tag } = saslPending;
      saslPending = undefined;
      loginArrived(tag);
      return;
    }
    const { tag, verb, args } = verbOf(protocol, line);
    record.command(`${protocol}: ${verb === 'PASS' ? 'PASS ***' : line}`);
    if (LOGIN_VERBS[protocol].includes(verb)) {
      // AUTHENTICATE PLAIN / AUTH PLAIN without an initial response asks for it first
      const saslWithoutIr = (verb === 'AUTHENTICATE' || verb === 'AUTH') && !args.includes(' ');
      if (saslWithoutIr && behaviour !== 'reset-on-login') {
        saslPending = { tag };
        socket.write('+ \r\n');
        return;
      }
      loginArrived(tag);
      return;
    }
    if (protocol === 'imap') {
      if (verb === 'CAPABILITY')
        socket.write(`* CAPABILITY ${IMAP_CAPABILITIES}\r\n${tag} OK done\r\n`);
      else if (verb === 'ID') socket.write(`* ID NIL\r\n${tag} OK done\r\n`);
      else if (verb === 'LOGOUT') socket.end(`* BYE bye\r\n${tag} OK done\r\n`);
      else socket.write(`${tag} OK done\r\n`);
      return;
    }
    if (verb === 'CAPA') socket.write('+OK\r\nUSER\r\nSASL PLAIN\r\n.\r\n');
    else if (verb === 'QUIT') socket.end('+OK bye\r\n');
    else socket.write('+OK\r\n');
  };

  const onData = (chunk: Buffer): void => {
    reader.push(chunk);
    for (let line = reader.next(); line !== undefined; line = reader.next()) {
      answer(line);
      if (stopped) return;
    }
    // A login with a literal still to come: reset-on-login resets now, mid-replay.
    const started = reader.started;
    if (
      !stopped &&
      behaviour === 'reset-on-login' &&
      started !== undefined &&
      LOGIN_VERBS[protocol].includes(verbOf(protocol, started).verb)
    ) {
      record.command(`${protocol}: ${started}`);
      loginArrived('');
    }
  };
  socket.on('data', onData);
}

function listen(
  host: string,
  port: number,
  onConnection: (socket: net.Socket) => void,
): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const server = net.createServer(onConnection);
    server.once('error', reject);
    server.listen({ host, port, exclusive: true }, () => {
      server.off('error', reject);
      server.unref();
      resolve(server);
    });
  });
}

function portOf(server: net.Server | undefined): number {
  const address = server?.address();
  return address === undefined || address === null || typeof address === 'string'
    ? 0
    : address.port;
}

export async function startScriptedStore(options: ScriptedStoreOptions): Promise<ScriptedStore> {
  const name = options.name ?? options.host;
  const sockets = new Set<net.Socket>();
  const commands: string[] = [];
  let accepted = 0;
  let logins = 0;
  let behaviour = options.behaviour;
  const record = {
    command: (line: string) => commands.push(line),
    login: () => {
      logins++;
    },
  };
  const accept =
    (protocol: Protocol) =>
    (socket: net.Socket): void => {
      accepted++;
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      serve(socket, protocol, behaviour, name, record);
    };
  const servers: net.Server[] = [];
  try {
    if (options.imapPort !== null) {
      servers.push(await listen(options.host, options.imapPort ?? 0, accept('imap')));
    }
    if (options.pop3Port !== null) {
      servers.push(await listen(options.host, options.pop3Port ?? 0, accept('pop3')));
    }
  } catch (error) {
    for (const server of servers) server.close();
    throw error;
  }
  const imapServer = options.imapPort === null ? undefined : servers[0];
  const pop3Server = options.pop3Port === null ? undefined : servers.at(-1);
  return {
    host: options.host,
    name,
    imapPort: portOf(imapServer),
    pop3Port: portOf(pop3Server),
    get behaviour(): ScriptedBehaviour {
      return behaviour;
    },
    set behaviour(next: ScriptedBehaviour) {
      behaviour = next;
    },
    get accepted(): number {
      return accepted;
    },
    get logins(): number {
      return logins;
    },
    commands,
    get open(): number {
      return sockets.size;
    },
    async stop(): Promise<void> {
      for (const socket of sockets) socket.destroy();
      await Promise.all(
        servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))),
      );
    },
  };
}
