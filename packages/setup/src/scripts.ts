/**
 * The start scripts of Table 13.6 (`ImapMMP`, `PopMMP`: "shell scripts that set environment
 * variables and execute Multiplexor … may be included in the init directory") and a systemd unit
 * per protocol. POSIX sh only (dash on Debian), LSB init-script verbs and exit codes.
 */
import { type Protocol, configFileName, programName, shellQuote } from '@mmp/config';
import { NODE_FLAGS } from '@mmp/proxy/runtime';
import { PROTOCOL_LABEL } from './table.js';

/** `ImapMMP` / `PopMMP`: the config file's name without `.config` (Table 13.6). */
export function scriptName(protocol: Protocol): string {
  return configFileName(protocol).replace(/\.config$/, '');
}

export function pidFileName(protocol: Protocol): string {
  return `${scriptName(protocol)}.pid`;
}

/** Where the proxy's stdout/stderr go (its own MMP_yyyymmdd.log files live in LogDir). */
export function outFileName(protocol: Protocol): string {
  return `${scriptName(protocol)}.out`;
}

export function unitName(instance: string, protocol: Protocol): string {
  return `mmp-${instance}-${protocol}.service`;
}

export interface ScriptInput {
  readonly protocol: Protocol;
  readonly instance: string;
  readonly instanceDir: string;
  readonly user: string;
  /** Absolute path of node (process.execPath at setup time). */
  readonly node: string;
  /** Absolute path of ImapProxy.js / PopProxy.js. */
  readonly proxy: string;
}

/**
 * The start script. Design points, each for a reason:
 * - The config file is sourced with `set -a` so every parameter is exported even if a hand edit
 *   forgot `export`, then the proxy is exec'd: no wrapper process sits between the pid file and
 *   the proxy, so `kill` reaches the proxy itself.
 * - Started by root for another user, it drops privileges with setpriv (util-linux, present on
 *   Debian 12), which execs in place and keeps the pid; runuser is the fallback. The config file
 *   (mode 0600, passwords) is read by root before the switch, so the proxy user never needs to
 *   read it.
 * - `start` detaches with setsid (a new session: no terminal, no SIGHUP, no Ctrl-C). nohup would
 *   not help, Node resets ignored signals to their defaults at start-up.
 * - A pid is trusted only if /proc shows our proxy's path in its command line: a stale pid file
 *   after a reboot must not make us signal an unrelated process.
 */
