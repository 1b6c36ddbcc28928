/**
 * The start scripts of Table 13.6 (`ImapMMP`, `PopMMP`: "shell scripts that set environment
 * variables and execute Multiplexor … may be included in the init directory") and a systemd unit
 * per protocol. POSIX sh only (dash on Debian), LSB init-script verbs and exit codes.
 */
import { type Protocol, configFileName, programName, shellQuote } from '@mmp/config';
import { launcherPath } from './layout.js';
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

/** The pid of the supervisor that \`start\` runs (the pid file names the proxy). */
export function supervisorFileName(protocol: Protocol): string {
  return `${scriptName(protocol)}.supervisor.pid`;
}

export function unitName(instance: string, protocol: Protocol): string {
  return `mmp-${instance}-${protocol}.service`;
}

export interface ScriptInput {
  readonly protocol: Protocol;
  readonly instance: string;
  readonly root: string;
  readonly instanceDir: string;
  /** The LogDir the proxy writes (systemd: the one path it may write). */
  readonly logDir: string;
}

/**
 * The start script. Design points, each for a reason:
 * - The proxy reads its own file (`-f`), as root, and drops to RunAsUser itself once it listens
 *   (issue 12): a misspelt name, a bad value or a csh `setenv` line is read exactly as with `-f`
 *   by hand, the 0600 file and the keys are read by root, ports below 1024 need nothing more.
 * - The proxy starts with an empty environment but PATH, LANG and TZ: a parameter exported in the
 *   caller's shell must not outrank the instance's file (it would, by the guide's precedence),
 *   and NODE_OPTIONS must not reach it (`--inspect`). No secret is ever on a command line.
 * - It runs `MMPRoot/bin/ImapProxy` (layout.ts), which execs node: no wrapper process sits
 *   between the pid file and the proxy, so signals reach the proxy itself.
 * - `start` detaches with setsid (a new session: no terminal, no SIGHUP, no Ctrl-C), waits until
 *   the proxy says it listens or dies, and reports a refusal with the end of its output.
 * - A pid is trusted only if /proc shows this instance's config file in its command line: a stale
 *   pid file after a reboot must not make us signal an unrelated process.
 */
