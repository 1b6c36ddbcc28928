/**
 * The multiplexor's log: `LogDir/MMP_yyyymmdd.log` (admin guide, LogDir), one record per line, a
 * new file at local midnight. If LogDir does not exist no log file is created (the guide's rule),
 * and one warning says so on stderr.
 *
 * LogFormat chooses the record's shape:
 * - `text` (default): the guide's `yyyymmdd hhmmss (sid 0x…) <message>`, then the record's fields
 *   as `key=value` (quoted when needed), in a fixed order: the phase, the fields as the code names
 *   them, then proto, lvl and pid. The PreAuth record is exactly the guide's line,
 *   `yyyymmdd hhmmss (sid 0x…) user pre-authenticated - client-IP`. Every control byte, CR and LF
 *   of a message or value (a user name is the client's) is escaped as `\xNN`, so one record is
 *   always one line and no client can forge another.
 * - `json`: one pino JSON object per line, for log shippers.
 * Both go through one sonic-boom destination: writes are buffered and asynchronous (no I/O per
 * record), and the same destination rolls over at midnight. Files are created mode 0600 whatever
 * the umask: records name users and their addresses.
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

import { accessSync, constants, existsSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { type Protocol, type Result, ok } from '@mmp/config';
import { LOG_BATCH_BYTES, LOG_BATCH_MS, LOG_BUFFER_MAX, LOG_FAILURE_REPORT_MS } from './limits.js';

/** LogFormat: the guide's text lines (default) or JSON lines. */
export type LogFormat = 'text' | 'json';

/** Log files hold user names and client addresses: readable by the proxy's user only. */
export const LOG_FILE_MODE = 0o600;

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
  /**
   * A record the guide gives a fixed shape (the PreAuth line): as text exactly
   * `yyyymmdd hhmmss (sid 0x…) <msg>`, its fields only in JSON (whose `msg` is that line).
   */
  guide(level: LogLevelName, phase: string, msg: string, fields?: LogFields): void;
  /** An error; written at every LogLevel. */
  error(phase: string, msg: string, fields?: LogFields): void;
  /** A log whose records all carry these session fields. */
  child(bindings: { sid: string; proto?: Protocol }): Log;
}

export interface LogFile {
  log: Log;
  /** The file now written, or undefined when LogDir does not exist. */
  readonly path: string | undefined;
  /** Open the day's file again by its name (SIGUSR1: logrotate moved it; nginx's USR1). */
  reopen(): void;
  /** Flush and close (at shutdown). */
  close(): Promise<void>;
}

/**
 * How a file is opened when the plain path must not be (a root process writing where the run-as
 * user can plant links, `privileges.ts`): the path to give open(2) instead, released once open.
 */
export type LogOpener = (
  path: string,
) => Result<{ readonly path: string; release(): void }, string>;

export function logFileName(date: Date): string {
  const y = date.getFullYear();
  const m = String(date.getMonth() + 1).padStart(2, '0');
  const d = String(date.getDate()).padStart(2, '0');
  return `MMP_${y}${m}${d}.log`;
}

/** The guide's record time, local: `yyyymmdd hhmmss`. */
export function guideTime(date: Date): string {
  const p = (n: number, w = 2): string => String(n).padStart(w, '0');
  const d = `${p(date.getFullYear(), 4)}${p(date.getMonth() + 1)}${p(date.getDate())}`;
  return `${d} ${p(date.getHours())}${p(date.getMinutes())}${p(date.getSeconds())}`;
}

/** The guide's record prefix and message: `yyyymmdd hhmmss (sid 0x…) <msg>` (msg not escaped). */
export function guideLine(date: Date, sid: string, msg: string): string {
  return `${guideTime(date)} (sid ${sid}) ${msg}`;
}

/**
 * Control characters (C0, DEL, C1), the Unicode line and paragraph separators, and the backslash
 * that introduces our escapes: what must never reach a text record as is.
 */
// eslint-disable-next-line no-control-regex -- control characters are exactly what it finds
const UNSAFE = /[\x00-\x1f\x7f-\x9f\u2028\u2029\\]/g;

