/**
 * Every fixed limit of the multiplexor, in one place, each with the attack or failure it stops.
 * Limits that an operator may tune are configuration parameters (`@mmp/config`), not here: the
 * pre-login idle time is `Timeout`, the store connect time is `StoreConnectTimeout`.
 *
 * Exceeding a limit before login ends the session with one refusal of the same shape
 * (see `imap/responses.ts`); other sessions are never affected.
 */

/**
 * Longest command text before login, CRLF excluded, summed over the line segments of one command
 * (literal bytes are counted by MAX_LITERAL_BYTES instead). RFC 7162 §4 asks clients to keep lines
 * under 8192 octets; nothing a client may say before login needs more. Stops a client that streams
 * bytes without a line end from growing our buffer (memory exhaustion), and most cross-protocol
 * payloads (ALPACA) that carry no CRLF.
 */
export const MAX_LINE_BYTES = 8 * 1024;

/**
 * Largest PROXY protocol header (proxyHeader.ts). A v1 line is at most 107 bytes; a v2 header is
 * 16 bytes, 36 of IPv6 addresses, then TLVs up to a declared 64 KiB. Balancers send a few dozen
 * bytes of TLVs (AWS and Azure their endpoint ids, HAProxy none unless asked); 2 KiB leaves room
 * for those and stops a trusted-but-broken sender from making us hold 64 KiB per connection.
 */
export const MAX_PROXY_HEADER_BYTES = 2048;

/**
 * How long a connection on a PROXY-protocol listener may take to send its header. A balancer
 * sends it at once, before any client byte; a connection that stays silent holds a socket.
 */
export const PROXY_HEADER_TIMEOUT_MS = 5_000;

/** Most RFC 2971 ID field/value pairs (§3.3: 30), field length (30) and value length (1024). */
export const ID_MAX_PAIRS = 30;
export const ID_MAX_FIELD_BYTES = 30;
export const ID_MAX_VALUE_BYTES = 1024;

/**
 * Longest text of an ID command before login, the one command allowed beyond MAX_LINE_BYTES:
 * RFC 2971 §3.3 allows 30 pairs of a 30-octet field and a 1024-octet value, about 32 KB on one
 * line as quoted strings, and clients (webmail, mobile apps) send ID before LOGIN; Dovecot
 * accepts it. A quoted string may need an escape per octet (`"` and `\`, RFC 3501 §9), so the
 * bound is the worst case, `tag ID (` + 30 × (`"field" "value" `) all escaped, + `)`, with 1 KiB
 * for the tag: 64,444 octets. The framer raises the line limit to this only once it has read the
 * verb ID (`imap/framer.ts`); the ID handler then refuses anything beyond §3.3. Bounds what a
 * client can make us hold for one command at 64 KiB of text plus its literals.
 */
export const MAX_ID_LINE_BYTES =
  1024 + ID_MAX_PAIRS * (2 * ID_MAX_FIELD_BYTES + 2 + 1 + (2 * ID_MAX_VALUE_BYTES + 2) + 1);

/**
 * Deepest parenthesised list before login (ID needs one level). The parser recurses per level: a
 * line of `(((…` must not exhaust the stack.
 */
export const MAX_LIST_DEPTH = 4;

/**
 * Largest literal `{n}` / `{n+}` before login. Literals before login carry a user name, a password
 * or an RFC 2971 ID value (at most 1024 octets, §3.3). Dovecot's login process itself refuses more
 * than 4 KiB of input before authentication, so a larger credential could not log in anyway.
 * The same figure is the RFC 7888 §4 LITERAL- bound, so LITERAL- may be advertised safely.
 * Stops a client from announcing a huge literal and making us buffer it.
 */
export const MAX_LITERAL_BYTES = 4 * 1024;

/**
 * Most literals in one command before login. LOGIN needs two; ID with every value a literal
 * would need 60 (RFC 2971 §3.3), which no client does. Bounds a command's total size at
 * MAX_LINE_BYTES + MAX_LITERALS_PER_COMMAND × MAX_LITERAL_BYTES (40 KiB), and an ID's at
 * MAX_ID_LINE_BYTES + 32 KiB: what one client can make us hold for a command before login.
 */
