// A host that accepts TCP connections on the back-side ports and then never says anything:
// for tests of a store that hangs instead of refusing. It runs inside this Node.js process.
import * as net from 'node:net';

export interface HangingHost {
  readonly host: string;
  readonly ports: readonly number[];
  /** Connections accepted so far. */
  readonly accepted: number;
  stop(): Promise<void>;
}

export async function startHangingHost(
  host: string,
  ports: readonly number[],
): Promise<HangingHost> {
  const sockets = new Set<net.Socket>();
  let accepted = 0;
  const servers = await Promise.all(
    ports.map(
      (port) =>
        new Promise<net.Server>((resolve, reject) => {
          const server = net.createServer((socket) => {
            accepted++;
            socket.unref();
            sockets.add(socket);
            socket.on('error', () => undefined);
            socket.on('close', () => sockets.delete(socket));
            socket.resume(); // read and drop whatever the client sends
          });
          server.once('error', reject);
          server.listen({ host, port, exclusive: true }, () => {
            server.off('error', reject);
            server.unref();
            resolve(server);
          });
        }),
    ),
  );
  return {
    host,
    ports,
    get accepted(): number {
      return accepted;
    },
    async stop(): Promise<void> {
      for (const socket of sockets) socket.destroy();
      await Promise.all(
        servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))),
      );
    },
  };
}
