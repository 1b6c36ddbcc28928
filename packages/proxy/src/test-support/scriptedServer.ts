/**
 * A loopback TCP server whose connections a replay test scripts line by line (a store that
 * answers exactly what the test needs), closed with every connection it holds.
 */

import { type AddressInfo, type Socket, createServer } from 'node:net';

export interface ScriptedServer {
  port: number;
  close(): Promise<void>;
}

export async function listenScripted(handle: (socket: Socket) => void): Promise<ScriptedServer> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    handle(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
