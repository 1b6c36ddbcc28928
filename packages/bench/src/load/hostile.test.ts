// The attackers against small fake servers on loopback, each behaving one way: what the summary
// says must be what the server did.
import * as net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ATTACKS, type AttackKind, type AttackParams } from '../attackParams.js';
import { ALPACA_MARKER, type AttackJob, alpacaRequest, runAttack } from './hostile.js';

const servers: net.Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise<void>((r) => s.close(() => r()))));
});

async function fake(onConnection: (socket: net.Socket) => void): Promise<number> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    onConnection(socket);
  });
  servers.push(server);
  const close = server.close.bind(server);
  server.close = (cb) => {
    for (const s of sockets) s.destroy();
    return close(cb);
  };
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as net.AddressInfo).port;
}

/** Lines of a socket, one callback each. */
function onLines(socket: net.Socket, f: (line: string) => void): void {
  let buffer = '';
  socket.on('data', (chunk: Buffer) => {
    buffer += chunk.toString('latin1');
    let i: number;
    while ((i = buffer.indexOf('\r\n')) >= 0) {
      f(buffer.slice(0, i));
      buffer = buffer.slice(i + 2);
    }
  });
}

function job(attack: AttackKind, port: number, params: Partial<AttackParams>, ms = 800): AttackJob {
  return {
    kind: 'attack',
    attack,
    host: '127.0.0.1',
    port,
    durationMs: ms,
    params: { ...ATTACKS, ...params },
    user: 'victim',
    connections: 10,
  };
}

describe('attackers', () => {
  it('wrong passwords: one LOGIN per connection, each answer and its delay counted', async () => {
    const port = await fake((socket) => {
      socket.write('* OK fake\r\n');
      onLines(socket, (line) => {
        const tag = line.split(' ')[0];
        setTimeout(() => socket.write(`${tag} NO [AUTHENTICATIONFAILED] no\r\n`), 20);
      });
    });
    const s = await runAttack(
      job('wrongpass', port, { wrongpass: { ...ATTACKS.wrongpass, perSecond: 20 } }),
    );
    expect(s.connections).toBeGreaterThan(0);
    expect(s.answerDelayMs.length + s.unanswered).toBe(s.connections);
    expect(s.answerDelayMs.length).toBeGreaterThan(0);
    expect(s.answers[0]).toMatch(/^w\d+ NO \[AUTHENTICATIONFAILED\] no$/);
    expect(s.closedByServer).toBe(0);
  });

  it('slowloris: a server that closes pre-login clients is seen closing them', async () => {
    const port = await fake((socket) => {
      socket.write('* OK fake\r\n');
      setTimeout(() => socket.end('* BYE too slow\r\n'), 100);
    });
    const s = await runAttack(job('slowloris', port, {}, 1500));
    expect(s.connections).toBe(10);
    expect(s.closedByServer).toBe(10);
    expect(s.stillOpen).toBe(0);
    expect(s.answers).toEqual(['* BYE too slow']);
  });

  it('slowloris: connections the server keeps are still open at the end; a BYE greeting is a refusal', async () => {
    let n = 0;
    const port = await fake((socket) => {
      socket.write(n++ % 2 === 0 ? '* OK fake\r\n' : '* BYE [UNAVAILABLE] full\r\n');
      socket.resume();
    });
    const s = await runAttack(job('slowloris', port, {}, 600));
    expect(s.connections).toBe(10);
    expect(s.greetingRefused).toBe(5);
    expect(s.stillOpen).toBe(10);
  });

  it('lone CRs: a server that closes after a bounded line is seen closing, bytes counted', async () => {
    const port = await fake((socket) => {
      socket.write('* OK fake\r\n');
      let got = 0;
      socket.on('data', (c: Buffer) => {
        got += c.length;
        if (got > 100_000) socket.end('* BYE line too long\r\n');
      });
    });
    const s = await runAttack(
      job('lonecr', port, { lonecr: { ...ATTACKS.lonecr, connections: 1, mebibytes: 1 } }),
    );
    expect(s.closedByServer).toBeGreaterThan(0);
    expect(s.bytesSent).toBeGreaterThan(100_000);
  });

  it('commands never read: a server that stops reading blocks the writes', async () => {
    const port = await fake((socket) => {
      socket.pause();
    });
    const s = await runAttack(
      job(
        'noread',
        port,
        {
          noread: { ...ATTACKS.noread, connections: 2, kibPerSecond: 100_000 },
        },
        1500,
      ),
    );
    expect(s.connections).toBe(2);
    expect(s.stalled).toBe(2);
    expect(s.notGreeted).toBe(0);
  });

  it('ALPACA: a server that echoes a bad command is caught reflecting the request', async () => {
    const port = await fake((socket) => {
      socket.write('* OK fake\r\n');
      onLines(socket, (line) =>
        socket.write(`${line.split(' ')[0]} BAD ${line.toUpperCase()}\r\n`),
      );
    });
    const s = await runAttack(
      job('alpaca', port, { alpaca: { ...ATTACKS.alpaca, everyMs: 100, waitMs: 200 } }, 500),
    );
    expect(s.connections).toBeGreaterThan(0);
    expect(s.reflected).toBe(s.connections);
  });
});

describe('alpacaRequest', () => {
  it('is a well-formed HTTP POST whose Content-Length matches its body', () => {
    const request = alpacaRequest('mail.example');
    const [head, body] = request.split('\r\n\r\n');
    expect(head).toMatch(new RegExp(`^POST /${ALPACA_MARKER} HTTP/1\\.1\r\nHost: mail\\.example`));
    const length = Number(/Content-Length: (\d+)/.exec(head ?? '')?.[1]);
    expect(Buffer.byteLength(body ?? '')).toBe(length);
  });
});
