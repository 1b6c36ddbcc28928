import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import {
  type ProcStat,
  clockTicksPerSecond,
  consistent,
  cpuBetween,
  groupMembers,
  parseStat,
  perOperation,
  processTree,
  readAllStats,
  sampleCpu,
  sumTicks,
  ticksToMicros,
} from './cpu.js';

// /proc/1/stat of a real process (fields 14-17: utime 1563, stime 25135, cutime 13527, cstime 10)
const INIT =
  '1 (process_api) S 0 0 0 0 -1 4194560 39916 5698014 0 873 1563 25135 13527 10 20 0 14 0 20 49397760 3842 18446744073709551615 1 1 0 0 0 0 0 4096 1256 0 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 0';

function stat(pid: number, ppid: number, pgrp: number, ticks: Partial<ProcStat> = {}): ProcStat {
  return {
    pid,
    comm: `p${pid}`,
    state: 'S',
    ppid,
    pgrp,
    utime: 0,
    stime: 0,
    cutime: 0,
    cstime: 0,
    ...ticks,
  };
}

describe('parseStat', () => {
  it('reads pid, state, parent, group and the four times', () => {
    expect(parseStat(INIT)).toEqual({
      pid: 1,
      comm: 'process_api',
      state: 'S',
      ppid: 0,
      pgrp: 0,
      utime: 1563,
      stime: 25135,
      cutime: 13527,
      cstime: 10,
    });
  });
  it('finds the fields after the last parenthesis of a command name with spaces and parens', () => {
    const line = '4242 (we ird) (name) Z 7 4200 4200 0 -1 0 0 0 0 0 11 22 33 44 20 0 1 0 1 0 0';
    expect(parseStat(line)).toMatchObject({
      pid: 4242,
      comm: 'we ird) (name',
      state: 'Z',
      ppid: 7,
      pgrp: 4200,
      utime: 11,
      stime: 22,
      cutime: 33,
      cstime: 44,
    });
  });
  it('refuses a truncated or garbled line', () => {
    expect(parseStat('12 (x) S 1 2')).toBeUndefined();
    expect(parseStat('no parens at all')).toBeUndefined();
  });
});

describe('tick arithmetic', () => {
  it('turns USER_HZ ticks into microseconds', () => {
    expect(ticksToMicros(1, 100)).toBe(10_000);
    expect(ticksToMicros(250, 100)).toBe(2_500_000);
    expect(ticksToMicros(3, 1000)).toBe(3000);
  });
  it('reads a plausible USER_HZ', () => {
    expect([100, 250, 300, 1000]).toContain(clockTicksPerSecond());
  });
  it('counts own and reaped-children time, each process once', () => {
    const p = stat(10, 1, 10, { utime: 1, stime: 2, cutime: 3, cstime: 4 });
    expect(sumTicks([p, p, stat(11, 10, 10, { utime: 5 })])).toBe(15);
  });
  it('divides per operation with a unit, and refuses zero operations', () => {
    const spent = { proxy: 2_000_000, stores: 500_000 };
    expect(perOperation(spent, 1000)).toEqual({ proxy: 2000, stores: 500 });
    expect(perOperation(spent, 4000, 1000)).toEqual({ proxy: 500_000, stores: 125_000 });
    expect(perOperation(spent, 0)).toBeUndefined();
  });
  it('subtracts samples per part, never below zero, skipping parts missing in either', () => {
    expect(
      cpuBetween(
        { proxy: 100, stores: 50, auth: 7 },
        { proxy: 130, stores: 40, directory: 9 },
        100,
      ),
    ).toEqual({ proxy: 300_000, stores: 0 });
  });
});

describe('process groups and trees', () => {
  const all = [
    stat(100, 1, 100), // a Dovecot master
    stat(101, 100, 100, { state: 'Z', utime: 9 }), // an exited child not yet reaped: still counts
    stat(102, 100, 100),
    stat(200, 1, 200), // another group
    stat(300, 102, 300), // forked by 102 but in a group of its own
    stat(301, 300, 300),
  ];
  it('collects the members of groups, zombies included', () => {
    expect(groupMembers(all, [100]).map((s) => s.pid)).toEqual([100, 101, 102]);
    expect(groupMembers(all, [100, 200]).map((s) => s.pid)).toEqual([100, 101, 102, 200]);
  });
  it('collects a process and all its descendants across groups', () => {
    expect(
      processTree(all, 100)
        .map((s) => s.pid)
        .sort(),
    ).toEqual([100, 101, 102, 300, 301]);
    expect(processTree(all, 999)).toEqual([]);
  });
  it('samples each part from the groups it is given now', () => {
    const stats = [stat(5, 1, 5, { utime: 10, cutime: 5 }), stat(6, 5, 5, { stime: 1 })];
    expect(sampleCpu({ proxy: () => [5], stores: () => [] }, () => stats)).toEqual({
      proxy: 16,
      stores: 0,
    });
  });
  it('reads again when a child was reaped between two readings', () => {
    // reading 1: the parent before the reap, the child already gone: its 4 ticks are nowhere
    const torn = [stat(5, 1, 5, { utime: 10 })];
    // readings 2 and 3: the parent has reaped it
    const settled = [stat(5, 1, 5, { utime: 10, cutime: 4 })];
    const readings = [torn, settled, settled];
    let n = 0;
    const read = (): ProcStat[] => readings[Math.min(n++, readings.length - 1)] ?? [];
    expect(sampleCpu({ proxy: () => [5] }, read)).toEqual({ proxy: 14 });
    expect(n).toBe(3);
  });
  it('sees readings that differ in members or reaped times as inconsistent', () => {
    const a = { proxy: [stat(5, 1, 5), stat(6, 5, 5)] };
    expect(consistent(a, { proxy: [stat(5, 1, 5), stat(6, 5, 5, { utime: 3 })] })).toBe(true);
    expect(consistent(a, { proxy: [stat(5, 1, 5, { cutime: 1 })] })).toBe(false);
    expect(consistent(a, { proxy: [stat(5, 1, 5), stat(7, 5, 5)] })).toBe(false);
  });
});

describe('on this machine', () => {
  it('keeps the CPU of a child that exited, through its parent’s cutime', async () => {
    // a group whose child burns CPU for a moment and exits; the parent waits for it and lives on
    const leader = spawn(
      'sh',
      ['-c', "sh -c 'i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done'; exec sleep 30"],
      { detached: true, stdio: 'ignore' },
    );
    const pgid = leader.pid as number;
    try {
      let members: ProcStat[] = [];
      for (let i = 0; i < 600; i++) {
        members = groupMembers(readAllStats(), [pgid]);
        if (members.length === 1 && members[0]?.comm === 'sleep') break;
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(members.map((m) => m.comm)).toEqual(['sleep']);
      expect((members[0]?.cutime ?? 0) + (members[0]?.cstime ?? 0)).toBeGreaterThan(0);
      expect(sampleCpu({ proxy: () => [pgid] }).proxy).toBeGreaterThan(0);
    } finally {
      process.kill(-pgid, 'SIGKILL');
    }
  });
});
