/**
 * The texts of the Debian package (`mmp_<version>_all.deb`): control file, maintainer scripts,
 * systemd template units, logrotate snippet. Pure functions of the version; build.ts lays them
 * out with the bundles.
 *
 * Decisions (README, "Install on a server"):
 * - Architecture `all`: the bundles are JavaScript with no native code.
 * - `Depends: nodejs (>= 20.19)` rather than a Node.js inside the package: Node's security fixes
 *   then come with the operator's apt updates (Debian 13, or NodeSource's repository on Debian
 *   12, whose own nodejs 18 is refused by dpkg with a clear unmet dependency), and the package
 *   stays under a megabyte instead of ~100 MB per release.
 * - A system user `mmp` (no login, no home) serves the clients: mmp-setup's default RunAsUser
 *   once it exists. `/var/log/mmp` is its, 0750.
 * - `remove` leaves the operators' instances (MMPRoot, /etc/netscape.mmp.conf) and logs alone;
 *   `purge` also removes the user and /var/log/mmp with everything in it.
 */
import { PROTOCOLS, type Protocol, programName } from '@mmp/config';
import { NODE_REQUIRED, PACKAGE_USER, hardening } from '@mmp/setup';

export const PACKAGE = 'mmp';
export const LIB_DIR = '/usr/lib/mmp';
export const BIN_DIR = '/usr/bin';
export const DOC_DIR = '/usr/share/doc/mmp';
export const UNIT_DIR = '/lib/systemd/system';
export const LOGROTATE_FILE = '/etc/logrotate.d/mmp';
export const LOG_ROOT = '/var/log/mmp';

export function controlFile(version: string, installedKiB: number): string {
  return `Package: ${PACKAGE}
Version: ${version}
Architecture: all
Maintainer: mmp developers <mmp@localhost>
Installed-Size: ${installedKiB}
Depends: nodejs (>= ${NODE_REQUIRED}), adduser
Section: mail
Priority: optional
Description: Messaging Multiplexor: IMAP and POP3 routing proxy
 mmp puts one host in front of many IMAP and POP3 stores: it reads the user
 name, asks the LDAP directory (mailHost) which store holds the mailbox,
 connects there, replays the login and then passes bytes both ways. A
 re-implementation of the Netscape Messaging Multiplexor: ImapProxy, PopProxy
 and the mmp-setup installer.
`;
}

export const CONFFILES = `${LOGROTATE_FILE}\n`;

export function postinst(): string {
  return `#!/bin/sh
# mmp postinst: the system user the proxies serve clients as, and its log directory.
set -e
if [ "$1" = configure ]; then
  if ! getent passwd ${PACKAGE_USER} >/dev/null; then
    adduser --quiet --system --group --no-create-home --home /nonexistent --shell /usr/sbin/nologin \\
      --gecos 'Messaging Multiplexor' ${PACKAGE_USER} >/dev/null
  fi
  if [ ! -d ${LOG_ROOT} ]; then
    install -d -o ${PACKAGE_USER} -g ${PACKAGE_USER} -m 0750 ${LOG_ROOT}
  fi
  if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || true
  fi
fi
exit 0
`;
}

export function postrm(): string {
  return `#!/bin/sh
# mmp postrm: purge takes away what postinst made. Instances (MMPRoot) are the operator's.
set -e
if [ "$1" = purge ]; then
  rm -rf ${LOG_ROOT}
  if getent passwd ${PACKAGE_USER} >/dev/null; then
    deluser --system --quiet ${PACKAGE_USER} >/dev/null 2>&1 || userdel ${PACKAGE_USER} || true
  fi
  if getent group ${PACKAGE_USER} >/dev/null; then
    delgroup --system --quiet ${PACKAGE_USER} >/dev/null 2>&1 || groupdel ${PACKAGE_USER} || true
  fi
fi
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload >/dev/null 2>&1 || true
fi
exit 0
`;
}

export function templateUnitName(protocol: Protocol): string {
  return `mmp-${protocol}@.service`;
}

/**
 * One template unit per protocol: `systemctl enable --now mmp-imap@mail1` runs instance mail1
 * (`ImapProxy -n mail1`, the guide's way of naming an instance, which finds `MMPRoot/MMP_mail1`,
 * `MMP-mail1` or `mail1` as mmp-setup does), started as root with the
 * proxy's own drop to RunAsUser, writing only /var/log/mmp/mail1 (mmp-setup's default LogDir;
 * another LogDir needs a drop-in with its ReadWritePaths).
 */
export function templateUnit(protocol: Protocol): string {
  const program = programName(protocol);
  return `[Unit]
Description=Messaging Multiplexor (${protocol === 'imap' ? 'IMAP4' : 'POP3'}), instance %i
Documentation=file:${DOC_DIR}/README.md
Wants=network-online.target
After=network-online.target

[Service]
Type=simple
ExecStart=${BIN_DIR}/${program} -n %i
ExecReload=/bin/kill -HUP $MAINPID
Restart=on-failure
RestartSec=2
KillSignal=SIGTERM
TimeoutStopSec=20
${hardening([`"-${LOG_ROOT}/%i"`])}

[Install]
WantedBy=multi-user.target
`;
}

/**
 * Logs: each day already has its own file (MMP_yyyymmdd.log); logrotate compresses and expires
 * them, and when it moves the day's file the proxies must write a new one: SIGUSR1 (nginx's
 * meaning) to systemd instances' main processes and, through their start scripts, to instances
 * started with `ImapMMP start`. A NumThreads primary passes it to its workers.
 */
export function logrotate(): string {
  // Every instance directory, whatever its spelling (MMP_name, the guide's MMP-name or a plain
  // name: `@mmp/config` findInstances); a directory without the script is skipped below.
  const scripts = PROTOCOLS.map((p) => `"$MMPRoot"/*/${p === 'imap' ? 'ImapMMP' : 'PopMMP'}`).join(
    ' ',
  );
  return `${LOG_ROOT}/*/MMP_*.log {
    daily
    rotate 30
    maxage 90
    missingok
    notifempty
    compress
    delaycompress
    sharedscripts
    postrotate
        systemctl kill --kill-whom=main --signal=USR1 'mmp-*.service' >/dev/null 2>&1 || true
        MMPRoot=/opt/mmp
        [ -r /etc/netscape.mmp.conf ] && . /etc/netscape.mmp.conf
        for s in ${scripts}; do
            [ -x "$s" ] && "$s" reopen >/dev/null 2>&1
        done
        true
    endscript
}
`;
}

export function copyright(): string {
  return `Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: mmp
Comment: Built by scripts/package from the mmp checkout. The JavaScript bundles
 in ${LIB_DIR} include the npm packages listed in README.md ("Dependencies"),
 each under its own licence.

Files: *
Copyright: the mmp developers
License: other
 No licence has been stated for mmp itself yet.
`;
}
