// Shared by the CPU harnesses of this folder (fetch-cpu.mjs, login-cpu.mjs). Not part of the tests.
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { freePort } from '../../testbed/dist/index.js';
import { NODE_FLAGS } from '../dist/runtime.js';

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

/**
 * ImapProxy or PopProxy of the build in `dist` on a free port of `listen`, against the test bed
 * `bed`, with `env` on top (NumThreads, RunAsUser …); resolves once it accepts connections.
 * MMP_NODE_FLAGS replaces the start scripts' Node flags (profiling).
 */
export async function startProxy({ dist, protocol, listen, bed, logDir, env }) {
  const port = await freePort(listen);
  const child = spawn(
    process.execPath,
    [
      ...(process.env.MMP_NODE_FLAGS?.split(' ').filter(Boolean) ?? NODE_FLAGS),
      join(dist, protocol === 'imap' ? 'ImapProxy.js' : 'PopProxy.js'),
    ],
    {
      stdio: ['ignore', 'inherit', 'inherit'],
      env: {
        PATH: process.env.PATH,
        ListenPort: `${listen}:${port}`,
        LDAPHost: `${bed.ldap.host}:${bed.ldap.port}`,
        BaseDN: bed.ldap.baseDn,
        BindDN: bed.ldap.bindDn,
        BindPass: bed.ldap.bindPassword,
        BacksidePort: String(protocol === 'imap' ? bed.backsidePorts.imap : bed.backsidePorts.pop3),
        LogDir: logDir,
        ...env,
      },
    },
  );
  await waitForPort(listen, port, child);
  return { child, endpoint: { protocol, host: listen, port } };
}