export const MAX_LITERALS_PER_COMMAND = 8;

/**
 * Bad commands in a row (answered `BAD`) after which the session is closed. Dovecot closes on the
 * third. Stops cross-protocol attacks (ALPACA: an HTTP or SMTP client aimed at the IMAP port,
 * whose lines are all bad commands) and scanners, while forgiving a client's occasional mistake.
 */
export const MAX_BAD_COMMANDS = 3;

/**
 * Bad commands in one session, in a row or not. The in-a-row count resets on any valid command,
 * so garbage interleaved with NOOP would be unlimited (nginx counts errors per session and never
 * resets, mail_max_errors); this bounds what a scanner or cross-protocol client gets to try.
 */
export const MAX_BAD_COMMANDS_PER_SESSION = 10;

/**
 * Commands (valid or not) one session may send before it is piped to a store: the closing answer
 * replaces the next one. Logging in takes a handful (CAPABILITY, ID, STARTTLS, CAPABILITY again,
 * up to MAX_FAILED_LOGINS attempts, a NOOP now and then within LoginTimeout; the POP3 spoof inbox
 * a few more), and nobody needs more than this. Stops a client that pipelines commands and never
 * reads (or reads slowly): the kernel's socket buffers take in megabytes of our answers before
 * MAX_QUEUED_REPLY_BYTES can push back, so without a count one such connection kept the proxy's
 * single thread answering for seconds and every other client waited (the attack benchmark's
 * never-reading phase: 20 of them cut legitimate logins to 1 % of the rate without them).
 */
export const MAX_COMMANDS_BEFORE_LOGIN = 50;

/**
 * Failed logins (store said NO, or unknown user) in one session, after which it is closed.
 * Password guessing then costs a new TCP connection (and the store's own failure delay) per three
 * guesses, and shows up in the connection log by client address.
 */
export const MAX_FAILED_LOGINS = 3;

/**
 * Longest an answer for an unknown user is held to look like a store's refusal of a wrong
 * password (login.ts, RefusalTiming): name probing by timing is stopped up to this store delay,
 * and a slow store cannot make unknown users wait without bound.
 */
export const MAX_UNKNOWN_USER_HOLD_MS = 5_000;

/**
 * Bytes a client may pipeline after its login command while the directory and the store are
 * consulted; beyond this we stop reading from the client (TCP backpressure) until the login
 * finishes, so a client cannot make us buffer without bound.
 */
export const MAX_PIPELINED_BYTES = 64 * 1024;

/**
 * Replies queued to a client before login (bytes the socket has not sent yet); beyond this we
 * stop reading from it until they drain, as after login. Stops a client that sends CAPABILITY
 * (or RETR in the spoof inbox) in a loop and never reads from making us queue without bound:
 * what it costs us is this plus one reply.
 */
export const MAX_QUEUED_REPLY_BYTES = 64 * 1024;

/**
 * Descriptors kept out of MaxClientConnections' reach: the lowest of it and
 * (descriptor limit − this) / 2 (a logged-in client holds its store connection too) is the cap.
 * Room for the LDAP pools (DIRECTORY_POOL_SIZE per host), the log file, the listeners and store
 * connections being opened, so that a flood of clients at the cap cannot make every login fail.
 */
export const DESCRIPTOR_RESERVE = 256;

/**
 * Failed logins of an address group are forgotten this long after the last one
 * (AuthFailureDelay): a user who mistyped yesterday starts afresh.
 */
export const AUTH_PENALTY_FORGET_MS = 15 * 60_000;

/**
 * Address groups whose failed logins are remembered; beyond this the oldest are forgotten, so an
 * attacker spraying addresses (an IPv6 range) cannot grow the table without bound (~100 bytes each).
 */
export const MAX_PENALISED_ADDRESSES = 100_000;

/** Longest line we accept from a store during the login replay (greeting, continuation, answer).
 * A store that misbehaves (or is not an IMAP/POP3 server) cannot grow our buffer. */
export const MAX_STORE_LINE_BYTES = 64 * 1024;

