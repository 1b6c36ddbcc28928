// Tiny raw-socket helpers: wait for a port, read a server greeting.
import * as net from 'node:net';
import * as tls from 'node:tls';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export interface GreetingOptions {
  timeoutMs?: number;
  /** Implicit TLS (imaps/pop3s); the certificate is not verified. */
  tls?: boolean;
}

/** Connect, read the first line the server sends (without CRLF), close. */
export function readGreeting(
  host: string,
  port: number,
  options: GreetingOptions = {},
): Promise<string> {
  const timeoutMs = options.timeoutMs ?? 5000;
  return new Promise((resolve, reject) => {
    const socket = options.tls
      ? tls.connect({ host, port, rejectUnauthorized: false })
      : net.connect({ host, port });
    let buffer = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no greeting from ${host}:${port} within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      const end = buffer.indexOf('\r\n');
      if (end >= 0) {
        clearTimeout(timer);
        socket.destroy();
        resolve(buffer.slice(0, end));
      }
    });
    socket.once('error', (error) => {
      clearTimeout(timer);
      socket.destroy();
      reject(error);
    });
    socket.once('end', () => {
      clearTimeout(timer);
      reject(new Error(`${host}:${port} closed before its greeting`));
    });
  });
}

/** Resolves when a TCP connection to host:port succeeds. */
export function canConnect(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(false);
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(false);
    });
  });
}

/**
 * Poll `probe` until it resolves truthy; give up after `timeoutMs`, or as soon as `abort()`
 * returns an error message (the server process died, say).
 */
export async function waitUntil(
  what: string,
  probe: () => Promise<boolean>,
  options: { timeoutMs?: number; abort?: () => string | undefined } = {},
): Promise<void> {
  const deadline = Date.now() + (options.timeoutMs ?? 10_000);
  for (let delay = 5; ; delay = Math.min(delay * 2, 25)) {
    const reason = options.abort?.();
    if (reason !== undefined) throw new Error(`${what}: ${reason}`);
    if (await probe()) return;
    if (Date.now() > deadline)
      throw new Error(`${what}: not ready within ${options.timeoutMs ?? 10_000} ms`);
    await sleep(delay);
  }
}
