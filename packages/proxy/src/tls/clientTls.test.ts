/**
 * STARTTLS / STLS (`upgradeToTls`): once the handshake is done, the TLS socket keeps nothing of it.
 * A session keeps its socket for hours; listeners left on it would keep the handshake's promise,
 * timer and closures as long (issue 18).
 */
import { type AddressInfo, type Socket, connect as connectTcp, createServer } from 'node:net';
import { join } from 'node:path';
import { connect as connectTls } from 'node:tls';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../test-support/tempDirs.js';
import { readFromDisk } from '../files.js';
import { selfSignedCertificate } from '../test-support/selfSigned.js';
import { type ServerTls, loadServerTls } from './serverTls.js';
import { upgradeToTls } from './clientTls.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

async function serverTls(): Promise<ServerTls> {
  const dir = await tempDir('mmp-client-tls-');
  const certFile = join(dir, 'proxy.pem');
  const keyFile = join(dir, 'proxy.key');
  await selfSignedCertificate({ keyFile, certFile, subject: '/CN=mail.example.test' });
  const tls = loadServerTls(
    {
      certFiles: [certFile],
      keyFiles: [keyFile],
      keyPassword: undefined,
      cipherSpecs: undefined,
      nickname: undefined,
      clientCaFile: undefined,
    },
    readFromDisk,
  );
  if (!tls.ok) throw new Error(tls.error);
  return tls.value;
}

/** Two connected TCP sockets: [our end, the client's end]. */
async function socketPair(): Promise<[Socket, Socket]> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const accepted = new Promise<Socket>((r) => server.once('connection', r));
  const theirs = connectTcp({ port: (server.address() as AddressInfo).port, host: '127.0.0.1' });
  const ours = await accepted;
  server.close();
  return [ours, theirs];
}

describe('upgradeToTls', () => {
  it("keeps no part of a completed handshake reachable from the session's socket", async () => {
    const tls = await serverTls();
    const [plain, theirs] = await socketPair();
    const collected = new Set<string>();
    const registry = new FinalizationRegistry<string>((name) => collected.add(name));
    // In a function of its own, so that nothing but the socket's listeners can keep the promise.
    const upgrade = async (): Promise<Socket> => {
      const { socket, handshake } = upgradeToTls(plain, tls, 5_000, 'imap', false);
      registry.register(handshake, 'handshake');
      const client = connectTls({ socket: theirs, rejectUnauthorized: false });
      client.on('error', () => undefined);
      expect((await handshake).ok).toBe(true);
      return socket;
    };
    const socket = await upgrade();
    for (let i = 0; i < 5 && !collected.has('handshake'); i++) {
      gc();
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(collected.has('handshake')).toBe(true);
    expect(socket.destroyed).toBe(false);
    socket.destroy();
    theirs.destroy();
  });
});