/**
 * How long a store that did not answer within StoreConnectTimeout (no connection, or no greeting)
 * is skipped before one probe attempt (`attemptLimiter.ts`). A hung store would otherwise hold
 * every login on it for the whole timeout; 30 s lets a restarting store come back soon while
 * sparing users the wait during an outage.
 */
export const STORE_DOWN_AFTER_TIMEOUT_MS = 30_000;

/**
 * While a store is marked down, a background probe (connect, read the greeting within
 * StoreConnectTimeout) runs this often; the first greeting clears the mark (`attemptLimiter.ts`).
 */
export const STORE_PROBE_INTERVAL_MS = 1_000;

/**
 * A login over MaxConcurrentConnectionAttempts waits for a slot while the store finishes attempts;
 * once none has finished for this long with the cap reached, the store counts as hung and the
 * waiting logins skip it at once (`attemptLimiter.ts`) instead of waiting out StoreConnectTimeout.
 * A healthy store answers a login in milliseconds, and even under a burst of logins within a second
 * or two; 3 s tells a hung store from a busy one without refusing a burst.
 */
export const STORE_STALLED_AFTER_MS = 3_000;

/**
 * NumThreads workers (`workers.ts`): a worker that lived less than WORKER_STABLE_AFTER_MS is
 * restarted after a delay that starts at WORKER_RESTART_FIRST_DELAY_MS and doubles with each quick
 * death up to WORKER_RESTART_MAX_DELAY_MS, so a worker that crashes at once (a bad store, a bug
 * hit by every session) costs a restart every 30 s instead of spinning a core; one that ran a while
 * is replaced at once, since its sessions' users are reconnecting now.
 */
export const WORKER_STABLE_AFTER_MS = 10_000;
export const WORKER_RESTART_FIRST_DELAY_MS = 500;
export const WORKER_RESTART_MAX_DELAY_MS = 30_000;

/**
 * Longest a request between a worker and the primary waits for its reply (`ipc.ts`). The primary
 * answers in microseconds; a reply this late means it is stuck or gone, and the asker goes on
 * without it (a shared limit fails open) rather than holding a client's session.
 */
export const IPC_REPLY_TIMEOUT_MS = 2_000;

/**
 * Longest a worker holds its one-way notes to the primary (a connection released, a login that
 * succeeded) for the next request to carry (`ipc.ts`). Under load each login's admission carries
 * the notes of the logins before it, one message where there were three; when no request comes,
 * they go on their own after this. The primary's count of an address's connections may thus lag
 * a close by this much: a limit is a little stricter for that long, never looser.
 */
export const IPC_NOTE_BATCH_MS = 20;

/** How long a directory host that failed is skipped in favour of the next LDAPHost entry (unless
 * every host is marked dead, then all are tried again at once). */
export const DIRECTORY_DEAD_HOST_MS = 30_000;

/**
 * When every directory host is marked dead, logins fail at once (`[UNAVAILABLE]`) instead of each
 * waiting out LdapTimeout on a dead server, and one probe (connect and bind) per host runs this
 * often in the background; the first that succeeds brings the host back for everybody.
 */
export const DIRECTORY_PROBE_INTERVAL_MS = 1_000;

/**
 * Directory searches in flight at once per directory, and searches waiting for a slot beyond
 * them. A login flood (or a slow directory) must not become an unbounded queue of requests on the
 * directory's connections: the waiting ones wait at most LdapTimeout, and one beyond the queue is
 * answered `[UNAVAILABLE]` at once.
 */
export const DIRECTORY_MAX_SEARCHES = 64;
export const DIRECTORY_MAX_WAITING_SEARCHES = 1_024;

/**
 * PreAuth: connections kept per directory host for binding as users (`preauth.ts`), each doing
 * one bind at a time (RFC 4511 §4.2.1: no other operation while a bind is in progress), and binds
 * waiting for one beyond them. A login flood becomes a queue, not a connection flood on the
 * directory.
 */
export const PREAUTH_POOL_SIZE = 8;
export const PREAUTH_MAX_WAITING = 1_024;

/**
 * LdapNegativeCacheTTL: most unknown names remembered at once (a flood of random names must not
 * grow memory without bound); the least recently used go first.
 */
