/**
 * One configuration from four sources, in the guide's order of precedence: command line, then
 * environment variables, then the instance's config file, then defaults. Every value is parsed
 * by its kind and every error names where the value came from.
 */
import { type CommandLine, parseCommandLine, usageText } from './commandLine.js';
import {
  type ConfigEntry,
  DEFAULT_MMP_CONF_FILE,
  DEFAULT_MMP_ROOT,
  configFileName,
  parseConfigFile,
  readMmpConf,
  writeConfigFile,
} from './configFile.js';
import {
  type ConfigValues,
  type ParamName,
  type ParameterSpec,
  allParameters,
  programName,
} from './parameters.js';
import type { ConfigProblem, Protocol, ValueSource, ValueKinds } from './types.js';
import { type Result, err, ok } from './types.js';
import { displayValue, parseValue } from './values.js';
import { type InstanceFs, locateInstance, nodeInstanceFs } from './instances.js';

export interface ResolvedConfig {
  protocol: Protocol;
  values: ConfigValues;
  sources: Record<ParamName, ValueSource>;
  /** Precisely where each value came from: `-p`, `env ListenPort`, `ImapMMP.config:4`, `default`. */
  origins: Record<ParamName, string>;
  instance?: string;
  configFile?: string;
  /** Things that work but are probably not what the operator meant. */
  warnings: ConfigProblem[];
}

export interface ResolveInput {
  protocol: Protocol;
  commandLine: CommandLine;
  env: Readonly<Record<string, string | undefined>>;
  fileEntries?: ReadonlyMap<ParamName, ConfigEntry>;
  /** Shown in messages as `fileName:line`. */
  fileName?: string;
}

type Spec = ParameterSpec & { name: ParamName };

interface Candidate {
  raw: string;
  source: ValueSource;
  where: string;
}

/** The highest-precedence raw value of one parameter, or undefined. */
function pick(spec: Spec, input: ResolveInput, warnings: ConfigProblem[]): Candidate | undefined {
  const cl = input.commandLine.values[spec.name];
  if (cl !== undefined)
    return {
      raw: cl,
      source: 'command line',
      where: input.commandLine.flags[spec.name] ?? spec.name,
    };
  const envHits = [spec.name, ...spec.aliases].filter((n) => input.env[n] !== undefined);
  const envName = envHits[0];
  if (envName !== undefined) {
    const raw = input.env[envName] ?? '';
    for (const other of envHits.slice(1)) {
      if (input.env[other] !== raw)
        warnings.push({
          where: `env ${other}`,
          message: `ignored: env ${envName} is also set and takes precedence`,
        });
    }
    return { raw, source: 'environment', where: `env ${envName}` };
  }
  const fe = input.fileEntries?.get(spec.name);
  if (fe !== undefined)
    return {
      raw: fe.raw,
      source: 'config file',
      where: `${baseName(input.fileName ?? 'config file')}:${fe.line}`,
    };
  return undefined;
}

const baseName = (p: string): string => p.slice(p.lastIndexOf('/') + 1);

