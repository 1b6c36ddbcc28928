// A fake IMAP server for the load generator's tests: it greets, cuts the input into lines and
// hands each command to the test's answer function; each connection gets its own function, so
// that a test can keep per-connection state (the user that logged in).
import * as net from 'node:net';

export interface FakeCommand {
  tag: string;
  verb: string;
  /** The first argument, quotes removed. */
  arg: string;
}

export type Answer = (command: FakeCommand, socket: net.Socket) => void;

export interface FakeImap {
  port: number;
  close(): Promise<void>;
}

export async function startFakeImap(perConnection: () => Answer): Promise<FakeImap> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    socket.write('* OK fake\r\n');
    const answer = perConnection();
    let buffer = '';
    socket.on('data', (chunk: Buffer) => {
      buffer += chunk.toString('latin1');
      let i: number;
      while ((i = buffer.indexOf('\r\n')) >= 0) {
        const [tag = '', verb = '', arg = ''] = buffer.slice(0, i).split(' ');
        buffer = buffer.slice(i + 2);
        answer({ tag, verb, arg: arg.replace(/"/g, '') }, socket);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
