// Shared by the CPU harnesses of this folder (fetch-cpu.mjs, login-cpu.mjs). Not part of the tests.
import { readFileSync, readdirSync } from 'node:fs';
import { connect } from 'node:net';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** ns on CPU of every thread of `pids` */
export function cpuNs(pids) {
  let total = 0;
  for (const pid of pids) {
    let tasks;
    try {
      tasks = readdirSync(`/proc/${pid}/task`);
    } catch {
      continue;
    }
    for (const t of tasks) {
      try {
        total += Number(readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'latin1').split(' ')[0]);
      } catch {
        // exited meanwhile
      }
    }
  }
  return total;
}

export async function waitForPort(host, port, child) {
  for (let i = 0; i < 200; i++) {
    const up = await new Promise((res) => {
      const s = connect({ port, host });
      s.on('connect', () => {
        s.destroy();
        res(true);
      });
      s.on('error', () => res(false));
    });
    if (up) return;
    if (child.exitCode !== null) throw new Error(`exited (${child.exitCode})`);
    await sleep(50);
  }
  throw new Error(`nothing listens on ${host}:${port}`);
}
