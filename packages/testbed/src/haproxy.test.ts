// A real HAProxy in front of small Node.js TCP servers that read the PROXY protocol header
// with a strict parser of this file's own (the product will carry its own; this one only checks
// what HAProxy sends).
import { existsSync } from 'node:fs';
import * as net from 'node:net';
import { basename, dirname } from 'node:path';
import { execa } from 'execa';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  findProcesses,
  reapOrphans,
  startHaproxy,
  waitUntil,
  type Haproxy,
  type HaproxyOptions,
} from './index.js';

// Client addresses from this task's loopback range, so the backends can tell them apart from
// HAProxy's own 127.0.0.1.
const CLIENT_A = '127.0.6.7';
const CLIENT_B = '127.0.6.8';

type Header =
  | {
      kind: 'v2';
      command: 'LOCAL' | 'PROXY';
      family: string;
      source?: string;
      destination?: string;
      tlvs: number[];
    }
  | { kind: 'v1'; family: string; source?: string; destination?: string }
  | { kind: 'none' };

const V2_SIGNATURE = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');
const V1_MAX = 107; // spec section 2.1: the longest v1 line, CRLF included

/**
 * The PROXY protocol header at the start of `buffer` (haproxy.org/download/2.6/doc/proxy-protocol.txt):
 * `{ header, rest }`, `undefined` while incomplete; throws on anything malformed.
 */
function parseProxyHeader(buffer: Buffer): { header: Header; rest: Buffer } | undefined {
  const v2Prefix = buffer.subarray(0, Math.min(buffer.length, 12));
  if (v2Prefix.length > 0 && V2_SIGNATURE.subarray(0, v2Prefix.length).equals(v2Prefix)) {
    if (buffer.length < 16) return undefined;
    const verCmd = buffer[12] ?? 0;
    const fam = buffer[13] ?? 0;
    const length = buffer.readUInt16BE(14);
    if (verCmd >> 4 !== 2) throw new Error(`v2: version ${verCmd >> 4}`);
    const command = (verCmd & 0x0f) === 0 ? 'LOCAL' : (verCmd & 0x0f) === 1 ? 'PROXY' : undefined;
    if (command === undefined) throw new Error(`v2: command ${verCmd & 0x0f}`);
    if (buffer.length < 16 + length) return undefined;
    const body = buffer.subarray(16, 16 + length);
    const rest = buffer.subarray(16 + length);
    let offset = 0;
    let family = 'UNSPEC';
    let source: string | undefined;
    let destination: string | undefined;
    if (fam === 0x11) {
      if (length < 12) throw new Error('v2: TCP4 address block too short');
      const ip = (at: number): string => [...body.subarray(at, at + 4)].join('.');
      family = 'TCP4';
      source = `${ip(0)}:${body.readUInt16BE(8)}`;
      destination = `${ip(4)}:${body.readUInt16BE(10)}`;
      offset = 12;
    } else if (fam === 0x21) {
      if (length < 36) throw new Error('v2: TCP6 address block too short');
      family = 'TCP6';
      offset = 36;
    } else if (fam !== 0x00) {
      throw new Error(`v2: family/transport 0x${fam.toString(16)}`);
    }
    // section 2.2.7: the rest of the block is TLVs, type (1) length (2) value
    const tlvs: number[] = [];
    while (offset < length) {
      if (offset + 3 > length) throw new Error('v2: truncated TLV');
      const type = body[offset] ?? 0;
      const size = body.readUInt16BE(offset + 1);
      if (offset + 3 + size > length) throw new Error('v2: TLV overruns the header');
      tlvs.push(type);
      offset += 3 + size;
    }
    return { header: { kind: 'v2', command, family, source, destination, tlvs }, rest };
  }
  const v1Prefix = buffer.subarray(0, Math.min(buffer.length, 6)).toString('latin1');
  if ('PROXY '.startsWith(v1Prefix)) {
    const end = buffer.indexOf('\r\n');
    if (end < 0) {
      if (buffer.length >= V1_MAX) throw new Error('v1: no CRLF within 107 bytes');
      return undefined;
    }
    const fields = buffer.subarray(0, end).toString('latin1').split(' ');
    const rest = buffer.subarray(end + 2);
    if (fields[1] === 'UNKNOWN') return { header: { kind: 'v1', family: 'UNKNOWN' }, rest };
    const [, family, src, dst, sport, dport] = fields;
    if (fields.length !== 6 || (family !== 'TCP4' && family !== 'TCP6')) {
      throw new Error(`v1: bad line ${JSON.stringify(fields.join(' '))}`);
    }
    for (const port of [sport, dport]) {
      if (!/^(0|[1-9]\d{0,4})$/.test(port ?? '') || Number(port) > 65535) {
        throw new Error(`v1: bad port ${port}`);
      }
    }
    if (net.isIP(src ?? '') === 0 || net.isIP(dst ?? '') === 0) throw new Error('v1: bad address');
    return {
      header: { kind: 'v1', family, source: `${src}:${sport}`, destination: `${dst}:${dport}` },
      rest,
    };
  }
  return { header: { kind: 'none' }, rest: buffer };
}

