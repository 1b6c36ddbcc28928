// What a report says about where it ran: the machine with its peers' versions, and the commit.
import { cpus, hostname, loadavg, release, totalmem } from 'node:os';
import { execa } from 'execa';

async function versionOf(cmd: string, args: string[], pattern: RegExp): Promise<string> {
  try {
    const r = await execa(cmd, args, { reject: false, all: true });
    return pattern.exec(r.all ?? '')?.[1] ?? '?';
  } catch {
    return '?';
  }
}

/** The commit the run measures (`abc1234`, `+ changes` when the tree is not clean). */
export async function commit(): Promise<string> {
  try {
    const head = await execa('git', ['rev-parse', '--short', 'HEAD'], { reject: false });
    const dirty = await execa('git', ['status', '--porcelain', '--untracked-files=no'], {
      reject: false,
    });
    if (head.exitCode !== 0) return '?';
    return `${head.stdout.trim()}${dirty.stdout.trim() === '' ? '' : ' + uncommitted changes'}`;
  } catch {
    return '?';
  }
}

export async function machine(): Promise<string> {
  const [dovecot, nginx, perdition, slapd, socat] = await Promise.all([
    versionOf('dovecot', ['--version'], /^(\S+)/),
    versionOf('nginx', ['-v'], /nginx\/(\S+)/),
    versionOf('perdition', ['-h'], /perdition version (\S+)/i),
    versionOf('slapd', ['-VV'], /slapd (\d[\d.]*)/),
    versionOf('socat', ['-V'], /socat version (\S+)/),
  ]);
  const cpu = cpus();
  return [
    `${hostname()}: ${cpu[0]?.model.trim() ?? 'CPU'} × ${cpu.length}`,
    `${Math.round(totalmem() / 1024 ** 3)} GiB`,
    `Linux ${release()}`,
    `Node ${process.version}`,
    `Dovecot ${dovecot}, nginx ${nginx}, perdition ${perdition}, slapd ${slapd}, socat ${socat}`,
  ].join(', ');
}

/** The machine's load average now (1, 5, 15 min): how busy the shared machine was. */
export function loadAverage(): string {
  return loadavg()
    .map((l) => l.toFixed(1))
    .join(' / ');
}
