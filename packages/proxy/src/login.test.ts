/**
 * The one login path, with fakes: a fake directory, loopback stores that accept and say nothing,
 * and a fake replay that answers as each test needs. Every protection is checked for a password
 * login and for a certificate login alike.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCertmap } from '@mmp/config';
import type { Log } from './log.js';
import { type LoginContext, type Principal, logIn } from './login.js';
import type { ProxyRuntime } from './proxyRuntime.js';
import { RefusalTiming } from './refusalTiming.js';
import type { Replay, ReplayOptions, ReplayResult, StoreLogin } from './store.js';
import { FakeDirectory, testRuntime } from './test-support/harness.js';
import { recordingLog } from './test-support/recordingLog.js';
import { type ScriptedServer, listenScripted } from './test-support/scriptedServer.js';

const PASSWORD: Principal = {
  kind: 'password',
  credentials: { user: Buffer.from('alice'), password: Buffer.from('secret') },
  sasl: false,
};
const CERTIFICATE: Principal = {
  kind: 'certificate',
  peer: { verified: true, subject: 'CN=Alice,OU=alice,O=mmp.test', issuer: 'CN=CA,O=mmp.test' },
  // What certmap.conf made of the certificate (certlogin.ts).
  search: { filter: '(uid=alice)', where: undefined },
  authzid: Buffer.alloc(0),
};
const XOAUTH2_MESSAGE = Buffer.from('user=alice\x01auth=Bearer t0ken\x01\x01');
const BEARER: Principal = {
  kind: 'bearer',
  mechanism: 'XOAUTH2',
  user: Buffer.from('alice'),
  message: XOAUTH2_MESSAGE,
};
const PRINCIPALS = [PASSWORD, CERTIFICATE, BEARER];

const ADDRESSES = {
  clientIp: '192.0.2.7',
  clientPort: 40000,
  serverIp: '198.51.100.1',
  serverPort: 143,
};

let quiet: ScriptedServer;
let other: ScriptedServer;
const DEAD = { host: '127.0.0.1', port: 1 };

beforeAll(async () => {
  // Stores that accept and say nothing: the fake replay answers for them.
  quiet = await listenScripted(() => undefined);
  other = await listenScripted(() => undefined);
});

afterAll(async () => {
  await Promise.all([quiet.close(), other.close()]);
});

/** A replay that answers `results` by store port (default: accepted), recording each call. */
function fakeReplay(results: Record<number, ReplayResult> = {}): {
  replay: Replay;
  calls: { port: number; login: StoreLogin; options: ReplayOptions }[];
} {
  const calls: { port: number; login: StoreLogin; options: ReplayOptions }[] = [];
  const replay: Replay = (conv, login, options) => {
    const port = conv.socket.remotePort ?? 0;
    calls.push({ port, login, options });
    return Promise.resolve(results[port] ?? { kind: 'accepted', answer: Buffer.from('OK') });
  };
  return { replay, calls };
}

interface Setup {
  runtime: ProxyRuntime;
  directory: FakeDirectory;
}

function setup(mailHosts: { host: string; port: number }[], forward = false): Setup {
  const directory = new FakeDirectory([{ uid: 'alice', mailHosts }]);
  return {
    directory,
    runtime: testRuntime(directory, {
      ForwardClientAddress: forward,
      MaxConcurrentConnectionAttempts: 2,
    }),
  };
}

/** What a login asked the client (challenges said) and the replies it got, in order. */
interface Relayed {
  challenges: string[];
  replies: (Buffer | undefined)[];
}

/** A login context on the runtime's global site, with certificate login configured there; the
 * client answers relayed challenges with `relayed.replies`, in turn (default: an empty line). */
function context(
  { runtime }: Setup,
  replay: Replay,
  log: Log,
  relayed: Relayed = { challenges: [], replies: [] },
): LoginContext {
  const certmap = parseCertmap('certmap default default\ndefault:FilterComps ou=uid\n', 'certmap');
  if (!certmap.ok) throw new Error('certmap');
  const certLogin = {
    map: certmap.value,
    storeAdmin: Buffer.from('admin'),
    storeAdminPass: Buffer.from('admin-secret'),
  };
  return {
    site: { ...runtime.global, certLogin },
    shared: runtime.shared,
    log,
    addresses: ADDRESSES,
    subjectDn: undefined,
    replay,
    relay: (challenge) => {
      relayed.challenges.push(challenge.toString('latin1'));
      return Promise.resolve(relayed.replies.shift() ?? Buffer.alloc(0));
    },
  };
}

const at = (s: ScriptedServer): { host: string; port: number } => ({
  host: '127.0.0.1',
  port: s.port,
});