export function startScript(s: ScriptInput): string {
  const name = scriptName(s.protocol);
  const label = PROTOCOL_LABEL[s.protocol];
  return `#!/bin/sh
# ${name}: start script of the ${label} Messaging Multiplexor, instance ${s.instance}.
# Written by mmp-setup; change the configuration with: mmp-setup --modify ${s.instance}
#
# Usage: ${name} {start|stop|restart|reload|reopen|status|run}
#   start    run ${programName(s.protocol)} in the background (pid in ${pidFileName(s.protocol)}, output in ${outFileName(s.protocol)})
#   stop     send SIGTERM and wait for it to exit
#   restart  hand the listening sockets to a new process (SIGUSR2), which takes over at once;
#            the old one serves its sessions to their end (start when not running)
#   reload   send SIGHUP (the proxy re-reads what it can without a restart)
#   reopen   send SIGUSR1 (the proxy reopens its log files, after logrotate)
#   status   exit 0 when running, 1 when dead with a stale pid file, 3 when not running (LSB)
#   run      run in the foreground (for systemd and other supervisors)
#
# start supervises the proxy: when it dies abnormally (killed by a signal, or a non-zero exit
# after it listened) it is started again, 1 s later, then 2, 4 ... up to MMP_RESTART_MAX
# seconds while it keeps dying; each restart is a line in ${outFileName(s.protocol)}. The supervisor's pid is
# in ${supervisorFileName(s.protocol)}; stop ends it first, then the proxy. start and restart give a
# running proxy without one (started by an older script) a supervisor.
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
MMP_PROXY=${shellQuote(launcherPath(s.root, s.protocol))}
MMP_NAME=${shellQuote(name)}
MMP_CONFIG="$MMP_INSTANCE_DIR/${configFileName(s.protocol)}"
MMP_PIDFILE="$MMP_INSTANCE_DIR/${pidFileName(s.protocol)}"
MMP_OUTFILE="$MMP_INSTANCE_DIR/${outFileName(s.protocol)}"
MMP_SUPFILE="$MMP_INSTANCE_DIR/${supervisorFileName(s.protocol)}"
# Seconds to wait for the proxy to listen (or fail) after starting, and for a stop.
: "\${MMP_START_WAIT:=30}"
: "\${MMP_STOP_TIMEOUT:=15}"
# The longest wait, in seconds, before the supervisor starts a proxy that keeps dying again.
: "\${MMP_RESTART_MAX:=60}"

say() { printf '%s\\n' "$MMP_NAME ($MMP_INSTANCE): $*"; }

# Sleep a tenth of a second where sleep allows it (GNU, busybox), else a second.
nap() { sleep 0.1 2>/dev/null || sleep 1; }

# Sets pid from the pid file (empty when absent or garbage).
read_pid() {
  pid=
  [ -r "$MMP_PIDFILE" ] && read -r pid <"$MMP_PIDFILE" 2>/dev/null
  case "$pid" in '' | *[!0-9]*) pid= ;; esac
}

# True when $1 is a live process running this instance's proxy (zombies have an empty command
# line): its arguments hold our config file.
is_ours() {
  [ -n "$1" ] || return 1
  if [ -r "/proc/$1/cmdline" ]; then
    tr '\\000' '\\n' <"/proc/$1/cmdline" 2>/dev/null | grep -qxF -- "$MMP_CONFIG"
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
  if [ ! -r "$MMP_CONFIG" ]; then
    say "cannot read $MMP_CONFIG (run this as root)" >&2
    exit 4
  fi
  if [ ! -x "$MMP_PROXY" ]; then
    say "$MMP_PROXY is missing: run mmp-setup --modify $MMP_INSTANCE to write it again" >&2
    exit 5
  fi
}

# Replace this (sub)shell with the proxy, in the instance directory, on its own file and with
# only PATH, LANG and TZ of the caller's environment. $1: "detach" to start a new session.
launch() {
  cd "$MMP_INSTANCE_DIR" || exit 1
  detach=
  if [ "$1" = detach ] && command -v setsid >/dev/null 2>&1; then detach=setsid; fi
  exec $detach env -i "PATH=\${PATH:-/usr/local/bin:/usr/bin:/bin}" "LANG=\${LANG:-C.UTF-8}" \\
    \${TZ:+"TZ=$TZ"} "$MMP_PROXY" -f "$MMP_CONFIG"
}

# Signal the running proxy: $1 signal, $2 what it means.
signal_proxy() {
  read_pid
  if ! is_ours "$pid"; then
    say "not running"
    return 7
  fi
  kill "-$1" "$pid" || return 1
  say "$2 (SIG$1 sent to pid $pid)"
}

# Write pid $1 to file $2 (readable by all: it is no secret), in one step.
write_pid() {
  (umask 022 && printf '%s\\n' "$1" >"$2.tmp") && mv -f "$2.tmp" "$2"
}

# Sets sup when the supervisor's pid file names a live supervisor of this instance.
read_sup() {
  sup=
  [ -r "$MMP_SUPFILE" ] && read -r sup <"$MMP_SUPFILE" 2>/dev/null
  case "$sup" in '' | *[!0-9]*) sup= ;; esac
  if [ -n "$sup" ] && is_ours "$sup" && alive "$sup" &&
    { [ ! -r "/proc/$sup/cmdline" ] || tr '\\000' '\\n' <"/proc/$sup/cmdline" | grep -qx supervise; }; then
    return 0
  fi
  sup=
  return 1
}

out_size() {
  if [ -f "$MMP_OUTFILE" ]; then wc -c <"$MMP_OUTFILE"; else echo 0; fi
}

# The output since byte $1.
out_since() {
  tail -c +$(($1 + 1)) "$MMP_OUTFILE" 2>/dev/null
}

# Sleep $1 seconds in a way a SIGTERM interrupts (wait returns at once for a trapped signal).
pause() {
  sleep "$1" &
  tick=$!
  wait "$tick"
  tick=
}

# The supervisor, started by do_start in a session of its own, output to MMP_OUTFILE. The proxy is
# its child (a wait gives how it ended); after a hand-over the pid file names a process that is
# not, followed by /proc and by the proxy's last line. Checked once a second. $1: the pid of a
# running proxy to follow first instead of starting one.
supervise() {
  stopping=
  tick=
  delay=1
  tries=0
  adopt=$1
  # From stop: let the loop end where the pid file names the last proxy started.
  trap 'stopping=1; [ -z "$tick" ] || kill "$tick" 2>/dev/null' TERM
  while [ -z "$stopping" ]; do
    mark=$(out_size)
    if [ -n "$adopt" ]; then
      # Started without a supervisor (an older script; its supervisor killed): not a child.
      child=
      cur=$adopt
      adopt=
    else
      launch detach </dev/null &
      child=$!
      cur=$child
      write_pid "$cur" "$MMP_PIDFILE"
      tries=$((tries + 1))
    fi
    up=0
    how=
    while [ -z "$stopping" ]; do
      pause 1
      [ -z "$stopping" ] || break
      up=$((up + 1))
      follow
      if [ -n "$child" ] && ! alive "$child"; then
        wait "$child"
        rc=$?
        # It may have handed over and ended between two looks.
        follow
        if [ "$child" = "$cur" ]; then
          case "$rc" in
            0 | 130 | 143) how=stopped ;;
            *) how=$(ended "$rc") ;;
          esac
          break
        fi
        # The old process of a hand-over, drained.
        child=
      elif [ "$cur" != "$child" ] && ! is_ours "$cur"; then
        if out_since "$mark" | grep -q "stopped (pid $cur)$"; then how=stopped; else how='ended'; fi
        break
      fi
    done
    [ -z "$stopping" ] || break
    if [ "$how" = stopped ]; then
      # Stopped by a signal sent by hand (SIGTERM, SIGQUIT): not a failure.
      read_pid
      [ "$pid" != "$cur" ] || rm -f "$MMP_PIDFILE"
      rm -f "$MMP_SUPFILE"
      exit 0
    fi
    if ! out_since "$mark" | grep -q 'listening on'; then
      if [ "$tries" -eq 1 ]; then
        # A refused configuration, a port in use: start says so; trying again would not help.
        rm -f "$MMP_PIDFILE" "$MMP_SUPFILE"
        exit 1
      fi
    elif [ "$up" -ge "$MMP_RESTART_MAX" ]; then
      # It served a good while: a new crash, not a loop.
      delay=1
    fi
    say "$(date -u '+%Y-%m-%dT%H:%M:%SZ') the proxy (pid $cur) $how; starting it again in \${delay}s"
    pause "$delay"
    delay=$((delay * 2))
    [ "$delay" -le "$MMP_RESTART_MAX" ] || delay=$MMP_RESTART_MAX
  done
  rm -f "$MMP_SUPFILE"
  exit 0
}

# How a child ended, from wait's status $1.
ended() {
  if [ "$1" -gt 128 ]; then
    sig=$(kill -l "$(($1 - 128))" 2>/dev/null) || sig=$(($1 - 128))
    echo "was killed by SIG\${sig#SIG}"
  else
    echo "exited with status $1"
  fi
}

# The pid of the last process a hand-over started, said in the output since byte $1 (else empty).
handed_over_since() {
  out_since "$1" | sed -n 's/.*handed over to pid \\([0-9][0-9]*\\).*/\\1/p' | tail -n 1
}

# After a hand-over (restart, or SIGUSR2 by hand) the pid file names the new process, and the
# supervisor follows it, even one that is gone already (it ended between two looks).
follow() {
  new=$(handed_over_since "$mark")
  if [ -n "$new" ] && [ "$new" != "$cur" ]; then
    cur=$new
    write_pid "$cur" "$MMP_PIDFILE"
  fi
}

# Start the supervisor (sets sup); $1: a running proxy for it to follow, else it starts one.
start_supervisor() {
  detach=
  command -v setsid >/dev/null 2>&1 && detach=setsid
  # The output may hold addresses and user names: private. The pid files are not.
  umask 077
  # The config file's path is an argument so that is_ours knows the supervisor too.
  $detach /bin/sh "$0" supervise "$MMP_CONFIG" \${1:+"$1"} </dev/null >>"$MMP_OUTFILE" 2>&1 &
  sup=$!
  umask 022
  write_pid "$sup" "$MMP_SUPFILE"
}

do_start() {
  may_run
  read_pid
  if is_ours "$pid"; then
    if read_sup; then
      say "already running (pid $pid)"
    else
      start_supervisor "$pid"
      say "already running (pid $pid), now supervised (pid $sup)"
    fi
    return 0
  fi
  if read_sup; then
    say "starting (the supervisor, pid $sup, starts the proxy again)"
    return 0
  fi
  size=$(out_size)
  rm -f "$MMP_PIDFILE"
  start_supervisor
  i=0
  # Until the proxy says it listens, or the supervisor gives up (a refused configuration, a port
  # in use).
  while [ "$i" -lt $((MMP_START_WAIT * 10)) ] && alive "$sup"; do
    if out_since "$size" | grep -q 'listening on'; then
      read_pid
      say "started (pid $pid)"
      return 0
    fi
    nap
    i=$((i + 1))
  done
  if ! alive "$sup"; then
    rm -f "$MMP_PIDFILE" "$MMP_SUPFILE"
    say "failed to start; the end of $MMP_OUTFILE:" >&2
    out_since "$size" | tail -n 20 >&2
    return 1
  fi
  read_pid
  say "started (pid $pid), not listening yet after \${MMP_START_WAIT}s: see $MMP_OUTFILE"
}

do_stop() {
  # The supervisor first, or it would start the proxy again.
  if read_sup; then
    kill -TERM "$sup" || return 1
    i=0
    while read_sup && [ "$i" -lt $((MMP_STOP_TIMEOUT * 10)) ]; do
      nap
      i=$((i + 1))
    done
    if read_sup; then
      say "the supervisor is still running after \${MMP_STOP_TIMEOUT}s (pid $sup)" >&2
      return 1
    fi
  fi
  rm -f "$MMP_SUPFILE"
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

# SIGUSR2: the proxy starts a new process on its own sockets (the new package's code, the file
# as it is now); once that one serves, the old one says so and drains. No connection is refused.
do_restart() {
  read_pid
  if ! is_ours "$pid"; then
    do_start
    return
  fi
  may_run
  old=$pid
  size=$(out_size)
  kill -USR2 "$old" || return 1
  i=0
  # The old process may be gone already (no sessions to drain): read its last words anyway.
  while [ "$i" -lt $((MMP_START_WAIT * 10)) ]; do
    new=$(handed_over_since "$size")
    if [ -n "$new" ] && is_ours "$new"; then
      write_pid "$new" "$MMP_PIDFILE"
      # A proxy started without a supervisor gets one now.
      read_sup || start_supervisor "$new"
      say "restarted (pid $new; pid $old serves its sessions to their end)"
      return 0
    fi
    if out_since "$size" | grep -q 'SIGUSR2: the new process ended'; then
      say "the new process failed to start, pid $old still serves; the end of $MMP_OUTFILE:" >&2
      out_since "$size" | tail -n 20 >&2
      return 1
    fi
    nap
    i=$((i + 1))
  done
  say "no hand-over after \${MMP_START_WAIT}s: see $MMP_OUTFILE" >&2
  return 1
}

do_status() {
  read_pid
  if is_ours "$pid"; then
    say "running (pid $pid)"
    return 0
  fi
  if read_sup; then
    say "not running; its supervisor (pid $sup) starts it again"
    return 1
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
  restart) do_restart ;;
  reload) signal_proxy HUP "reload requested" ;;
  reopen) signal_proxy USR1 "log files reopened" ;;
  status) do_status ;;
  supervise)
    may_run
    supervise "$3"
    ;;
  run)
    may_run
    launch
    ;;
  *)
    echo "Usage: $0 {start|stop|restart|reload|reopen|status|run}" >&2
    exit 2
    ;;
esac
`;
}

