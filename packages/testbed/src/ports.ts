// Free TCP ports, found by binding port 0 (and checking the same number on other addresses).
import * as net from 'node:net';

function listen(host: string, port: number): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen({ host, port, exclusive: true }, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}

function close(server: net.Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

function boundPort(server: net.Server): number {
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('not a TCP server');
  return address.port;
}

/** One free port on `host`. */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const [port] = await freePortsOnAll([host], 1);
  if (port === undefined) throw new Error(`no free port on ${host}`);
  return port;
}

/**
 * `count` distinct port numbers, each free on every address of `hosts` at once (nothing
 * listening on it there, not even on the wildcard address). The ports are held while searching
 * so that they differ, then released.
 */
export async function freePortsOnAll(hosts: readonly string[], count: number): Promise<number[]> {
  const [first, ...others] = hosts;
  if (first === undefined) throw new Error('freePortsOnAll: no host');
  const held: net.Server[] = [];
  const ports: number[] = [];
  try {
    for (let attempt = 0; ports.length < count; attempt++) {
      if (attempt > 200) throw new Error(`no port free on all of ${hosts.join(', ')}`);
      const probe = await listen(first, 0);
      const port = boundPort(probe);
      const group = [probe];
      let ok = true;
      for (const host of others) {
        try {
          group.push(await listen(host, port));
        } catch {
          ok = false;
          break;
        }
      }
      if (ok) {
        held.push(...group);
        ports.push(port);
      } else {
        // keep the failed probe bound until we are done, so port 0 does not hand it out again
        held.push(...group);
      }
    }
    return ports;
  } finally {
    await Promise.all(held.map(close));
  }
}