interface Backend {
  name: string;
  port: number;
  /** Headers of connections that carried client bytes after the header. */
  readonly proxied: Header[];
  /** Headers of connections closed before any client byte: HAProxy's health checks. */
  readonly checks: Header[];
  readonly errors: string[];
  /** Refuse new connections and reset the open ones (a crashed server). */
  kill(): Promise<void>;
}

/** A TCP server that reads the header, then answers `NAME SOURCE\r\n` and echoes what follows. */
async function startBackend(name: string): Promise<Backend> {
  const proxied: Header[] = [];
  const checks: Header[] = [];
  const errors: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let buffer: Buffer = Buffer.alloc(0);
    let header: Header | undefined;
    let answered = false;
    // The client speaks first (HELLO): a connection that closes before any payload is a check.
    const onData = (chunk: Buffer): void => {
      buffer = Buffer.concat([buffer, chunk]);
      if (header === undefined) {
        let parsed;
        try {
          parsed = parseProxyHeader(buffer);
        } catch (error) {
          errors.push(String(error));
          socket.destroy();
          return;
        }
        if (parsed === undefined) return;
        header = parsed.header;
        buffer = parsed.rest;
      }
      if (buffer.length === 0) return;
      answered = true;
      socket.off('data', onData);
      proxied.push(header);
      const source = header.kind === 'none' ? 'unknown' : (header.source ?? 'unknown');
      socket.write(`${name} ${source}\r\n`);
      socket.write(buffer);
      socket.pipe(socket);
    };
    socket.on('data', onData);
    socket.on('end', () => socket.end());
    // HAProxy ends a check with a FIN after a header, with a reset when it sent nothing.
    socket.on('close', () => {
      if (answered) return;
      if (header === undefined && buffer.length > 0) errors.push('incomplete header');
      else checks.push(header ?? { kind: 'none' });
    });
  });
  await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return {
    name,
    port: address.port,
    proxied,
    checks,
    errors,
    async kill() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.resetAndDestroy();
      });
    },
  };
}

/** Connect from `localAddress`, send `HELLO`, return the backend's first line and the local port. */
async function ask(
  host: string,
  port: number,
  localAddress: string,
  options: { keepOpen?: boolean } = {},
): Promise<{ line: string; localPort: number; socket: net.Socket }> {
  const socket = net.connect({ host, port, localAddress });
  socket.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const localPort = socket.localPort ?? 0;
  socket.write('HELLO\r\n');
  const line = await new Promise<string>((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => reject(new Error('no answer within 10 s')), 10_000);
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
      const end = text.indexOf('\r\n');
      if (end >= 0) {
        clearTimeout(timer);
        resolve(text.slice(0, end));
      }
    });
    socket.once('close', () => {
      clearTimeout(timer);
      reject(new Error(`closed after ${JSON.stringify(text)}`));
    });
  });
  if (!options.keepOpen) socket.destroy();
  return { line, localPort, socket };
}

const started: Haproxy[] = [];
const backends: Backend[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((h) => h.stop()));
  await Promise.all(backends.splice(0).map((b) => b.kill()));
});
afterAll(async () => {
  await Promise.all(started.map((h) => h.stop()));
});

async function setUp(
  options: Omit<HaproxyOptions, 'listeners' | 'servers'> = {},
): Promise<{ haproxy: Haproxy; one: Backend; two: Backend }> {
  const [one, two] = await Promise.all([startBackend('one'), startBackend('two')]);
  backends.push(one, two);
  const haproxy = await startHaproxy({
    listeners: [{ name: 'imap' }],
    servers: [
      { name: 'one', host: '127.0.0.1', port: one.port },
      { name: 'two', host: '127.0.0.1', port: two.port },
    ],
    ...options,
  });
  started.push(haproxy);
  return { haproxy, one, two };
}