function escapeChar(c: string): string {
  if (c === '\\') return '\\\\';
  const code = c.charCodeAt(0);
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16)}`;
}

/** A message or value made safe for one text line: no byte of it can end or forge a record. */
export function escapeText(text: string): string {
  return text.replace(UNSAFE, escapeChar);
}

/** A field value as text: bare when it is a plain token, else quoted with `\"` inside. */
export function textValue(value: string | number | boolean | null): string {
  if (value === null) return '-';
  if (typeof value !== 'string') return String(value);
  const safe = escapeText(value);
  return safe !== '' && /^[^\s"=]+$/.test(safe) ? safe : `"${safe.replace(/"/g, '\\"')}"`;
}

/** One text record: `yyyymmdd hhmmss (sid 0x…) msg phase=… key=value … proto=… lvl=… pid=…`. */
export function textRecord(r: {
  time: Date;
  sid: string;
  msg: string;
  phase: string;
  fields?: LogFields | undefined;
  proto?: Protocol | undefined;
  lvl: number;
  error?: boolean;
  pid: number;
}): string {
  let line = `${guideLine(r.time, r.sid, escapeText(r.msg))} phase=${textValue(r.phase)}`;
  for (const [key, value] of Object.entries(r.fields ?? {})) {
    if (value !== undefined) line += ` ${escapeText(key)}=${textValue(value)}`;
  }
  if (r.proto !== undefined) line += ` proto=${r.proto}`;
  line += ` lvl=${r.lvl}`;
  if (r.error === true) line += ' level=error';
  return `${line} pid=${r.pid}`;
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

  guide(level: LogLevelName, phase: string, msg: string, fields?: LogFields): void {
    if (LOG[level] > this.verbosity) return;
    const line = guideLine(new Date(), this.bindings.sid, msg);
    this.root.info({ ...this.bindings, lvl: LOG[level], phase, ...fields }, line);
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

/** Where text records go: the destination's buffered, asynchronous write. */
interface LineSink {
  write(line: string): void;
}

/**
 * The records of a short window (LOG_BATCH_MS) go to the destination together: one file write, and
 * one round trip through libuv's thread pool, for all of them. Per event-loop turn was not enough
 * (issue 18): at a few concurrent logins a turn holds one record, so a login's three records still
 * cost three writes, each waking a pool thread and the loop again (about 0.2 ms of CPU per login).
 * A record waits at most LOG_BATCH_MS, or less when LOG_BATCH_BYTES are pending; the timer keeps no
 * process alive: the records pending at exit are written synchronously (atExit), at close and
 * before a reopen they are flushed first.
 */
class WindowBatch implements LineSink {
  private pending = '';
  private timer: NodeJS.Timeout | undefined;
  constructor(private readonly dest: LineSink) {}

  write(line: string): void {
    this.pending += line;
    if (this.pending.length >= LOG_BATCH_BYTES) return this.flush();
    if (this.timer !== undefined) return;
    this.timer = setTimeout(this.flush, LOG_BATCH_MS);
    this.timer.unref();
  }

  /** Hand what is pending to the destination now. */
  readonly flush = (): void => {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending === '') return;
    const text = this.pending;
    this.pending = '';
    this.dest.write(text);
  };

  /** What is pending, taken (for a synchronous write as the process exits). */
  take(): string {
    const text = this.pending;
    this.pending = '';
    return text;
  }
}

/** LogFormat=text. Like PinoLog, one sink for every session, the bindings merged per record. */
class TextLog implements Log {
  constructor(
    private readonly sink: LineSink,
    private readonly bindings: Bindings,
    readonly verbosity: number,
  ) {}

  enabled(level: LogLevelName): boolean {
    return LOG[level] <= this.verbosity;
  }

  at(level: LogLevelName, phase: string, msg: string, fields?: LogFields): void {
    if (LOG[level] > this.verbosity) return;
    this.write(LOG[level], phase, msg, fields, false);
  }

  guide(level: LogLevelName, phase: string, msg: string): void {
    if (LOG[level] > this.verbosity) return;
    this.sink.write(`${guideLine(new Date(), this.bindings.sid, escapeText(msg))}\n`);
  }

  error(phase: string, msg: string, fields?: LogFields): void {
    this.write(0, phase, msg, fields, true);
  }

  child(bindings: { sid: string; proto?: Protocol }): Log {
    return new TextLog(
      this.sink,
      { sid: bindings.sid, proto: bindings.proto ?? this.bindings.proto },
      this.verbosity,
    );
  }

  private write(
    lvl: number,
    phase: string,
    msg: string,
    fields: LogFields | undefined,
    error: boolean,
  ): void {
    const { sid, proto } = this.bindings;
    const line = textRecord({
      time: new Date(),
      sid,
      msg,
      phase,
      fields,
      proto,
      lvl,
      error,
      pid: process.pid,
    });
    this.sink.write(`${line}\n`);
  }
}

/** A log that writes nothing (LogDir missing, and unit tests). */
export const silentLog: Log = {
  verbosity: 0,
  enabled: () => false,
  at: () => undefined,
  guide: () => undefined,
  error: () => undefined,
  child: () => silentLog,
};

const noLogFile: LogFile = {
  log: silentLog,
  path: undefined,
  reopen: () => undefined,
  close: () => Promise.resolve(),
};

/**
 * Open the day's log file in `dir`. `warn` receives the one warning about a missing LogDir.
 */
export function openLogFile(opts: {
  dir: string;
  level: number;
  protocol: Protocol;
  /** Default text. */
  format?: LogFormat | undefined;
  warn: (message: string) => void;
  now?: () => Date;
  open?: LogOpener;
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
    return noLogFile;
  }
  // The proxy often runs as an unprivileged user (mmp-setup's default is nobody) in a directory
  // owned by root: refuse to log rather than crash at the first record.
  try {
    accessSync(opts.dir, constants.W_OK);
  } catch {
    opts.warn(`LogDir '${opts.dir}' is not writable by this user: no log file is written`);
    return noLogFile;
  }

  let path = join(opts.dir, logFileName(now()));
  const first = opts.open?.(path) ?? ok({ path, release: () => undefined });
  if (!first.ok) {
    opts.warn(`log file ${first.error}: no log file is written`);
    return noLogFile;
  }
  const opened = first.value;
  // sonic-boom opens (and reopens at midnight) with this mode: a new file is 0600 even under a
  // permissive umask (`run`, systemd); the umask can only take bits away.
  const dest = pino.destination({
    dest: opened.path,
    sync: false,
    append: true,
    mkdir: false,
    mode: LOG_FILE_MODE,
    maxLength: LOG_BUFFER_MAX,
  });
  /** Open `p` (through the opener), keeping the current file when the opener refuses it. */
  const releaseWhenOpen = (opened: { path: string; release(): void }): void => {
    const onReady = (): void => {
      // Only the open of this path (an earlier open may still be pending when a reopen comes).
      if ((dest as { file?: unknown }).file !== opened.path) return;
      dest.off('ready', onReady);
      opened.release();
    };
    dest.on('ready', onReady);
  };
  releaseWhenOpen(opened);
  const openAgain = (p: string): void => {
    // Records made before the reopen belong to the file they were made for.
    batch.flush();
    const o = opts.open?.(p) ?? ok({ path: p, release: () => undefined });
    if (!o.ok) return opts.warn(`log file ${o.error}: still writing ${path}`);
    path = p;
    releaseWhenOpen(o.value);
    dest.reopen(o.value.path);
  };
  // A failing log (disk full, file removed with its directory) must never stop the mail flowing:
  // it costs records, never sessions. sonic-boom keeps the write that failed and tries it again
  // with the next one; what waits is capped (`maxLength`, records beyond it are dropped), a retry
  // each second finds the space again when no record comes, and stderr hears of it at most once
  // a minute. When a write succeeds again the file gets one record saying how many were lost.
  let failing = false;
  let lost = 0;
  let lastWarned = -Infinity;
  let retry: NodeJS.Timeout | undefined;
  dest.on('drop', (data: string | Buffer) => {
    lost += String(data).split('\n').length - 1;
  });
  dest.on('error', (e: Error) => {
    failing = true;
    const at = Date.now();
    if (at - lastWarned >= LOG_FAILURE_REPORT_MS) {
      lastWarned = at;
      opts.warn(
        `log file ${path} cannot be written (${e.message}): records wait, then are dropped, until it can (said at most once a minute)`,
      );
    }
    if (retry !== undefined) return;
    retry = setTimeout(() => {
      retry = undefined;
      // An empty write tries the failed one again (flush() does nothing with minLength 0).
      try {
        dest.write('');
      } catch {
        // destroyed: closing
      }
    }, 1_000);
    retry.unref();
  });
  dest.on('write', () => {
    if (!failing) return;
    failing = false;
    const dropped = lost;
    lost = 0;
    log.at('lifecycle', 'log', 'log file writable again', { recordsLost: dropped, file: path });
    opts.warn(`log file ${path} writable again; ${dropped} records were lost`);
  });
  const batch = new WindowBatch(dest);
  // A process that exits without close() (an uncaught error, process.exit): pino has already
  // written the destination's queue synchronously (its own 'exit' handler, registered when the
  // destination was made); the records of the last turn follow it.
  const atExit = (): void => {
    const text = batch.take();
    const fd = (dest as { fd?: number }).fd;
    if (text === '' || fd === undefined || fd < 0) return;
    try {
      writeSync(fd, text);
    } catch {
      // nowhere left to say it
    }
  };
  process.on('exit', atExit);
  const server: Bindings = { sid: '-', proto: opts.protocol };
  const log: Log =
    opts.format === 'json'
      ? new PinoLog(
          pino(
            {
              level: 'info',
              base: { pid: process.pid },
              timestamp: pino.stdTimeFunctions.isoTime,
              formatters: { level: (label) => ({ level: label }) },
            },
            batch,
          ),
          server,
          opts.level,
        )
      : new TextLog(batch, server, opts.level);

  // Roll over at local midnight; re-armed each day (a timer, not a check per record).
  let timer: NodeJS.Timeout | undefined;
  const arm = (): void => {
    timer = setTimeout(() => {
      openAgain(join(opts.dir, logFileName(now())));
      arm();
    }, msUntilMidnight(now()));
    timer.unref();
  };
  arm();

  return {
    log,
    get path() {
      return path;
    },
    reopen: () => openAgain(join(opts.dir, logFileName(now()))),
    close: () =>
      new Promise<void>((resolve) => {
        if (timer !== undefined) clearTimeout(timer);
        process.off('exit', atExit);
        batch.flush();
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