describe.each(PRINCIPALS.map((p) => [p.kind, p] as const))('a %s login', (_kind, principal) => {
  it('goes through the attempt limiter: a store that timed out is skipped at once', async () => {
    const s = setup([at(quiet)]);
    const { replay, calls } = fakeReplay({
      [quiet.port]: { kind: 'failed', failure: { kind: 'timeout', detail: 'no greeting' } },
    });
    const { log, records } = recordingLog();
    const ctx = context(s, replay, log);
    expect((await logIn(ctx, principal)).kind).toBe('stores-down');
    expect(calls).toHaveLength(1);
    // Marked down for STORE_DOWN_AFTER_TIMEOUT_MS: the next login does not even connect.
    expect(await logIn(ctx, principal)).toEqual({
      kind: 'stores-down',
      detail: `127.0.0.1:${quiet.port} marked down after a timeout`,
    });
    expect(calls).toHaveLength(1);
    expect(records.filter((r) => r.msg === 'store skipped')).toEqual([
      {
        level: 'refusal',
        msg: 'store skipped',
        fields: { store: `127.0.0.1:${quiet.port}`, reason: 'marked down after a timeout' },
      },
    ]);
  });

  it('gives its attempt slot back once the store greets: a store slow to answer the login holds up no other login', async () => {
    // Cap 2. Two logins greeted by the store wait for its answer (as a wrong password waits for
    // Dovecot's auth_failure_delay); a third must reach the store at once, not wait for a slot
    // until the store counts as stalled and is skipped.
    const s = setup([at(quiet)]);
    const answers: ((r: ReplayResult) => void)[] = [];
    let reachedThird: () => void = () => undefined;
    const third = new Promise<'replayed'>((resolve) => (reachedThird = () => resolve('replayed')));
    const replay: Replay = (_conv, _login, options) => {
      options.greeted?.();
      if (answers.length === 2) reachedThird();
      return new Promise((resolve) => answers.push(resolve));
    };
    const ctx = context(s, replay, recordingLog().log);
    const slow = [logIn(ctx, principal), logIn(ctx, principal)];
    while (answers.length < 2) await new Promise((r) => setTimeout(r, 5));
    const login = logIn(ctx, principal);
    expect(await Promise.race([third, login.then((o) => o.kind)])).toBe('replayed');
    for (const answer of answers) answer({ kind: 'accepted', answer: Buffer.from('OK') });
    const outcomes = await Promise.all([...slow, login]);
    expect(outcomes.map((o) => o.kind)).toEqual(['logged-in', 'logged-in', 'logged-in']);
    for (const o of outcomes) if (o.kind === 'logged-in') o.socket.destroy();
  });

  it('evicts the user’s cached entry when a store fails, and fails over', async () => {
    const s = setup([DEAD, at(other)]);
    const { replay, calls } = fakeReplay();
    const { log, records } = recordingLog();
    const outcome = await logIn(context(s, replay, log), principal);
    expect(outcome.kind).toBe('logged-in');
    if (outcome.kind === 'logged-in') outcome.socket.destroy();
    expect(s.directory.forgotten).toEqual(['(uid=alice)']);
    expect(calls.map((c) => c.port)).toEqual([other.port]);
    expect(records.map((r) => r.msg)).toEqual(
      expect.arrayContaining(['connecting to store', 'store unreachable']),
    );
  });

  it('tells the store the client address with ForwardClientAddress, and not without', async () => {
    for (const forward of [true, false]) {
      const { replay, calls } = fakeReplay();
      const outcome = await logIn(
        context(setup([at(quiet)], forward), replay, recordingLog().log),
        principal,
      );
      if (outcome.kind === 'logged-in') outcome.socket.destroy();
      expect(calls[0]?.options.forwardAddress).toEqual(forward ? ADDRESSES : undefined);
    }
  });

  it('holds an unknown user like a password login, and learns from refusals', async () => {
    const s = setup([at(quiet)]);
    const held: number[] = [];
    const observed: number[] = [];
    const timing = new (class extends RefusalTiming {
      override observe(ms: number): void {
        observed.push(ms);
      }
      override holdFor(elapsedMs: number): number {
        held.push(elapsedMs);
        return 0;
      }
    })();
    const { replay } = fakeReplay({
      [quiet.port]: { kind: 'refused', answer: Buffer.from('NO [AUTHENTICATIONFAILED] no') },
    });
    const ctx = context(s, replay, recordingLog().log);
    const withTiming = { ...ctx, shared: { ...ctx.shared, refusalTiming: timing } };
    expect((await logIn(withTiming, principal)).kind).toBe('refused');
    // A bearer refusal waited for the client's reply to the store's challenge: not the store's pace.
    expect(observed).toHaveLength(principal.kind === 'bearer' ? 0 : 1);
    const nobody: Principal =
      principal.kind === 'password'
        ? { ...principal, credentials: { ...principal.credentials, user: Buffer.from('nobody') } }
        : principal.kind === 'certificate'
          ? { ...principal, search: { filter: '(uid=nobody)', where: undefined } }
          : { ...principal, user: Buffer.from('nobody') };
    expect((await logIn(withTiming, nobody)).kind).toBe('unknown-user');
    expect(held).toHaveLength(1);
  });
});

