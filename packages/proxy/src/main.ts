/**
 * What the executables do, protocol by protocol: resolve the configuration (`@mmp/config`'s
 * `cliAction`), then list (`-h`), print install lines, fail with exit code 2, or run the server
 * until SIGTERM/SIGINT. User errors are one clear line on stderr, never a stack trace.
 */

import cluster from 'node:cluster';
import { type Protocol, cliAction, formatProblem } from '@mmp/config';
import { Directory } from './directory.js';
import { lookupCaches } from './lookupCache.js';
import { announceListening, onWorkerStop, runPrimary } from './workers.js';
import { startImapSession } from './imap/session.js';
import { openLogFile } from './log.js';
import { startPopSession } from './pop3/session.js';
import { loadSpoofMessage } from './pop3/spoof.js';
import { logOpener, privilegesFor, serving } from './privileges.js';
import { loadSecurity } from './tls/listener.js';
import { ProxyServer, type StartSession } from './server.js';
import { type ProxySettings, settingsFrom } from './settings.js';
import { VirtualDomains, loadVdmap } from './vdomain/table.js';

const PROGRAM: Record<Protocol, string> = { imap: 'ImapProxy', pop3: 'PopProxy' };

/** Session starters per protocol. */
const SESSIONS: Partial<Record<Protocol, StartSession>> = {
  imap: startImapSession,
  pop3: startPopSession,
};

