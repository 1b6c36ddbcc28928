import { describe, expect, it } from 'vitest';
import { type Account, privilegesFor } from './privileges.js';

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
