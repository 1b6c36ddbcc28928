/**
 * From answers to the exact files of an instance (name, content, mode), before anything touches
 * the disk: what apply.ts writes, what the tests inspect, what the final report lists.
 */
import {
  PROTOCOLS,
  type Protocol,
  configFileName,
  instanceDir,
  writeConfigFile,
  writeMmpConf,
} from '@mmp/config';
import type { Answers } from './dialogue.js';
import { type ScriptInput, scriptName, startScript, systemdUnit, unitName } from './scripts.js';
import { PROTOCOL_LABEL } from './table.js';

export interface PlannedFile {
  /** Name inside the instance directory. */
  readonly name: string;
  readonly content: string;
  readonly mode: number;
}

export interface Plan {
  readonly answers: Answers;
  readonly instanceDir: string;
  readonly files: readonly PlannedFile[];
  /** Files of a protocol the instance no longer serves, removed if present. */
  readonly remove: readonly string[];
  /** The conf file recording MMPRoot (/etc/netscape.mmp.conf or MMP_CONF_FILE). */
  readonly conf: { readonly path: string; readonly content: string; readonly mode: number };
}

export interface PlanContext {
  /** Absolute path of node for the start scripts. */
  readonly node: string;
  readonly proxyBins: Readonly<Record<Protocol, string>>;
  readonly confPath: string;
}

// The config files hold passwords whenever BindPass or SSLKeyPasswd is set; always 0600 keeps
// the rule simple and survives a later hand edit adding one.
const SECRET_MODE = 0o600;
const SCRIPT_MODE = 0o755;
const PUBLIC_MODE = 0o644;

export function planInstance(answers: Answers, ctx: PlanContext): Plan {
  const dir = instanceDir(answers.root, answers.instance);
  const files: PlannedFile[] = [];
  for (const p of answers.services) {
    const s: ScriptInput = {
      protocol: p,
      instance: answers.instance,
      instanceDir: dir,
      user: answers.user,
      node: ctx.node,
      proxy: ctx.proxyBins[p],
    };
    files.push(
      {
        name: configFileName(p),
        content: writeConfigFile(p, answers.values[p], {
          header: [
            `${configFileName(p)}: ${PROTOCOL_LABEL[p]} multiplexor, instance ${answers.instance}.`,
            `Written by mmp-setup; sourced by ${scriptName(p)} (/bin/sh) and read by the proxy.`,
            `Holds passwords: keep it mode 0600. Change it with: mmp-setup --modify ${answers.instance}`,
          ].join('\n'),
        }),
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
    conf: { path: ctx.confPath, content: writeMmpConf(answers.root), mode: PUBLIC_MODE },
  };
}
