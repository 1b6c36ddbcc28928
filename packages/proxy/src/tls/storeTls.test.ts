/**
 * TLS to the store against a local TLS server whose certificate is its own CA and names
 * mail.other.example only: the chain verifies with that CA, the host name 127.0.0.1 does not.
 */

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type Server, createServer } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../test-support/tempDirs.js';
import { selfSignedCertificate } from '../test-support/selfSigned.js';
import { connectStoreTls } from './storeTls.js';

let server: Server;
let port: number;
let ca: string;

beforeAll(async () => {
  const dir = await tempDir('mmp-store-tls-');
  const certFile = join(dir, 'store.pem');
  const keyFile = join(dir, 'store.key');
  await selfSignedCertificate({
    keyFile,
    certFile,
    subject: '/CN=mail.other.example',
    altName: 'DNS:mail.other.example',
  });
  server = createServer(
    { cert: await readFile(certFile), key: await readFile(keyFile) },
    (socket) => socket.end('* OK store ready\r\n'),
  );
  ca = await readFile(certFile, 'utf8');
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const a = server.address();
  port = typeof a === 'object' && a !== null ? a.port : 0;
});

afterAll(() => {
  server?.close();
});

describe('connectStoreTls', () => {
  it('a certificate that does not name the store host is refused (RFC 6125)', async () => {
    const r = await connectStoreTls({ host: '127.0.0.1', port }, 5_000, { ca, verify: true });
    expect(r.ok).toBe(false);
    expect(r.ok ? '' : r.error.detail).toMatch(/^TLS: ERR_TLS_CERT_ALTNAME_INVALID/);
  });

  it('a certificate from an unknown CA is refused (system CAs)', async () => {
    const r = await connectStoreTls({ host: '127.0.0.1', port }, 5_000, {
      ca: undefined,
      verify: true,
    });
    expect(r.ok).toBe(false);
    expect(r.ok ? '' : r.error.detail).toMatch(/^TLS: .*SELF_SIGNED|^TLS: .*self.signed/i);
  });

  it('SSLBacksideVerify=no connects anyway', async () => {
    const r = await connectStoreTls({ host: '127.0.0.1', port }, 5_000, {
      ca: undefined,
      verify: false,
    });
    expect(r.ok).toBe(true);
    if (r.ok) r.value.destroy();
  });

  it('a refused TCP connection is an unreachable store', async () => {
    const r = await connectStoreTls({ host: '127.0.0.1', port: 1 }, 5_000, {
      ca: undefined,
      verify: true,
    });
    expect(r.ok ? undefined : r.error.kind).toBe('unreachable');
  });
});