export function startScript(s: ScriptInput): string {
  const name = scriptName(s.protocol);
  const label = PROTOCOL_LABEL[s.protocol];
  return `#!/bin/sh
# ${name}: start script of the ${label} Messaging Multiplexor, instance ${s.instance}.
# Written by mmp-setup; change the configuration with: mmp-setup --modify ${s.instance}
#
# Usage: ${name} {start|stop|restart|status|run}
#   start    run ${programName(s.protocol)} in the background (pid in ${pidFileName(s.protocol)}, output in ${outFileName(s.protocol)})
#   stop     send SIGTERM and wait for it to exit
#   status   exit 0 when running, 1 when dead with a stale pid file, 3 when not running (LSB)
#   run      run in the foreground (for systemd and other supervisors)
#
### BEGIN INIT INFO
# Provides:          mmp-${s.instance}-${s.protocol}
# Required-Start:    $network $remote_fs
# Required-Stop:     $network $remote_fs
# Default-Start:     2 3 4 5
# Default-Stop:      0 1 6
# Short-Description: Messaging Multiplexor (${label}), instance ${s.instance}
### END INIT INFO

MMP_INSTANCE=${shellQuote(s.instance)}
MMP_INSTANCE_DIR=${shellQuote(s.instanceDir)}
MMP_USER=${shellQuote(s.user)}
MMP_NODE=${shellQuote(s.node)}
MMP_PROXY=${shellQuote(s.proxy)}
# Node.js flags of the proxy (a bounded young generation: memory per idle session).
MMP_NODE_FLAGS=${shellQuote(NODE_FLAGS.join(' '))}
MMP_NAME=${shellQuote(name)}
MMP_CONFIG="$MMP_INSTANCE_DIR/${configFileName(s.protocol)}"
MMP_PIDFILE="$MMP_INSTANCE_DIR/${pidFileName(s.protocol)}"
MMP_OUTFILE="$MMP_INSTANCE_DIR/${outFileName(s.protocol)}"
# Seconds to wait after starting (to catch an immediate failure) and for a stop.
: "\${MMP_START_WAIT:=2}"
: "\${MMP_STOP_TIMEOUT:=15}"

say() { printf '%s\\n' "$MMP_NAME ($MMP_INSTANCE): $*"; }

# Sleep a tenth of a second where sleep allows it (GNU, busybox), else a second.
nap() { sleep 0.1 2>/dev/null || sleep 1; }

# Sets pid from the pid file (empty when absent or garbage).
read_pid() {
  pid=
  [ -r "$MMP_PIDFILE" ] && read -r pid <"$MMP_PIDFILE" 2>/dev/null
  case "$pid" in '' | *[!0-9]*) pid= ;; esac
}

# True when $1 is a live process running our proxy (zombies have an empty command line).
is_ours() {
  [ -n "$1" ] || return 1
  if [ -r "/proc/$1/cmdline" ]; then
    tr '\\000' '\\n' <"/proc/$1/cmdline" 2>/dev/null | grep -qxF -- "$MMP_PROXY"
  else
    kill -0 "$1" 2>/dev/null
  fi
}

# True while $1 exists and is not a zombie (whatever it runs: right after the fork it is still
# this shell, not yet the proxy).
alive() {
  if [ -r "/proc/$1/status" ]; then
    ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null
  else
    kill -0 "$1" 2>/dev/null
  fi
}

may_run() {
  if [ "$(id -u)" != 0 ] && [ "$(id -un)" != "$MMP_USER" ]; then
    say "must be run by root or by $MMP_USER" >&2
    exit 4
  fi
  if [ ! -r "$MMP_CONFIG" ]; then
    say "cannot read $MMP_CONFIG" >&2
    exit 6
  fi
}

# Replace this (sub)shell with the proxy, as MMP_USER, in the instance directory. $1: "detach"
# to start a new session.
launch() {
  cd "$MMP_INSTANCE_DIR" || exit 1
  set -a
  . "$MMP_CONFIG" || exit 1
  set +a
  detach=$1
  # shellcheck disable=SC2086 # the flags are words
  set -- "$MMP_NODE" $MMP_NODE_FLAGS "$MMP_PROXY"
  if [ "$(id -un)" != "$MMP_USER" ]; then
    if command -v setpriv >/dev/null 2>&1; then
      set -- setpriv --reuid="$MMP_USER" --regid="$(id -g "$MMP_USER")" --init-groups -- "$@"
    else
      set -- runuser -u "$MMP_USER" -- "$@"
    fi
  fi
  if [ "$detach" = detach ] && command -v setsid >/dev/null 2>&1; then
    set -- setsid "$@"
  fi
  exec "$@"
}

do_start() {
  may_run
  read_pid
  if is_ours "$pid"; then
    say "already running (pid $pid)"
    return 0
  fi
  # The output may hold addresses and user names: private. The pid file is not.
  umask 077
  launch detach </dev/null >>"$MMP_OUTFILE" 2>&1 &
  pid=$!
  umask 022
  printf '%s\\n' "$pid" >"$MMP_PIDFILE.tmp" && mv -f "$MMP_PIDFILE.tmp" "$MMP_PIDFILE"
  i=0
  # An immediate failure (bad configuration, port in use) shows within MMP_START_WAIT seconds.
  while [ "$i" -lt $((MMP_START_WAIT * 10)) ] && alive "$pid"; do
    nap
    i=$((i + 1))
  done
  if ! is_ours "$pid"; then
    rm -f "$MMP_PIDFILE"
    say "failed to start; the end of $MMP_OUTFILE:" >&2
    tail -n 20 "$MMP_OUTFILE" >&2
    return 1
  fi
  say "started (pid $pid)"
}

do_stop() {
  read_pid
  if ! is_ours "$pid"; then
    rm -f "$MMP_PIDFILE"
    say "not running"
    return 0
  fi
  kill -TERM "$pid" || return 1
  i=0
  while is_ours "$pid" && [ "$i" -lt $((MMP_STOP_TIMEOUT * 10)) ]; do
    nap
    i=$((i + 1))
  done
  if is_ours "$pid"; then
    say "still running after \${MMP_STOP_TIMEOUT}s (pid $pid)" >&2
    return 1
  fi
  rm -f "$MMP_PIDFILE"
  say "stopped"
}

do_status() {
  read_pid
  if is_ours "$pid"; then
    say "running (pid $pid)"
    return 0
  fi
  if [ -n "$pid" ]; then
    say "not running (stale pid file $MMP_PIDFILE)"
    return 1
  fi
  say "not running"
  return 3
}

case "$1" in
  start) do_start ;;
  stop) do_stop ;;
  restart) do_stop && do_start ;;
  status) do_status ;;
  run)
    may_run
    launch
    ;;
  *)
    echo "Usage: $0 {start|stop|restart|status|run}" >&2
    exit 2
    ;;
esac
`;
}

/**
 * A systemd unit running the start script's foreground verb. Not `EnvironmentFile=`: our config
 * file is shell syntax (quotes, `export`), which systemd reads differently; sourcing it through
 * the script keeps one reader. The unit stays root so the script can read the 0600 config file
 * before dropping to the MMP user.
 */
export function systemdUnit(s: ScriptInput): string {
  const label = PROTOCOL_LABEL[s.protocol];
  return `# Written by mmp-setup. Install with:
#   systemctl link ${s.instanceDir}/${unitName(s.instance, s.protocol)}
#   systemctl enable --now ${unitName(s.instance, s.protocol)}
[Unit]
Description=Messaging Multiplexor (${label}), instance ${s.instance}
Wants=network-online.target
After=network-online.target

[Service]
Type=simple
ExecStart=${systemdQuote(`${s.instanceDir}/${scriptName(s.protocol)}`)} run
Restart=on-failure
RestartSec=2
KillSignal=SIGTERM
TimeoutStopSec=20

[Install]
WantedBy=multi-user.target
`;
}

/** systemd.syntax(7): double quotes keep spaces together; `%` starts a specifier, so `%%`. */
function systemdQuote(path: string): string {
  return `"${path.replaceAll('%', '%%')}"`;
}