export function resolveConfig(input: ResolveInput): Result<ResolvedConfig, ConfigProblem[]> {
  const { protocol } = input;
  const problems: ConfigProblem[] = [];
  const warnings: ConfigProblem[] = [];
  const values: Record<string, ValueKinds[keyof ValueKinds] | undefined> = {};
  const sources = {} as Record<ParamName, ValueSource>;
  const origins = {} as Record<ParamName, string>;

  for (const spec of allParameters()) {
    const c = pick(spec, input, warnings);
    const applies = spec.protocols.includes(protocol);
    if (c !== undefined && (!applies || spec.vdmapOnly) && c.source !== 'environment') {
      // Environment variables are shared by both proxies, so only explicit settings warn.
      warnings.push({
        where: c.where,
        message: spec.vdmapOnly
          ? `${spec.name} is meaningful only in a vdmap entry; ignored here`
          : `${spec.name} does not apply to ${programName(protocol)}; ignored`,
      });
    }
    // Defaults of the protocol; a parameter of the other protocol still gets its own default so
    // that ConfigValues is total (the proxy of this protocol never reads it).
    const fallback =
      spec.defaults[protocol] ?? Object.values(spec.defaults).find((d) => d !== undefined);
    const chosen: Candidate | undefined =
      c ??
      (fallback !== undefined ? { raw: fallback, source: 'default', where: 'default' } : undefined);
    sources[spec.name] = chosen?.source ?? 'default';
    origins[spec.name] = chosen?.where ?? 'not set';
    if (chosen === undefined) continue;
    const parsed = parseValue(spec, chosen.raw);
    if (!parsed.ok) {
      problems.push({ where: chosen.where, message: parsed.error });
      continue;
    }
    values[spec.name] = parsed.value;
  }

  if (problems.length === 0) {
    applyLdapAuth(values as unknown as ConfigValues, origins, warnings);
    crossChecks(values as unknown as ConfigValues, origins, problems, warnings);
  }
  if (problems.length > 0) return err(problems);
  const resolved: ResolvedConfig = {
    protocol,
    values: values as unknown as ConfigValues,
    sources,
    origins,
    warnings,
  };
  if (input.commandLine.instance !== undefined) resolved.instance = input.commandLine.instance;
  if (input.fileName !== undefined) resolved.configFile = input.fileName;
  return ok(resolved);
}

/**
 * The directory identity LDAPAuth (Table 13.7's answer to "Should the MMP bind to LDAP as someone
 * in particular") leaves: `no` searches anonymously whatever BindDN says; unset, BindDN decides.
 */
export function effectiveBind(v: {
  readonly BindDN?: string | undefined;
  readonly BindPass?: string | undefined;
  readonly LDAPAuth?: boolean | undefined;
}): { bindDn?: string; bindPassword?: string } {
  const dn = v.BindDN === '' ? undefined : v.BindDN;
  if (v.LDAPAuth === false || dn === undefined) return {};
  return v.BindPass === undefined ? { bindDn: dn } : { bindDn: dn, bindPassword: v.BindPass };
}

/**
 * Resolve-time normalisation, so that every reader of `values` (the proxy's settings, `-h`) sees
 * the effective bind: LDAPAuth gets its derived value, and with `no` BindDN/BindPass are removed
 * (their origin says why).
 */
function applyLdapAuth(
  v: ConfigValues,
  origins: Record<ParamName, string>,
  warnings: ConfigProblem[],
): void {
  const explicit = v.LDAPAuth !== undefined;
  const bind = effectiveBind(v);
  if (!explicit) {
    v.LDAPAuth = bind.bindDn !== undefined;
    origins.LDAPAuth = 'derived from BindDN';
    return;
  }
  if (v.LDAPAuth === true && bind.bindDn === undefined) {
    warnings.push({
      where: origins.LDAPAuth,
      message: 'LDAPAuth is yes but BindDN is not set; searching anonymously',
    });
    return;
  }
  if (v.LDAPAuth === false) {
    const unused = (['BindDN', 'BindPass'] as const).filter((n) => v[n] !== undefined);
    if (unused.length === 0) return;
    warnings.push({
      where: origins.LDAPAuth,
      message: `LDAPAuth is no: ${unused.join(' and ')} not used; searching anonymously`,
    });
    for (const n of unused) {
      v[n] = undefined;
      origins[n] = `${origins[n]}, unused: LDAPAuth is no`;
    }
  }
}