describe('HAProxy with send-proxy-v2', () => {
  it('passes the real client address and port in a v2 header, round robin over both servers', async () => {
    const { haproxy, one, two } = await setUp();
    const l = haproxy.listener('imap');
    expect(l.host).toBe('127.0.0.1');
    await haproxy.waitForServer('one', 'UP');
    await haproxy.waitForServer('two', 'UP');

    const first = await ask(l.host, l.port, CLIENT_A);
    const second = await ask(l.host, l.port, CLIENT_B);
    const answers = [first.line, second.line].sort();
    expect(answers).toEqual([
      expect.stringMatching(/^one 127\.0\.6\.[78]:\d+$/),
      expect.stringMatching(/^two 127\.0\.6\.[78]:\d+$/),
    ]);
    expect([first.line, second.line]).toContain(
      `${first.line.split(' ')[0]} ${CLIENT_A}:${first.localPort}`,
    );
    expect(second.line.endsWith(` ${CLIENT_B}:${second.localPort}`)).toBe(true);

    const headers = [...one.proxied, ...two.proxied];
    expect(headers).toHaveLength(2);
    for (const h of headers) {
      expect(h).toMatchObject({ kind: 'v2', command: 'PROXY', family: 'TCP4', tlvs: [] });
      // the destination is the address the client connected to
      expect(h.kind === 'v2' && h.destination).toBe(`${l.host}:${l.port}`);
    }
    expect([...one.errors, ...two.errors]).toEqual([]);
  });

  it('sends a v2 header with the LOCAL command on its TCP health checks', async () => {
    const { one } = await setUp({ checkIntervalMs: 100 });
    await waitUntil('two health checks', async () => one.checks.length >= 2);
    // What a PROXY-protocol listener behind HAProxy must accept without a client behind it.
    expect(one.checks[0]).toEqual({ kind: 'v2', command: 'LOCAL', family: 'UNSPEC', tlvs: [] });
    expect(one.proxied).toEqual([]);
  });

  it('marks a killed server DOWN and sends new connections to the other one', async () => {
    const { haproxy, one, two } = await setUp({ checkIntervalMs: 500 });
    const l = haproxy.listener('imap');
    await haproxy.waitForServer('two', 'UP');
    await two.kill();
    await haproxy.waitForServer('two', 'DOWN', { timeoutMs: 5000 });
    const states = await haproxy.serverStates();
    expect(states.map((s) => [s.backend, s.server, s.state])).toEqual([
      ['imap', 'one', 'UP'],
      ['imap', 'two', 'DOWN'],
    ]);
    expect(states.find((s) => s.server === 'two')?.checkStatus).toBe('L4CON');
    const answers = [];
    for (let i = 0; i < 4; i++) answers.push((await ask(l.host, l.port, CLIENT_A)).line);
    expect(answers.map((a) => a.split(' ')[0])).toEqual(['one', 'one', 'one', 'one']);
    expect(one.proxied.length).toBe(4);
  });

  it('with leastconn, sends a new connection to the server with fewer open ones', async () => {
    const { haproxy } = await setUp({ balance: 'leastconn' });
    const l = haproxy.listener('imap');
    const held = await ask(l.host, l.port, CLIENT_A, { keepOpen: true });
    try {
      const busy = held.line.split(' ')[0];
      // roundrobin would alternate; leastconn keeps choosing the idle server
      for (let i = 0; i < 3; i++) {
        const next = await ask(l.host, l.port, CLIENT_B);
        expect(next.line.split(' ')[0]).not.toBe(busy);
        // until HAProxy has seen that connection end, both servers have one
        await waitUntil('the short connection counted out', async () =>
          (await haproxy.serverStates()).every((s) => s.current === (s.server === busy ? 1 : 0)),
        );
      }
    } finally {
      held.socket.destroy();
    }
  });
});