/**
 * The hardening all our units share (systemd.exec(5)), for a service started as root that drops
 * to RunAsUser itself. Root keeps only what the proxy does as root: bind ports below 1024, change
 * its ids, create log files in the run-as user's directory and give them to that user
 * (DAC_OVERRIDE, CHOWN), and, with NumThreads, signal its unprivileged workers (KILL).
 * NoNewPrivileges holds: setuid() gives privileges up, it never gains any. ProtectSystem=strict
 * makes the whole file system read-only but the log directory; no MemoryDenyWriteExecute, which
 * V8's JIT cannot run under. `writable`: ReadWritePaths words, quoted for systemd.
 */
export function hardening(writable: readonly string[]): string {
  return `NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
${writable.map((w) => `ReadWritePaths=${w}`).join('\n')}
CapabilityBoundingSet=CAP_NET_BIND_SERVICE CAP_SETUID CAP_SETGID CAP_CHOWN CAP_DAC_OVERRIDE CAP_KILL
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
SystemCallArchitectures=native`;
}

/**
 * A systemd unit running the start script's foreground verb: the same launcher, file and
 * environment as `start`. Started as root, not `User=` with AmbientCapabilities: the proxy
 * must read its 0600 file and keys as root, and a NumThreads primary keeps root for the reload
 * (it re-reads root-only files and may open new listeners); the serving processes drop to
 * RunAsUser before their first client, as under `start`. `systemctl reload` sends SIGHUP (the
 * proxy re-reads everything it can without a restart); `systemctl restart` stops and starts,
 * since systemd follows one main process and a hand-over (the start script's `restart`, SIGUSR2)
 * replaces it: the gap this costs is measured in the README.
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
ExecReload=/bin/kill -HUP $MAINPID
Restart=on-failure
RestartSec=2
KillSignal=SIGTERM
TimeoutStopSec=20
${hardening([systemdQuote(`-${s.logDir}`)])}

[Install]
WantedBy=multi-user.target
`;
}

/** systemd.syntax(7): double quotes keep spaces together; `%` starts a specifier, so `%%`. */
export function systemdQuote(path: string): string {
  return `"${path.replaceAll('%', '%%')}"`;
}
