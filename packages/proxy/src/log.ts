/**
 * The multiplexor's log: `LogDir/MMP_yyyymmdd.log` (admin guide, LogDir), one JSON record per line
 * (pino), a new file at local midnight. If LogDir does not exist no log file is created (the
 * guide's rule), and one warning says so on stderr.
 *
 * LogLevel (0–10, the guide's verbosity; default 1). A record is written when its level is at
 * most the configured LogLevel:
 *
 * | level | what is logged                                                                         |
 * |-------|----------------------------------------------------------------------------------------|
 * | 0     | start, stop, configuration warnings, errors that stop the server                      |
 * | 1     | each connection opened and closed (client IP:port, duration, bytes), each login:      |
 * |       | user, store, outcome                                                                   |
 * | 3     | refusals: bad commands, limits hit (line, literal, idle), directory or store failures |
 * | 5     | directory queries (filter, host, entries, mailHosts) and each store dialogue phase    |
 * | 7     | each command before login: tag, verb, argument shapes (strings as `<n bytes>`)         |
 * | 10    | protocol trace before login in both directions, credentials redacted                  |
 *
 * Nothing after the login is traced: the piped bytes are the user's mail. A password, or a literal
 * or SASL response that may carry one, never reaches the log at any level: commands are logged
 * through each command's own redaction (see `imap/commands`), never as raw bytes.
 *
 * Every record carries `sid` (session id, `0x…`; `-` for the server itself), `proto` and `phase`.
 */

import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import type { Protocol } from '@mmp/config';

/** Named LogLevel thresholds (see the table above). */
export const LOG = {
  lifecycle: 0,
  session: 1,
  refusal: 3,
  dialogue: 5,
  command: 7,
  trace: 10,
} as const;
export type LogLevelName = keyof typeof LOG;

export type LogFields = Record<string, string | number | boolean | null | undefined>;

export interface Log {
  /** The configured LogLevel. */
  readonly verbosity: number;
  /** Whether records of this level are written (to skip building costly fields). */
  enabled(level: LogLevelName): boolean;
  /** Write a record of the named level, at this phase ("directory lookup", "store greeting"…). */
  at(level: LogLevelName, phase: string, msg: string, fields?: LogFields): void;
  /** An error; written at every LogLevel. */
  error(phase: string, msg: string, fields?: LogFields): void;
  /** A log whose records all carry these session fields. */
  child(bindings: { sid: string; proto?: Protocol }): Log;
}

export interface LogFile {
  log: Log;
  /** The file now written, or undefined when LogDir does not exist. */
  readonly path: string | undefined;
  /** Flush and close (at shutdown). */
  close(): Promise<void>;
}

export function logFileName(date: Date): string {
  const y = date.getFullYear();
  const m = String(date.getMonth() + 1).padStart(2, '0');
  const d = String(date.getDate()).padStart(2, '0');
  return `MMP_${y}${m}${d}.log`;
}

/** Milliseconds from `now` to the next local midnight. */
export function msUntilMidnight(now: Date): number {
  const next = new Date(now.getFullYear(), now.getMonth(), now.getDate() + 1, 0, 0, 0, 0);
  return Math.max(1, next.getTime() - now.getTime());
}

/** A session's `sid` and protocol, written first in each of its records. */
interface Bindings {
  sid: string;
  proto: Protocol | undefined;
}

/**
 * Records go to the one root logger with the bindings merged in, rather than through a pino child
 * per session: a child logger costs about half a kilobyte per session that an idle piped session
 * would keep for hours, and a session writes only a few records.
 */
class PinoLog implements Log {
  constructor(
    private readonly root: pino.Logger,
    private readonly bindings: Bindings,
    readonly verbosity: number,
  ) {}

  enabled(level: LogLevelName): boolean {
    return LOG[level] <= this.verbosity;
  }

  at(level: LogLevelName, phase: string, msg: string, fields?: LogFields): void {
    if (LOG[level] > this.verbosity) return;
    this.root.info({ ...this.bindings, lvl: LOG[level], phase, ...fields }, msg);
  }

  error(phase: string, msg: string, fields?: LogFields): void {
    this.root.error({ ...this.bindings, lvl: 0, phase, ...fields }, msg);
  }

  child(bindings: { sid: string; proto?: Protocol }): Log {
    return new PinoLog(
      this.root,
      { sid: bindings.sid, proto: bindings.proto ?? this.bindings.proto },
      this.verbosity,
    );
  }
}

/** A log that writes nothing (LogDir missing, and unit tests). */
export const silentLog: Log = {
  verbosity: 0,
  enabled: () => false,
  at: () => undefined,
  error: () => undefined,
  child: () => silentLog,
};

/**
 * Open the day's log file in `dir`. `warn` receives the one warning about a missing LogDir.
 */
export function openLogFile(opts: {
  dir: string;
  level: number;
  protocol: Protocol;
  warn: (message: string) => void;
  now?: () => Date;
}): LogFile {
  const now = opts.now ?? (() => new Date());
  let isDir: boolean;
  try {
    isDir = existsSync(opts.dir) && statSync(opts.dir).isDirectory();
  } catch {
    isDir = false;
  }
  if (!isDir) {
    opts.warn(`LogDir '${opts.dir}' does not exist or is not a directory: no log file is written`);
    return { log: silentLog, path: undefined, close: () => Promise.resolve() };
  }
  // The proxy often runs as an unprivileged user (mmp-setup's default is nobody) in a directory
  // owned by root: refuse to log rather than crash at the first record.
  try {
    accessSync(opts.dir, constants.W_OK);
  } catch {
    opts.warn(`LogDir '${opts.dir}' is not writable by this user: no log file is written`);
    return { log: silentLog, path: undefined, close: () => Promise.resolve() };
  }

  let path = join(opts.dir, logFileName(now()));
  const dest = pino.destination({ dest: path, sync: false, append: true, mkdir: false });
  // A failing log (disk full, file removed with its directory) must never stop the mail flowing:
  // say so once on stderr and go on without it.
  let failed = false;
  dest.on('error', (e: Error) => {
    if (failed) return;
    failed = true;
    opts.warn(`log file ${path} cannot be written (${e.message}): logging stopped`);
  });
  const logger = pino(
    {
      level: 'info',
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    dest,
  );

  // Roll over at local midnight; re-armed each day (a timer, not a check per record).
  let timer: NodeJS.Timeout | undefined;
  const arm = (): void => {
    timer = setTimeout(() => {
      path = join(opts.dir, logFileName(now()));
      dest.reopen(path);
      arm();
    }, msUntilMidnight(now()));
    timer.unref();
  };
  arm();

  return {
    log: new PinoLog(logger, { sid: '-', proto: opts.protocol }, opts.level),
    get path() {
      return path;
    },
    close: () =>
      new Promise<void>((resolve) => {
        if (timer !== undefined) clearTimeout(timer);
        // end() writes what is buffered, after an open or a midnight reopen still in progress,
        // then closes the file. A broken disk must not hold the shutdown: give up after 2 s.
        const giveUp = setTimeout(resolve, 2_000);
        giveUp.unref();
        dest.once('close', () => {
          clearTimeout(giveUp);
          resolve();
        });
        try {
          dest.end();
        } catch {
          clearTimeout(giveUp);
          resolve();
        }
      }),
  };
}