export const NEGATIVE_CACHE_MAX_ENTRIES = 10_000;

/** LDAP connections kept open per directory host and shared by all sessions (ldapts multiplexes
 * requests on one connection; a few spread the load and survive one connection's loss). */
export const DIRECTORY_POOL_SIZE = 4;

/**
 * After SIGTERM: how long established sessions may continue before they are closed. Clients that
 * log out in that time end cleanly; the rest are cut so that a restart is never blocked forever.
 */
export const SHUTDOWN_GRACE_MS = 10_000;

/**
 * Drain (SIGQUIT, or the old process after SIGUSR2 handed its listeners over): how long sessions
 * may still run before the rest are closed. Piped sessions are mail clients that stay connected
 * (IMAP IDLE) and reconnect when cut; an hour lets nearly every session end on its own after an
 * upgrade, while an old process never lingers for days.
 */
export const DRAIN_DEADLINE_MS = 60 * 60_000;

/**
 * POP3: longest command line before login (and in the spoof inbox), CRLF included. RFC 2449 §4
 * allows 255 octets per command line and 512 per response line; 512 forgives clients that go a
 * little over (long user names) while a client streaming bytes without CRLF, or an HTTP/SMTP
 * payload aimed at the port (ALPACA), is cut off at once.
 */
export const MAX_POP3_LINE_BYTES = 512;

/**
 * POP3: longest `AUTH` command line, CRLF included, the one command allowed beyond
 * MAX_POP3_LINE_BYTES (`pop3/lineReader.ts` raises the limit once the line starts with `AUTH `).
 * An initial response (RFC 5034 §4) carries the whole SASL message on that line, and an OAuth2
 * bearer token (RFC 7628 XOAUTH2, OAUTHBEARER) runs to kilobytes: a JWT with its claims and
 * signature is commonly 1 to 4 KiB, 5 to 7 KiB once wrapped in the SASL message and base64. 16 KiB
 * admits those with room to spare, and still bounds what one client makes us hold for a line (a
 * client streaming bytes after `AUTH ` is cut off there).
 */
export const MAX_POP3_AUTH_LINE_BYTES = 16 * 1024;

/**
 * POP3: longest SASL response line (RFC 5034 §4 sets no bound for responses): the same as an
 * `AUTH` line, since the same message (a bearer token's included) comes either as an initial
 * response or as the line after `+ `. A PLAIN message with a 255-octet name and a
 * MAX_LITERAL_BYTES password is under 6 KiB in base64.
 */
export const MAX_POP3_SASL_LINE_BYTES = MAX_POP3_AUTH_LINE_BYTES;

/**
 * POP3: largest SpoofMessageFile accepted at start-up. The message is held in memory once and
 * served to every session whose store is down; a notice needs far less, and a mistaken path to a
 * huge file must not eat the server's memory.
 */
export const MAX_SPOOF_MESSAGE_BYTES = 1024 * 1024;

/**
 * POP3 spoof inbox: idle time in the TRANSACTION state. RFC 1939 §3 requires an autologout timer
 * of at least 10 minutes there (Timeout covers only the time before login).
 */
export const POP3_TRANSACTION_IDLE_MS = 10 * 60_000;

/**
 * What waits in memory for a log file that cannot be written (LogDir's disk full): the records
 * of a few minutes of heavy load. Later records are dropped, so a full disk costs records, never
 * the proxy's memory.
 */
export const LOG_BUFFER_MAX = 4 * 1024 * 1024;

/**
 * Log records are written together per window of this many ms (issue 18: one file write for many
 * records). Short enough that `tail -f` shows a record at once to a reader.
 */
export const LOG_BATCH_MS = 20;

/** Pending log text that is written at once, without waiting for the window's end. */
export const LOG_BATCH_BYTES = 64 * 1024;

/** A log file that cannot be written is said on stderr at most this often (issue 14). */
export const LOG_FAILURE_REPORT_MS = 60_000;

/** Connections refused because the server is full (MaxClientConnections, the descriptor cap) are
 * one record at most this often, with how many since the last (issue 14, point 5). */
export const FULL_REPORT_MS = 60_000;
