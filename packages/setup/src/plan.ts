/**
 * From answers to the exact files of an instance (name, content, mode), before anything touches
 * the disk: what apply.ts writes, what the tests inspect, what the final report lists.
 */
import { isAbsolute, resolve } from 'node:path';
import {
  PROTOCOLS,
  configFileName,
  INSTALLER_PARAMETERS,
  instanceDir,
  writeConfigFile,
  writeMmpConf,
} from '@mmp/config';
import type { Answers } from './dialogue.js';
import { launchers } from './layout.js';
import type { Runtime } from './runtime.js';
import { type ScriptInput, scriptName, startScript, systemdUnit, unitName } from './scripts.js';
import { PROTOCOL_LABEL, findSpec } from './table.js';

export interface PlannedFile {
  /** Name inside the instance directory. */
  readonly name: string;
  readonly content: string;
  readonly mode: number;
}

/** A file outside the instance directory, replaced as a whole. */
export interface PlannedPath {
  readonly path: string;
  readonly content: string;
  readonly mode: number;
}

export interface Owner {
  readonly uid: number;
  readonly gid: number;
}

/** A directory the proxy writes (LogDir): made when missing, given to the run-as user. */
export interface PlannedDir {
  readonly path: string;
  readonly mode: number;
  /** Absent when the installer cannot give it away (not root, or an unknown user). */
  readonly owner?: Owner;
}

export interface Plan {
  readonly answers: Answers;
  readonly instanceDir: string;
  readonly files: readonly PlannedFile[];
  /** Files of a protocol the instance no longer serves, removed if present. */
  readonly remove: readonly string[];
  /** MMPRoot's launchers (Table 13.6: bin/ImapProxy, bin/PopProxy, mmp-setup). */
  readonly launchers: readonly PlannedPath[];
  /** The conf file recording MMPRoot (/etc/netscape.mmp.conf or MMP_CONF_FILE), written last. */
  readonly conf: PlannedPath;
  readonly dirs: readonly PlannedDir[];
}

export interface PlanContext {
  readonly runtime: Runtime;
  readonly confPath: string;
  /** The run-as user's ids, when the installer may give it the log directories. */
  readonly owner?: Owner;
  /** An existing instance's directory in another spelling (instances.ts); else MMP_<name>. */
  readonly instanceDir?: string;
}

// The config files hold passwords whenever BindPass or SSLKeyPasswd is set; always 0600 keeps
// the rule simple and survives a later hand edit adding one.
const SECRET_MODE = 0o600;
const SCRIPT_MODE = 0o755;
const PUBLIC_MODE = 0o644;
// Log records name users and addresses: the run-as user's, and no one else's.
const LOG_DIR_MODE = 0o750;

export function planInstance(answers: Answers, ctx: PlanContext): Plan {
  const dir = ctx.instanceDir ?? instanceDir(answers.root, answers.instance);
  const files: PlannedFile[] = [];
  const dirs: PlannedDir[] = [];
  for (const p of answers.services) {
    const logDirName = INSTALLER_PARAMETERS.logDir;
    const logDirText = answers.values[p][logDirName] ?? findSpec(logDirName).defaults[p] ?? '.';
    // The proxy runs in the instance directory: a relative LogDir is there.
    const logDir = isAbsolute(logDirText) ? logDirText : resolve(dir, logDirText);
    if (logDir !== dir && !dirs.some((d) => d.path === logDir))
      dirs.push({
        path: logDir,
        mode: LOG_DIR_MODE,
        ...(ctx.owner !== undefined ? { owner: ctx.owner } : {}),
      });
    const s: ScriptInput = {
      protocol: p,
      instance: answers.instance,
      root: answers.root,
      instanceDir: dir,
      logDir,
    };
    files.push(
      {
        name: configFileName(p),
        // The installer's "user to run as" is the proxy's RunAsUser (privileges.ts).
        content: writeConfigFile(
          p,
          { ...answers.values[p], [INSTALLER_PARAMETERS.runAsUser]: answers.user },
          {
            header: [
              `${configFileName(p)}: ${PROTOCOL_LABEL[p]} multiplexor, instance ${answers.instance}.`,
              `Written by mmp-setup; read by the proxy (${scriptName(p)} runs it with -f on this file).`,
              `Holds passwords: keep it mode 0600. Change it with: mmp-setup --modify ${answers.instance}`,
            ].join('\n'),
          },
        ),
        mode: SECRET_MODE,
      },
      { name: scriptName(p), content: startScript(s), mode: SCRIPT_MODE },
      { name: unitName(answers.instance, p), content: systemdUnit(s), mode: PUBLIC_MODE },
    );
  }
  const remove = PROTOCOLS.filter((p) => !answers.services.includes(p)).flatMap((p) => [
    configFileName(p),
    scriptName(p),
    unitName(answers.instance, p),
  ]);
  return {
    answers,
    instanceDir: dir,
    files,
    remove,
    launchers: launchers(answers.root, ctx.runtime).map(([path, content]) => ({
      path,
      content,
      mode: SCRIPT_MODE,
    })),
    conf: { path: ctx.confPath, content: writeMmpConf(answers.root), mode: PUBLIC_MODE },
    dirs,
  };
}