describe('HAProxy with other PROXY protocol versions', () => {
  it('v1: a text line with the client address', async () => {
    const { haproxy, one, two } = await setUp({ proxyProtocol: 'v1', checkIntervalMs: 100 });
    const l = haproxy.listener('imap');
    const { line, localPort } = await ask(l.host, l.port, CLIENT_A);
    expect(line).toMatch(new RegExp(`^(one|two) ${CLIENT_A.replace(/\./g, '\\.')}:${localPort}$`));
    expect([...one.proxied, ...two.proxied]).toEqual([
      {
        kind: 'v1',
        family: 'TCP4',
        source: `${CLIENT_A}:${localPort}`,
        destination: `${l.host}:${l.port}`,
      },
    ]);
    // checks: HAProxy's own connection, from its check socket to the server
    await waitUntil('a health check', async () => one.checks.length > 0);
    expect(one.checks[0]).toMatchObject({
      kind: 'v1',
      family: 'TCP4',
      source: expect.stringMatching(/^127\.0\.0\.1:\d+$/),
      destination: `127.0.0.1:${one.port}`,
    });
  });

  it('none: the client bytes arrive first, checks send nothing', async () => {
    const { haproxy, one, two } = await setUp({ proxyProtocol: 'none', checkIntervalMs: 100 });
    const l = haproxy.listener('imap');
    const { line } = await ask(l.host, l.port, CLIENT_A);
    expect(line).toMatch(/^(one|two) unknown$/);
    expect([...one.proxied, ...two.proxied]).toEqual([{ kind: 'none' }]);
    await waitUntil('a passed health check', async () =>
      (await haproxy.serverStates()).every((s) => s.checkStatus === 'L4OK'),
    );
    // A check is a handshake and a reset: the application sees at most an empty connection.
    expect([...one.checks, ...two.checks].every((h) => h.kind === 'none')).toBe(true);
  });

  it('none with check-send-proxy: only the health checks carry a header', async () => {
    const { haproxy, one, two } = await setUp({
      proxyProtocol: 'none',
      checkSendProxy: true,
      checkIntervalMs: 100,
    });
    await waitUntil('a health check', async () => one.checks.length > 0);
    // HAProxy's own connection: from its check socket to the server (no client behind it)
    expect(one.checks[0]).toMatchObject({
      kind: 'v1',
      family: 'TCP4',
      source: expect.stringMatching(/^127\.0\.0\.1:\d+$/),
      destination: `127.0.0.1:${one.port}`,
    });
    const l = haproxy.listener('imap');
    await ask(l.host, l.port, CLIENT_A);
    expect([...one.proxied, ...two.proxied]).toEqual([{ kind: 'none' }]);
  });
});

describe('HAProxy lifecycle', () => {
  it('one frontend per listener, each with its own servers; stop() leaves nothing', async () => {
    const [a, b] = await Promise.all([startBackend('a'), startBackend('b')]);
    backends.push(a, b);
    const haproxy = await startHaproxy({
      listeners: [
        { name: 'imap', servers: [{ host: '127.0.0.1', port: a.port }] },
        { name: 'pop3', servers: [{ host: '127.0.0.1', port: b.port }] },
      ],
    });
    started.push(haproxy);
    expect(haproxy.listener('imap').port).not.toBe(haproxy.listener('pop3').port);
    const viaImap = await ask('127.0.0.1', haproxy.listener('imap').port, CLIENT_A);
    const viaPop3 = await ask('127.0.0.1', haproxy.listener('pop3').port, CLIENT_A);
    expect(viaImap.line.split(' ')[0]).toBe('a');
    expect(viaPop3.line.split(' ')[0]).toBe('b');
    expect((await haproxy.serverStates()).map((s) => `${s.backend}/${s.server}`)).toEqual([
      'imap/s0',
      'pop3/s0',
    ]);
    const name = basename(haproxy.dir);
    expect(findProcesses(name).length).toBe(1);
    await haproxy.stop();
    expect(haproxy.running).toBe(false);
    expect(findProcesses(name)).toEqual([]);
    expect(existsSync(haproxy.dir)).toBe(false);
  });

  it('refuses a configuration HAProxy rejects, with its log in the error', async () => {
    await expect(
      startHaproxy({
        listeners: [{ name: 'x', servers: [{ host: '127.0.0.1', port: 70000 }] }],
      }),
    ).rejects.toThrow(/haproxy exited[\s\S]*--- haproxy log ---/);
  });

  it('is reaped by a later start when the process that started it was SIGKILLed', async () => {
    const index = new URL('../dist/index.js', import.meta.url).href;
    const child = execa(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `import { startHaproxy } from ${JSON.stringify(index)};
         const h = await startHaproxy({ listeners: [{ servers: [{ host: '127.0.0.1', port: 9 }] }] });
         console.log(h.dir);
         setInterval(() => {}, 1000);`,
      ],
      { reject: false, stdin: 'ignore' },
    );
    const dir = await new Promise<string>((resolve, reject) => {
      child.stdout?.once('data', (chunk: Buffer) => resolve(chunk.toString('utf8').trim()));
      void child.then((result) => reject(new Error(`child ended: ${result.stderr}`)));
    });
    const name = basename(dir);
    expect(findProcesses(name).length).toBe(1);
    child.kill('SIGKILL');
    await child;
    expect(findProcesses(name).length).toBe(1); // HAProxy outlives its owner
    expect(await reapOrphans(dirname(dir))).toContain(dir);
    await waitUntil('haproxy gone', async () => findProcesses(name).length === 0);
    expect(existsSync(dir)).toBe(false);
  });
});
