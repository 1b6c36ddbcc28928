import { type Socket, createServer, connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { waitUntil } from '@mmp/testbed';
import { type Account, holdSessions, privilegesFor } from './privileges.js';
import type { SessionContext, SessionHandle } from './server.js';

const MMP: Account = { user: 'mmp', uid: 998, gid: 997 };
const lookup = (u: string): Account | undefined =>
  u === 'mmp' ? MMP : u === 'toor' ? { user: 'toor', uid: 0, gid: 0 } : undefined;

describe('privilegesFor', () => {
  it('as root: drops to RunAsUser, serves as root only when told so, refuses otherwise', () => {
    expect(privilegesFor('mmp', 0, lookup)).toEqual({
      ok: true,
      value: { kind: 'drop', account: MMP },
    });
    expect(privilegesFor('root', 0, lookup)).toEqual({ ok: true, value: { kind: 'root' } });
    expect(privilegesFor(undefined, 0, lookup)).toMatchObject({ ok: false });
    expect(privilegesFor('  ', 0, lookup)).toMatchObject({ ok: false });
    expect(privilegesFor('nosuch', 0, lookup)).toEqual({
      ok: false,
      error: "RunAsUser 'nosuch' is not a user on this system",
    });
    // Another name for uid 0 is not the explicit opt-in.
    expect(privilegesFor('toor', 0, lookup)).toMatchObject({ ok: false });
  });

  it('not as root: runs as is, and says when RunAsUser names someone else', () => {
    expect(privilegesFor(undefined, 998, lookup)).toEqual({
      ok: true,
      value: { kind: 'unprivileged' },
    });
    expect(privilegesFor('mmp', 998, lookup)).toEqual({
      ok: true,
      value: { kind: 'unprivileged' },
    });
    expect(privilegesFor('root', 1000, lookup)).toEqual({
      ok: true,
      value: { kind: 'unprivileged', ignored: 'root' },
    });
  });
});

describe('holdSessions', () => {
  it('starts no session before release, then each held one with its unread bytes', async () => {
    const started: string[] = [];
    let starts = 0;
    const held = holdSessions((socket: Socket): SessionHandle => {
      starts++;
      let data = '';
      socket.on('data', (d: Buffer) => {
        data += d.toString();
        if (data.endsWith('\n')) started.push(data);
      });
      return {
        shutdown: () => undefined,
        abort: () => socket.destroy(),
        closed: Promise.resolve(),
      };
    });
    const handles: SessionHandle[] = [];
    const server = createServer((s) => handles.push(held.start(s, {} as SessionContext)));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    const client = connect({ port, host: '127.0.0.1' });
    client.write('early bytes\n');
    // A second client that leaves before the release is closed, never started.
    const leaver = connect({ port, host: '127.0.0.1' });
    await new Promise((r) => leaver.once('connect', r));
    await waitUntil('both accepted', () => Promise.resolve(handles.length === 2));
    expect(starts).toBe(0);
    handles[1]?.shutdown();
    await handles[1]?.closed;
    held.release();
    await waitUntil('the held session reads', () => Promise.resolve(started.length === 1));
    expect(started).toEqual(['early bytes\n']);
    expect(starts).toBe(1);
    client.destroy();
    leaver.destroy();
    handles[0]?.abort();
    await new Promise<void>((r) => server.close(() => r()));
  });
});