/** Rules that span parameters. */
function crossChecks(
  v: ConfigValues,
  origins: Record<ParamName, string>,
  problems: ConfigProblem[],
  warnings: ConfigProblem[],
): void {
  if (v.SSLEnable) {
    // Guide, SSLEnable: "all of the following variables must be set"; for PEM that means a
    // certificate and its key.
    for (const name of ['SSLCertFile', 'SSLKeyFile'] as const) {
      if (!v[name])
        problems.push({
          where: origins.SSLEnable,
          message: `SSLEnable is yes but ${name} is not set (a PEM file is needed)`,
        });
    }
    if (
      v.ListenPort.port === v.SSLListenPort.port &&
      (v.ListenPort.host ?? '') === (v.SSLListenPort.host ?? '')
    )
      problems.push({
        where: origins.SSLListenPort,
        message: `SSLListenPort and ListenPort are both ${v.ListenPort.port}`,
      });
  }
  if (v.BindPass && !v.BindDN)
    warnings.push({
      where: origins.BindPass,
      message: 'BindPass is set but BindDN is not; binding anonymously',
    });
  if (v.BindDN && v.BindPass === undefined)
    warnings.push({ where: origins.BindDN, message: 'BindDN is set but BindPass is not' });
  if (v.StoreAdmin && !v.StoreAdminPass)
    warnings.push({
      where: origins.StoreAdmin,
      message: 'StoreAdmin is set but StoreAdminPass is not',
    });
  if (v.SSLSecmodFile)
    warnings.push({
      where: origins.SSLSecmodFile,
      message: 'SSLSecmodFile is ignored (no PKCS#11 module database with PEM files)',
    });
}

// ---- Locating and reading the instance's config file ----

/** What cliAction needs from the file system (files, and MMPRoot's directories for `-n`);
 * tests pass a map. */
export type ConfigFs = InstanceFs;

export const nodeFs: ConfigFs = nodeInstanceFs;

export interface ConfigLocation {
  path?: string;
  /** How it was chosen, for messages: `-f`, `-n NAME`, `env MMP_CONFIG_FILE`. */
  via?: string;
}

/**
 * Which config file: `-f FILE`; else `-n NAME` → ImapMMP.config in the instance's directory under
 * MMPRoot, in any of the guide's spellings (`MMP_NAME`, `MMP-NAME`, `NAME`: `instances.ts`, as
 * mmp-setup finds it), MMPRoot read from /etc/netscape.mmp.conf (or env MMP_CONF_FILE), /opt/mmp
 * when that file does not exist; else env MMP_CONFIG_FILE; else none.
 */
export function locateConfigFile(
  protocol: Protocol,
  cl: CommandLine,
  env: Readonly<Record<string, string | undefined>>,
  fs: ConfigFs = nodeFs,
): Result<ConfigLocation, ConfigProblem[]> {
  if (cl.configFile !== undefined) return ok({ path: cl.configFile, via: '-f' });
  if (cl.instance !== undefined) {
    const confPath = env.MMP_CONF_FILE || DEFAULT_MMP_CONF_FILE;
    const conf = fs.readFile(confPath);
    if (!conf.ok) return err([{ where: confPath, message: conf.error }]);
    let root = DEFAULT_MMP_ROOT;
    if (conf.value !== null) {
      const r = readMmpConf(conf.value, confPath);
      if (!r.ok) return r;
      root = r.value;
    }
    const dir = locateInstance(root, cl.instance, fs);
    if (!dir.ok) return err([{ where: `MMPRoot ${root}`, message: dir.error }]);
    return ok({
      path: `${dir.value}/${configFileName(protocol)}`,
      via: `-n ${cl.instance}`,
    });
  }
  if (env.MMP_CONFIG_FILE) return ok({ path: env.MMP_CONFIG_FILE, via: 'env MMP_CONFIG_FILE' });
  return ok({});
}

// ---- The executables' entry point ----

export type CliAction =
  | { kind: 'run'; config: ResolvedConfig; warnings: ConfigProblem[] }
  | { kind: 'list'; text: string }
  | { kind: 'install'; text: string }
  /** `install -n NAME`: write the options into that instance (mmp-setup's writer). */
  | { kind: 'apply'; instance: string; values: Partial<Record<ParamName, string>> }
  | { kind: 'fail'; message: string; exitCode: 2 };