export interface Io {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

const processIo: Io = {
  stdout: (t) => process.stdout.write(t.endsWith('\n') ? t : `${t}\n`),
  stderr: (t) => process.stderr.write(t.endsWith('\n') ? t : `${t}\n`),
};

/** Run an executable; resolves with the exit code once it should exit. */
export async function main(
  protocol: Protocol,
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  io: Io = processIo,
): Promise<number> {
  const program = PROGRAM[protocol];
  const action = cliAction(protocol, argv, env);
  switch (action.kind) {
    case 'list':
    case 'install':
      io.stdout(action.text);
      return 0;
    case 'fail':
      io.stderr(`${program}: ${action.message}`);
      return action.exitCode;
    case 'apply': {
      // `install -n NAME`: the installer's writer, loaded only for this (setup/src/options.ts).
      const { applyOptions } = await import('@mmp/setup');
      return applyOptions({ protocol, ...action }, { env, cwd: process.cwd(), ...io });
    }
    case 'run':
      break;
  }
  const startSession = SESSIONS[protocol];
  if (startSession === undefined) {
    io.stderr(`${program}: the ${protocol} multiplexor is not available yet`);
    return 2;
  }
  const settings = settingsFrom(action.config);
  for (const w of action.warnings) io.stderr(`${program}: warning: ${formatProblem(w)}`);
  if (settings.spoofMessageFile !== undefined) {
    // Read and checked once, before listening: a broken file is an operator error to report
    // now, not a surprise on the day a store goes down (admin guide, SpoofMessageFile).
    const spoof = loadSpoofMessage(settings.spoofMessageFile);
    if (!spoof.ok) {
      io.stderr(`${program}: SpoofMessageFile ${settings.spoofMessageFile}: ${spoof.error}`);
      return 2;
    }
    settings.spoofMessage = spoof.value;
  }
  // TLS, key password, ciphers, certmap, CA files: checked before listening (tls/listener.ts).
  const security = loadSecurity(settings);
  if (!security.ok) {
    io.stderr(`${program}: ${security.error}`);
    return 2;
  }
  // Virtual domains (issue 6): the vdmap is checked before listening, like every other file.
  const vdmapPath = action.config.values.VirtualDomainFile;
  const vdmap = vdmapPath === undefined || vdmapPath === '' ? undefined : loadVdmap(vdmapPath);
  if (vdmap !== undefined && !vdmap.ok) {
    for (const p of vdmap.error) io.stderr(`${program}: ${formatProblem(p)}`);
    return 2;
  }
  for (const w of vdmap?.value.warnings ?? [])
    io.stderr(`${program}: warning: ${formatProblem(w)}`);
  // RunAsUser (privileges.ts): whom clients are served as, decided before anything is opened.
  const privileges = privilegesFor(action.config.values.RunAsUser);
  if (!privileges.ok) {
    io.stderr(`${program}: ${privileges.error}`);
    return 2;
  }
  if (privileges.value.kind === 'unprivileged' && privileges.value.ignored !== undefined)
    io.stderr(
      `${program}: warning: RunAsUser ${privileges.value.ignored} ignored: not started as root`,
    );
  const logFile = openLogFile({
    dir: settings.logDir,
    level: settings.logLevel,
    format: settings.logFormat,
    protocol,
    warn: (m) => io.stderr(`${program}: warning: ${m}`),
    ...logOpener(privileges.value),
  });
  const log = logFile.log;
  // SIGUSR1 reopens the log (logrotate); a listener also keeps Node's inspector shut (bin/).
  process.on('SIGUSR1', () => logFile.reopen());
  if ((settings.numThreads ?? 0) > 0 && cluster.isPrimary) {
    // NumThreads: this process only watches the workers (workers.ts), which run this function
    // again, with the same arguments and environment, as workers.
    const code = await runPrimary({
      program,
      count: settings.numThreads ?? 0,
      log,
      stderr: io.stderr,
    });
    await logFile.close();
    return code;
  }
  // LdapCacheSize/LdapCacheTTL: one cache per directory (lookupCache.ts).
  const cached = lookupCaches(settings.lookupCache ?? { entries: 0, ttlMs: 0 });
  const directory = cached(new Directory(settings.directory));
  const vdomains =
    vdmap === undefined || vdmapPath === undefined
      ? undefined
      : new VirtualDomains({
          protocol,
          values: action.config.values,
          settings,
          directory,
          path: vdmapPath,
          domains: vdmap.value.domains,
          log,
          // A domain's own CertMapFile, StoreAdmin…: checked like the global ones.
          check: loadSecurity,
        });
  const vdProblems = vdomains?.problems() ?? [];
  if (vdProblems.length > 0) {
    for (const p of vdProblems) io.stderr(`${program}: ${formatProblem(p)}`);
    await logFile.close();
    return 2;
  }
  const serve = serving(privileges.value, startSession, { isWorker: cluster.isWorker, log });
  const server = new ProxyServer({
    protocol,
    settings,
    directory,
    log,
    startSession: serve.start,
    ...(vdomains === undefined
      ? {}
      : {
          settingsFor: (a: string) => vdomains.settingsFor(a),
          directoryFor: (s: ProxySettings) => cached(vdomains.directoryFor(s)),
        }),
  });
  const before = serve.beforeListen();
  if (!before.ok) {
    io.stderr(`${program}: ${before.error}`);
    await logFile.close();
    return 1;
  }
  try {
    const bound = await server.listen();
    const tlsBound = await server.listenTls();
    if (tlsBound !== undefined)
      io.stderr(`${program}: listening for TLS clients on ${tlsBound.host}:${tlsBound.port}`);
    const extra = await vdomains?.listen(server);
    if (extra !== undefined && !extra.ok) {
      // The main listener is up: close it, or the process would not exit.
      log.error('start', 'cannot listen on a vdmap address', { error: extra.error });
      io.stderr(`${program}: cannot listen on a vdmap address: ${extra.error}`);
      await server.stop();
      await logFile.close();
      return 1;
    }
    const dropped = serve.afterListen();
    if (!dropped.ok) {
      io.stderr(`${program}: ${dropped.error}`);
      await server.stop();
      await logFile.close();
      return 1;
    }
    log.at('lifecycle', 'start', `${program} listening`, { address: bound.host, port: bound.port });
    // A worker tells the primary, which says "listening" once every worker is.
    if (cluster.isWorker) announceListening(bound);
    else io.stderr(`${program}: listening on ${bound.host}:${bound.port}`);
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    log.error('start', 'cannot listen', { error: message });
    io.stderr(`${program}: cannot listen on ListenPort: ${message}`);
    await logFile.close();
    return 1;
  }

  let stopped = false;
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    if (cluster.isWorker)
      // NumThreads: a signal (also sent to the whole process group by a terminal or systemd) or
      // the primary's request stops a worker; only the primary's second request aborts sessions.
      onWorkerStop(resolve, () => {
        resolve('SIGTERM');
        if (stopped) return;
        log.at('lifecycle', 'stop', 'second signal: closing every session now');
        server.abortAll();
      });
    else {
      process.once('SIGTERM', () => resolve('SIGTERM'));
      process.once('SIGINT', () => resolve('SIGINT'));
    }
    // SIGHUP refreshes the virtual domains (vdomain/table.ts); without them it is ignored
    // rather than fatal, as the default action would be.
    process.on('SIGHUP', () => {
      if (vdomains === undefined) log.at('lifecycle', 'signal', 'SIGHUP ignored (no vdmap)');
      else
        void vdomains.reload().then((r) => {
          if (r.ok) io.stderr(`${program}: SIGHUP: ${vdmapPath ?? ''} reloaded`);
          else
            for (const p of r.error)
              io.stderr(`${program}: SIGHUP: ${formatProblem(p)} (kept the previous vdmap)`);
        });
    });
  });
  log.at('lifecycle', 'stop', `${signal}: stopping`, { sessions: server.sessionCount });
  // A second signal does not wait for the grace period.
  const now = (): void => {
    if (stopped) return; // the log is closed
    log.at('lifecycle', 'stop', 'second signal: closing every session now');
    server.abortAll();
  };
  if (!cluster.isWorker) {
    process.once('SIGTERM', now);
    process.once('SIGINT', now);
  }
  await server.stop();
  stopped = true;
  await directory.close();
  await vdomains?.close();
  log.at('lifecycle', 'stop', `${program} stopped`);
  await logFile.close();
  return 0;
}