describe('what is replayed', () => {
  it('a password login: the user’s name and password, and how the client gave them', async () => {
    const { replay, calls } = fakeReplay();
    const outcome = await logIn(context(setup([at(quiet)]), replay, recordingLog().log), {
      ...PASSWORD,
      sasl: true,
    } as Principal);
    if (outcome.kind === 'logged-in') outcome.socket.destroy();
    expect(calls[0]?.login).toEqual({
      kind: 'user',
      name: Buffer.from('alice'),
      password: Buffer.from('secret'),
      sasl: true,
    });
  });

  it('a certificate login: the master user for the entry’s uid, never another identity', async () => {
    const { replay, calls } = fakeReplay();
    const ctx = context(setup([at(quiet)]), replay, recordingLog().log);
    const outcome = await logIn(ctx, CERTIFICATE);
    if (outcome.kind === 'logged-in') outcome.socket.destroy();
    expect(calls[0]?.login).toEqual({
      kind: 'master',
      user: Buffer.from('alice'),
      admin: Buffer.from('admin'),
      password: Buffer.from('admin-secret'),
    });
    const asBob = { ...CERTIFICATE, authzid: Buffer.from('bob') } as Principal;
    expect(await logIn(ctx, asBob)).toEqual({
      kind: 'unknown-user',
      reason: 'authorization identity is not the certificate user',
    });
    expect(calls).toHaveLength(1);
  });
});

describe('an OAuth2 (bearer) login', () => {
  it('finds the store by the name in the message and replays mechanism and message unchanged', async () => {
    const s = setup([at(quiet)]);
    const { replay, calls } = fakeReplay();
    const outcome = await logIn(context(s, replay, recordingLog().log), BEARER);
    if (outcome.kind === 'logged-in') outcome.socket.destroy();
    expect(s.directory.filters).toEqual(['(uid=alice)']);
    expect(calls[0]?.login).toEqual({
      kind: 'bearer',
      mechanism: 'XOAUTH2',
      message: XOAUTH2_MESSAGE,
    });
    expect(calls[0]?.options.relay).toBeTypeOf('function');
  });

  it('maps the name in the message through the virtual domains, and still replays the message as sent', async () => {
    const directory = new FakeDirectory([{ uid: 'alice+one.example', mailHosts: [at(quiet)] }]);
    const runtime = testRuntime(directory, { DefaultDomain: 'one.example' });
    const { replay, calls } = fakeReplay();
    const message = Buffer.from('n,a=alice@one.example,\x01auth=Bearer t0k\x01\x01');
    const outcome = await logIn(context({ runtime, directory }, replay, recordingLog().log), {
      kind: 'bearer',
      mechanism: 'OAUTHBEARER',
      user: Buffer.from('alice@one.example'),
      message,
    });
    if (outcome.kind === 'logged-in') outcome.socket.destroy();
    expect(directory.filters).toEqual(['(uid=alice+one.example)']);
    expect(calls[0]?.login).toEqual({ kind: 'bearer', mechanism: 'OAUTHBEARER', message });
  });

  it("answers an unknown user with a Dovecot store's error challenge, then the usual refusal", async () => {
    for (const [mechanism, json] of [
      ['XOAUTH2', '{"status":"401","schemes":"bearer","scope":"mail"}'],
      ['OAUTHBEARER', '{"status":"invalid_token"}'],
    ] as const) {
      const relayed: Relayed = { challenges: [], replies: [] };
      const { replay, calls } = fakeReplay();
      const ctx = context(setup([at(quiet)]), replay, recordingLog().log, relayed);
      const nobody: Principal = { ...BEARER, mechanism, user: Buffer.from('nobody') };
      expect(await logIn(ctx, nobody)).toMatchObject({ kind: 'unknown-user' });
      expect(relayed.challenges).toEqual([`+ ${Buffer.from(json).toString('base64')}`]);
      expect(calls).toHaveLength(0);
    }
  });

  it('cancelled with * after that challenge, it is aborted as a store would abort it', async () => {
    const relayed: Relayed = { challenges: [], replies: [Buffer.from('*')] };
    const ctx = context(setup([at(quiet)]), fakeReplay().replay, recordingLog().log, relayed);
    expect(await logIn(ctx, { ...BEARER, user: Buffer.from('nobody') })).toEqual({
      kind: 'aborted',
    });
  });
});

describe('a certificate search', () => {
  it('searches where certmap.conf says (a base-scope read of the subject DN)', async () => {
    const s = setup([at(quiet)]);
    const where = { dn: 'uid=alice,o=test', scope: 'base' as const };
    const outcome = await logIn(context(s, fakeReplay().replay, recordingLog().log), {
      ...CERTIFICATE,
      search: { filter: '(uid=alice)', where },
    } as Principal);
    if (outcome.kind === 'logged-in') outcome.socket.destroy();
    expect(s.directory.wheres).toEqual([where]);
  });
});