const fail = (problems: readonly ConfigProblem[]): CliAction => ({
  kind: 'fail',
  message: problems.map(formatProblem).join('\n'),
  exitCode: 2,
});

export const formatProblem = (p: ConfigProblem): string => `${p.where}: ${p.message}`;

/**
 * Everything an executable does before starting: parse argv, find and read the config file,
 * resolve, and decide between running, listing (`-h`), printing install lines, or failing with
 * exit code 2. Never throws for bad input.
 */
export function cliAction(
  protocol: Protocol,
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  fs: ConfigFs = nodeFs,
): CliAction {
  const parsed = parseCommandLine(protocol, argv);
  if (!parsed.ok) return fail([parsed.error]);
  const cl = parsed.value;

  if (cl.install) {
    // Only what the command line gives (guide: "prints out the configuration syntax you specify
    // on the command line"); validate it so the printed lines are usable.
    const checked = resolveConfig({ protocol, commandLine: cl, env: {} });
    if (!checked.ok) return fail(checked.error);
    // Table 13.4: "-n instance: if the instance exists the options are applied to it; if not, a
    // new one is created".
    if (cl.instance !== undefined)
      return { kind: 'apply', instance: cl.instance, values: cl.values };
    const header = [
      `${configFileName(protocol)} lines from ${programName(protocol)} install` +
        (cl.instance !== undefined ? ` for instance ${cl.instance}` : ''),
      'Paste into the instance config file (it holds passwords: keep it mode 0600).',
    ].join('\n');
    return { kind: 'install', text: writeConfigFile(protocol, cl.values, { header }) };
  }

  const loc = locateConfigFile(protocol, cl, env, fs);
  if (!loc.ok) return fail(loc.error);
  let fileEntries: ReadonlyMap<ParamName, ConfigEntry> | undefined;
  const path = loc.value.path;
  if (path !== undefined) {
    const text = fs.readFile(path);
    if (!text.ok) return fail([{ where: path, message: text.error }]);
    if (text.value === null)
      return fail([
        { where: loc.value.via ?? path, message: `config file ${path} does not exist` },
      ]);
    const entries = parseConfigFile(text.value, path);
    if (!entries.ok) return fail(entries.error);
    fileEntries = entries.value;
  }
  const input: ResolveInput = { protocol, commandLine: cl, env };
  if (fileEntries !== undefined) input.fileEntries = fileEntries;
  if (path !== undefined) input.fileName = path;
  const resolved = resolveConfig(input);
  if (!resolved.ok) return fail(resolved.error);
  if (cl.list) return { kind: 'list', text: listText(resolved.value) };
  return { kind: 'run', config: resolved.value, warnings: resolved.value.warnings };
}

/** Bare `-h`: every parameter of the protocol, its value (secrets masked) and its origin. */
export function listText(config: ResolvedConfig): string {
  const { protocol } = config;
  const params = allParameters().filter((p) => p.protocols.includes(protocol) && !p.vdmapOnly);
  const width = Math.max(...params.map((p) => p.name.length)) + 2;
  const lines = [
    `${programName(protocol)} configuration` +
      (config.configFile !== undefined ? ` (config file ${config.configFile})` : '') +
      ':',
  ];
  for (const p of params) {
    const value = (config.values as Record<string, ValueKinds[keyof ValueKinds] | undefined>)[
      p.name
    ];
    const origin = config.origins[p.name];
    lines.push(
      value === undefined
        ? `  ${p.name.padEnd(width)}(not set)${origin === 'not set' ? '' : `  [${origin}]`}`
        : `  ${p.name.padEnd(width)}${JSON.stringify(displayValue(p, value))}  [${config.origins[p.name]}]`,
    );
  }
  for (const w of config.warnings) lines.push(`warning: ${formatProblem(w)}`);
  // The guide's -h lists the configuration; the options that change it follow.
  return lines.join('\n') + '\n\n' + usageText(protocol);
}
