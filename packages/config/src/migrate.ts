/**
 * From the successors' files (`AService.cfg`, `ImapProxyAService.cfg`, `PopProxyAService.cfg`,
 * read by successors.ts) to our parameters: a plan with the values per protocol and one note per
 * parameter that has no equivalent here or a changed meaning. Every value is checked with the
 * parameter table's validators, as a value of our own files is. Pure: the caller (mmp-setup
 * --import) reads the files and writes the instance.
 *
 * Names are the iPlanet 5.x / Sun Java System 6.x / Oracle 7 MMP's (their reference manuals and
 * sample files; NOTES.md). They are matched without regard to case: hand-edited files and the
 * later "option" spellings (`searchformat`) vary.
 */
import { posix } from 'node:path';
import {
  type ConfigValues,
  type ParamName,
  editDistance,
  findParameter,
  suggestName,
} from './parameters.js';
import { parseSearchFormat } from './searchFormat.js';
import { parseShellAssignments } from './configFile.js';
import {
  type ServiceListItem,
  type SuccessorEntry,
  type SuccessorFile,
  parsePortList,
  parseServiceList,
  parseSuccessorFile,
} from './successors.js';
import type { ConfigProblem, ListenAddress, Protocol } from './types.js';
import { PROTOCOLS, type Result, err, ok } from './types.js';
import { formatValue, parseValue } from './values.js';

/** The successors' file names (their `msg_svr_base/config` directory). */
export const SUCCESSOR_FILES = {
  aservice: 'AService.cfg',
  imap: 'ImapProxyAService.cfg',
  pop3: 'PopProxyAService.cfg',
} as const;

export type MigrationNoteKind =
  /** Nothing here does this; the value is not carried over. */
  | 'no-equivalent'
  /** Carried over, or replaced, with a different meaning or form: read the message. */
  | 'changed'
  /** The operator must act before the instance serves as the old one did. */
  | 'action'
  /** Not a parameter of the successors we know (a misspelling?); not carried over. */
  | 'unknown'
  | 'info';

export interface MigrationNote {
  /** `ImapProxyAService.cfg:12`. */
  where: string;
  /** Absent: AService.cfg's shared options, or the whole import. */
  protocol?: Protocol;
  /** Their parameter name, as written. */
  name: string;
  kind: MigrationNoteKind;
  message: string;
}

export interface ProtocolPlan {
  /** ServiceList starts this service (without a ServiceList: its file was given). */
  enabled: boolean;
  /** The values the files set, as our config files hold them (writeConfigFile's input). */
  values: Partial<Record<ParamName, string>>;
  /** The same values, parsed by the parameter table. */
  parsed: Partial<ConfigValues>;
  /** Where each value came from: `ImapProxyAService.cfg:12 (SearchFormat)`. */
  origins: Partial<Record<ParamName, string>>;
}

export interface MigrationPlan {
  protocols: Partial<Record<Protocol, ProtocolPlan>>;
  notes: MigrationNote[];
}

export interface MigrationInput {
  aservice?: SuccessorFile;
  imap?: SuccessorFile;
  pop3?: SuccessorFile;
}

// ---- The name map ----

interface NoteSpec {
  kind: MigrationNoteKind;
  message: string;
}

/** What one of their values becomes: our raw value (none: dropped) and a note. */
interface Converted {
  raw?: string;
  note?: NoteSpec;
}

interface RuleContext {
  /** Another of their values for the same protocol (AService.cfg, then the service's file). */
  get(theirName: string): string | undefined;
}

export interface NameRule {
  /** Their spelling. */
  readonly theirs: string;
  /** Our parameter carrying the meaning; absent: none. */
  readonly ours?: ParamName;
  /** How the value is carried over; default: as is, then checked by our validator. */
  readonly convert?: (raw: string, ctx: RuleContext) => Converted;
  /** One note for every occurrence (no equivalent, or a changed meaning). */
  readonly note?: NoteSpec;
  /** Read by another rule (SSLPorts by ServiceList); no note of its own. */
  readonly readBy?: string;
}

const same = (theirs: string, ours: ParamName): NameRule => ({ theirs, ours });
const none = (theirs: string, message: string): NameRule => ({
  theirs,
  note: { kind: 'no-equivalent', message },
});

const NSS_RECIPE =
  'pk12util -d DIR -n NICKNAME -o server.p12, then openssl pkcs12 -in server.p12 -clcerts ' +
  '-nokeys -out server.pem and openssl pkcs12 -in server.p12 -nocerts -out server.key';

const looksPem = (path: string): boolean => /\.(?:pem|crt|cer|key)$/i.test(path.trim());

function nssCertificate(raw: string, ctx: RuleContext): Converted {
  if (looksPem(raw)) return { raw };
  const nick = ctx.get('SSLCertNicknames') ?? ctx.get('SSLCertNickname') ?? 'Server-Cert';
  const recipe = NSS_RECIPE.replace('DIR', posix.dirname(raw.trim()) || '.').replace(
    'NICKNAME',
    `'${nick}'`,
  );
  return {
    note: {
      kind: 'action',
      message:
        `'${raw}' is an NSS certificate database; mmp reads PEM files. Export with ${recipe}; ` +
        'set SSLCertFile to server.pem and SSLKeyFile to server.key (README, "TLS")',
    },
  };
}

function nssKey(raw: string): Converted {
  if (looksPem(raw)) return { raw };
  return {
    note: {
      kind: 'action',
      message: `'${raw}' is the NSS key database; the export described for SSLCertFile gives server.key, the PEM key SSLKeyFile names`,
    },
  };
}

/**
 * LdapUrl: several URLs are the failover list already. Netscape's LDAP SDK also wrote several
 * hosts in one URL (`ldap://h1:389 h2:389/o=base`); each becomes its own URL. A `?attrs?scope?
 * filter` part is dropped: UidSearch and BaseDN's subtree decide the search here.
 */
function convertLdapUrl(raw: string): Converted {
  const groups: { scheme: string; hosts: string[]; base?: string }[] = [];
  let dropped = false;
  for (const token of raw.split(/\s+/).filter((t) => t !== '')) {
    const m = /^(ldaps?):\/\/(.*)$/i.exec(token);
    if (m !== null) groups.push({ scheme: (m[1] ?? 'ldap').toLowerCase(), hosts: [] });
    const group = groups[groups.length - 1];
    if (group === undefined) return { raw };
    let rest = m !== null ? (m[2] ?? '') : token;
    const q = rest.indexOf('?');
    if (q >= 0) {
      dropped = dropped || rest.slice(q).replace(/\?+$/, '') !== '';
      rest = rest.slice(0, q);
    }
    const slash = rest.indexOf('/');
    group.hosts.push(slash < 0 ? rest : rest.slice(0, slash));
    if (slash >= 0) group.base = rest.slice(slash + 1);
  }
  const urls = groups.flatMap((g) =>
    g.hosts.map((h) => `${g.scheme}://${h}${g.base === undefined ? '' : `/${g.base}`}`),
  );
  const out: Converted = { raw: urls.join(' ') };
  if (dropped)
    out.note = {
      kind: 'changed',
      message:
        'the ?attributes?scope?filter part of the URL is dropped: UidSearch and a subtree search under the base DN find the user',
    };
  return out;
}

/** Their SearchFormat was also written without the parentheses RFC 4515 requires. */
function convertSearchFormat(raw: string): Converted {
  const v = raw.trim();
  if (parseSearchFormat(v).ok || !parseSearchFormat(`(${v})`).ok) return { raw: v };
  return {
    raw: `(${v})`,
    note: { kind: 'changed', message: `written as (${v}): a filter is parenthesised (RFC 4515)` },
  };
}

/** The MMP's cipher names were NSS's; ours are OpenSSL's. Only `all` means the same. */
function convertCiphers(raw: string): Converted {
  if (raw.trim().toLowerCase() === 'all') return { raw: 'all' };
  return {
    note: {
      kind: 'changed',
      message: `'${raw}' names NSS ciphers; mmp takes an OpenSSL list and keeps 'all' (Node's TLS 1.2+ defaults) until SSLCipherSpecs is set`,
    },
  };
}

const LIMITS_NOTE =
  "mmp's own limits before login, per client address and in total, replace it (README, 'Limits before login')";

/**
 * Every name of theirs we know, in the order of their reference tables. Names shared with us
 * are listed too, so that this table is the whole answer to "what becomes of my file".
 */
export const SUCCESSOR_NAME_RULES: readonly NameRule[] = [
  { theirs: 'ServiceList', readBy: 'ServiceList' },
  same('LogDir', 'LogDir'),
  same('LogLevel', 'LogLevel'),
  {
    theirs: 'LdapUrl',
    ours: 'LdapUrl',
    convert: convertLdapUrl,
  },
  same('BindDN', 'BindDN'),
  same('BindPass', 'BindPass'),
  same('BindPassword', 'BindPass'),
  same('BacksidePort', 'BacksidePort'),
  {
    theirs: 'Timeout',
    note: {
      kind: 'changed',
      message:
        "their Timeout limited every idle session; mmp's Timeout is the idle limit before login (default 60 s) and after login the store's own idle timeout applies: not carried over",
    },
  },
  same('Capability', 'Capability'),
  same('Banner', 'Banner'),
  { theirs: 'SearchFormat', ours: 'UidSearch', convert: convertSearchFormat },
  none(
    'DomainSearchFormat',
    'hosted-domain (DC tree) lookups are not supported; UidSearch (%U, %V) finds users of every domain',
  ),
  same('SSLEnable', 'SSLEnable'),
  { theirs: 'SSLPorts', readBy: 'ServiceList' },
  {
    theirs: 'SSLSecmodFile',
    note: { kind: 'no-equivalent', message: 'no PKCS #11 module database with PEM files' },
  },
  { theirs: 'SSLCertFile', ours: 'SSLCertFile', convert: nssCertificate },
  { theirs: 'SSLKeyFile', ours: 'SSLKeyFile', convert: nssKey },
  {
    theirs: 'SSLKeyPasswdFile',
    note: {
      kind: 'changed',
      message:
        "it held the NSS token password ('Internal (Software) Token:…'), which pk12util asks for; set SSLKeyPasswd to the passphrase of the exported server.key (none with openssl pkcs12 -nodes)",
    },
  },
  { theirs: 'SSLCipherSpecs', ours: 'SSLCipherSpecs', convert: convertCiphers },
  { theirs: 'SSLCipherSecs', ours: 'SSLCipherSpecs', convert: convertCiphers },
  {
    theirs: 'SSLCertNicknames',
    note: {
      kind: 'no-equivalent',
      message:
        "an NSS nickname; the PEM file is the certificate here (the SSLCertFile export uses it as pk12util's -n)",
    },
  },
  {
    theirs: 'SSLCertNickname',
    note: {
      kind: 'no-equivalent',
      message:
        "an NSS nickname; the PEM file is the certificate here (the SSLCertFile export uses it as pk12util's -n)",
    },
  },
  none('SSLCacheDir', "TLS sessions are resumed from memory (Node's session tickets)"),
  {
    theirs: 'SSLBacksidePort',
    ours: 'SSLBacksidePort',
    // Their guides: 0 turns TLS to the stores off, as unset does here.
    convert: (raw) => (raw.trim() === '0' ? {} : { raw }),
  },
  same('VirtualDomainFile', 'VirtualDomainFile'),
  same('VirtualDomainDelim', 'VirtualDomainDelim'),
  same('CanonicalVirtualDomainDelim', 'CanonicalVirtualDomainDelim'),
  same('ServerDownAlert', 'ServerDownAlert'),
  {
    theirs: 'MailHostAttrs',
    ours: 'MailHostAttrs',
    // A space- or comma-separated list there; comma-separated here.
    convert: (raw) => ({
      raw: raw
        .split(/[\s,]+/)
        .filter((a) => a !== '')
        .join(','),
    }),
  },
  same('PreAuth', 'PreAuth'),
  none('CRAMs', 'CRAM-MD5 and APOP are not offered: a routing proxy cannot replay them'),
  none(
    'AuthCacheSize',
    'the pre-authentication cache has no size of its own; PreAuthCacheTTL sets how long a success is kept',
  ),
  same('AuthCacheTTL', 'PreAuthCacheTTL'),
  none('AuthService', 'POP-before-SMTP queries are not supported'),
  none('AuthServiceTTL', 'POP-before-SMTP queries are not supported'),
  none('AuthenticationServer', 'third-party authentication servers are not supported'),
  none('AuthenticationLdapAttributes', 'third-party authentication servers are not supported'),
  none('BGMax', LIMITS_NOTE),
  none('BGPenalty', LIMITS_NOTE),
  none('BGMaxBadness', LIMITS_NOTE),
  none('BGDecay', LIMITS_NOTE),
  none('BGLinear', LIMITS_NOTE),
  none('BGExcluded', LIMITS_NOTE),
  none('ConnLimits', LIMITS_NOTE),
  none('TCPAccess', 'no client-address access rules: filter clients with the firewall'),
  none('TCPAccessAttr', 'no per-user client-address rules'),
  none('ClientLookup', 'client host names are not looked up; logs carry addresses'),
  none(
    'ReplayFormat',
    'the login replayed to the store is the typed name, or the UidAttr value of the entry',
  ),
  same('LdapCacheSize', 'LdapCacheSize'),
  same('LdapCacheTTL', 'LdapCacheTTL'),
  none(
    'HostedDomains',
    'hosted-domain (DC tree) lookups are not supported; UidSearch and DefaultDomain cover single-tree directories',
  ),
  same('DefaultDomain', 'DefaultDomain'),
  same('CertMapFile', 'CertMapFile'),
  same('StoreAdmin', 'StoreAdmin'),
  same('StoreAdminPass', 'StoreAdminPass'),
  same('SpoofMessageFile', 'SpoofMessageFile'),
  same('RestrictPlainPasswords', 'RestrictPlainPasswords'),
  {
    theirs: 'NumThreads',
    note: {
      kind: 'changed',
      message:
        'it counted threads in one process; here NumThreads counts worker processes (0: one process): not carried over, set it to the number of cores if one is not enough',
    },
  },
  none('SmtpRelays', 'the SMTP proxy is not part of mmp'),
  none('SmtpProxyPassword', 'the SMTP proxy is not part of mmp'),
  none('EhloKeywords', 'the SMTP proxy is not part of mmp'),
];

const RULES = new Map(SUCCESSOR_NAME_RULES.map((r) => [r.theirs.toLowerCase(), r]));

/** Their rule for a name; names of ours not in the table carry over as themselves. */
function ruleFor(name: string): NameRule | undefined {
  const rule = RULES.get(name.toLowerCase());
  if (rule !== undefined) return rule;
  const spec = findParameter(name);
  if (spec === undefined || spec.vdmapOnly) return undefined;
  // An alias of ours (the guide's SSLCertName) follows the rule of the name it stands for.
  return RULES.get(spec.name.toLowerCase()) ?? { theirs: name, ours: spec.name };
}

// ---- The plan ----

interface Assignment {
  raw: string;
  where: string;
  theirs: string;
}

/**
 * Plan the import. Errors (a bad line, a value our validators refuse, a ServiceList that does not
 * parse) make the result an error listing all of them; everything else is a note.
 */
export function planMigration(input: MigrationInput): Result<MigrationPlan, ConfigProblem[]> {
  const problems: ConfigProblem[] = [];
  const notes: MigrationNote[] = [];
  const files = [input.aservice, input.imap, input.pop3].filter(
    (f): f is SuccessorFile => f !== undefined,
  );
  for (const f of files)
    for (const w of f.warnings)
      notes.push({ where: w.where, name: w.name, kind: 'info', message: w.message });
  noteOtherSections(files, notes);

  const shared = defaults(input.aservice);
  const serviceList = readServiceList(input.aservice, problems, notes);

  const protocols: Partial<Record<Protocol, ProtocolPlan>> = {};
  for (const protocol of PROTOCOLS) {
    const own = input[protocol];
    const items = serviceList?.items.filter((i) => i.kind === protocol) ?? [];
    const enabled = serviceList !== undefined ? items.length > 0 : own !== undefined;
    if (own === undefined && !enabled) continue;
    const ownEntries = defaults(own);
    if (own !== undefined)
      for (const e of ownEntries)
        if (e.name.toLowerCase() === 'servicelist')
          notes.push({
            where: `${own.fileName}:${e.line}`,
            protocol,
            name: e.name,
            kind: 'no-equivalent',
            message: `ServiceList belongs in ${SUCCESSOR_FILES.aservice}; ignored here`,
          });
    const plan = planProtocol(protocol, input.aservice, shared, own, ownEntries, notes);
    plan.enabled = enabled;
    if (serviceList !== undefined)
      applyServiceList(
        protocol,
        items,
        serviceList.where,
        plan,
        [own, input.aservice],
        notes,
        problems,
      );
    else if (enabled)
      notes.push({
        where: own?.fileName ?? SUCCESSOR_FILES.aservice,
        protocol,
        name: 'ServiceList',
        kind: 'info',
        message: `no ServiceList (${SUCCESSOR_FILES.aservice}): ListenPort and SSLListenPort keep their defaults`,
      });
    sslNotes(protocol, plan, own ?? input.aservice, notes);
    validate(plan, problems);
    protocols[protocol] = plan;
  }
  if (serviceList !== undefined) checkPortClashes(protocols, serviceList.where, problems);
  // AService.cfg's values are read for each protocol: say each of their problems once.
  if (problems.length > 0) return err(dedupeProblems(problems));
  return ok({ protocols, notes: dedupeNotes(notes) });
}

/** Parse the files' texts, then plan: the one call mmp-setup --import needs. */
export function planMigrationFromText(texts: {
  aservice?: { text: string; fileName: string };
  imap?: { text: string; fileName: string };
  pop3?: { text: string; fileName: string };
}): Result<MigrationPlan, ConfigProblem[]> {
  const input: MigrationInput = {};
  const problems: ConfigProblem[] = [];
  for (const key of ['aservice', 'imap', 'pop3'] as const) {
    const t = texts[key];
    if (t === undefined) continue;
    const parsed = parseSuccessorFile(t.text, t.fileName);
    if (parsed.ok) input[key] = parsed.value;
    else problems.push(...parsed.error);
  }
  if (problems.length > 0) return err(problems);
  return planMigration(input);
}

/** A config file's text and the name its problems and notes give it. */
export interface ConfigFileText {
  text: string;
  fileName: string;
}

/**
 * Plan the import of `ImapMMP.config` / `PopMMP.config` taken from another host. A 4.x file uses
 * our names already, with the 4.x meanings: NSS databases, NSS cipher names, NumThreads as
 * threads. The successors' rules for those names apply (SUCCESSOR_NAME_RULES); every other name
 * of ours carries over as itself. A file that sets RunAsUser, which only mmp knows (mmp-setup
 * writes it), was made for this proxy and carries over whole. A name the table does not know is
 * noted, not imported: the 4.x proxy read its configuration from the environment and never saw
 * it either. Shell syntax the reader refuses (`$HOME`) is an error with its line.
 */
export function planMigrationFromConfigFiles(
  texts: Partial<Record<Protocol, ConfigFileText>>,
): Result<MigrationPlan, ConfigProblem[]> {
  const problems: ConfigProblem[] = [];
  const notes: MigrationNote[] = [];
  const protocols: Partial<Record<Protocol, ProtocolPlan>> = {};
  for (const protocol of PROTOCOLS) {
    const t = texts[protocol];
    if (t === undefined) continue;
    const parsed = parseShellAssignments(t.text, t.fileName);
    if (!parsed.ok) {
      problems.push(...parsed.error);
      continue;
    }
    const entries: SuccessorEntry[] = parsed.value.map((a) => ({
      section: 'default',
      name: a.name,
      value: a.raw,
      line: a.line,
    }));
    const file: SuccessorFile = { fileName: t.fileName, entries, warnings: [] };
    const ours = entries.some((e) => findParameter(e.name)?.name === 'RunAsUser');
    const plan = ours
      ? carryOver(protocol, file, notes)
      : planProtocol(protocol, undefined, [], file, entries, notes);
    plan.enabled = true;
    sslNotes(protocol, plan, file, notes);
    validate(plan, problems);
    protocols[protocol] = plan;
  }
  if (problems.length > 0) return err(dedupeProblems(problems));
  return ok({ protocols, notes: dedupeNotes(notes) });
}

/** mmp's own file: every known name as it is (later lines win, as when the shell reads it). */
function carryOver(protocol: Protocol, file: SuccessorFile, notes: MigrationNote[]): ProtocolPlan {
  const plan: ProtocolPlan = { enabled: true, values: {}, parsed: {}, origins: {} };
  for (const e of file.entries) {
    const where = `${file.fileName}:${e.line}`;
    const spec = findParameter(e.name);
    if (spec === undefined || spec.vdmapOnly || !spec.protocols.includes(protocol)) {
      const hint = spec === undefined ? suggestName(e.name) : undefined;
      notes.push({
        where,
        protocol,
        name: e.name,
        kind: 'unknown',
        message:
          spec === undefined
            ? `not a parameter${hint ? ` (did you mean ${hint}?)` : ''}; not imported`
            : `does not apply to ${protocol === 'imap' ? 'IMAP' : 'POP3'}; not imported`,
      });
      continue;
    }
    plan.values[spec.name] = e.value;
    plan.origins[spec.name] = spec.name === e.name ? where : `${where} (${e.name})`;
  }
  return plan;
}

const defaults = (f: SuccessorFile | undefined): SuccessorEntry[] =>
  f?.entries.filter((e) => e.section === 'default') ?? [];

/** Sections other than `default` configured other instances there: one note per section. */
function noteOtherSections(files: readonly SuccessorFile[], notes: MigrationNote[]): void {
  for (const f of files) {
    const bySection = new Map<string, number[]>();
    for (const e of f.entries) {
      if (e.section === 'default') continue;
      bySection.set(e.section, [...(bySection.get(e.section) ?? []), e.line]);
    }
    for (const [section, lines] of bySection)
      notes.push({
        where: `${f.fileName}:${lines[0]}`,
        name: `${section}:`,
        kind: 'no-equivalent',
        message: `section '${section}' (lines ${lines.join(', ')}) is not imported: an mmp instance has one configuration; import it into another instance`,
      });
  }
}

function readServiceList(
  aservice: SuccessorFile | undefined,
  problems: ConfigProblem[],
  notes: MigrationNote[],
): { items: ServiceListItem[]; where: string } | undefined {
  if (aservice === undefined) return undefined;
  const entry = defaults(aservice)
    .filter((e) => e.name.toLowerCase() === 'servicelist')
    .pop();
  if (entry === undefined) return undefined;
  const where = `${aservice.fileName}:${entry.line}`;
  const parsed = parseServiceList(entry.value);
  if (!parsed.ok) {
    problems.push({ where, message: `ServiceList: ${parsed.error}` });
    return undefined;
  }
  for (const item of parsed.value) {
    if (item.kind === 'smtp')
      notes.push({
        where,
        name: 'ServiceList',
        kind: 'no-equivalent',
        message: `${item.service}: the SMTP proxy is not part of mmp`,
      });
    else if (item.kind === 'other')
      notes.push({
        where,
        name: 'ServiceList',
        kind: 'unknown',
        message: `${item.service}: not an IMAP or POP proxy service; not imported`,
      });
  }
  return { items: parsed.value, where };
}

function planProtocol(
  protocol: Protocol,
  aservice: SuccessorFile | undefined,
  shared: readonly SuccessorEntry[],
  own: SuccessorFile | undefined,
  ownEntries: readonly SuccessorEntry[],
  notes: MigrationNote[],
): ProtocolPlan {
  const lookup = new Map<string, string>();
  for (const e of [...shared, ...ownEntries]) lookup.set(e.name.toLowerCase(), e.value);
  const ctx: RuleContext = { get: (n) => lookup.get(n.toLowerCase()) };
  const assigned = new Map<ParamName, Assignment>();

  const read = (file: SuccessorFile, entries: readonly SuccessorEntry[], isShared: boolean) => {
    const seen = new Map<string, number>();
    for (const e of entries) {
      const where = `${file.fileName}:${e.line}`;
      const note = (kind: MigrationNoteKind, message: string): void => {
        const n: MigrationNote = { where, name: e.name, kind, message };
        if (!isShared) n.protocol = protocol;
        notes.push(n);
      };
      const key = e.name.toLowerCase();
      const rule = ruleFor(e.name);
      if (rule === undefined) {
        const hint = suggestTheirs(e.name);
        note(
          'unknown',
          `not a parameter we know${hint ? ` (did you mean ${hint}?)` : ''}; not imported`,
        );
        continue;
      }
      if (rule.readBy !== undefined) continue;
      const spec = rule.ours === undefined ? undefined : findParameter(rule.ours);
      if (spec !== undefined && !spec.protocols.includes(protocol)) {
        // AService.cfg is shared: a parameter of the other protocol there is not a mistake.
        if (!isShared)
          note(
            'no-equivalent',
            `${spec.name} does not apply to ${protocol === 'imap' ? 'IMAP' : 'POP3'}; not imported`,
          );
        continue;
      }
      const again = seen.get(key);
      seen.set(key, e.line);
      const converted: Converted = rule.convert ? rule.convert(e.value, ctx) : { raw: e.value };
      if (rule.note !== undefined) note(rule.note.kind, rule.note.message);
      if (converted.note !== undefined) note(converted.note.kind, converted.note.message);
      if (spec === undefined || converted.raw === undefined) {
        if (spec !== undefined) assigned.delete(spec.name);
        continue;
      }
      const prev = assigned.get(spec.name);
      let raw = converted.raw;
      if (again !== undefined && spec.name === 'LdapUrl' && prev !== undefined) {
        // Several LdapUrl lines: one failover list, in file order.
        raw = `${prev.raw} ${raw}`;
        note('info', `joined with line ${again}: the URLs are tried in order (failover)`);
      } else if (again !== undefined) {
        note('info', `also set at line ${again}; this later line wins`);
      }
      assigned.set(spec.name, { raw, where, theirs: e.name });
    }
  };
  if (aservice !== undefined) read(aservice, shared, true);
  if (own !== undefined) read(own, ownEntries, false);

  const plan: ProtocolPlan = { enabled: false, values: {}, parsed: {}, origins: {} };
  for (const [name, a] of assigned) {
    plan.values[name] = a.raw;
    plan.origins[name] = a.theirs === name ? a.where : `${a.where} (${a.theirs})`;
  }
  return plan;
}

function suggestTheirs(name: string): string | undefined {
  const ours = suggestName(name);
  const l = name.toLowerCase();
  let best: { n: string; d: number } | undefined;
  for (const r of SUCCESSOR_NAME_RULES) {
    const d = editDistance(l, r.theirs.toLowerCase());
    if (best === undefined || d < best.d) best = { n: r.theirs, d };
  }
  if (best !== undefined && best.d <= Math.max(2, Math.floor(name.length / 3))) return best.n;
  return ours;
}

/** The implicit-TLS port of each protocol (RFC 8314), when SSLPorts does not say. */
const TLS_PORT: Record<Protocol, number> = { imap: 993, pop3: 995 };

const sameAddress = (a: ListenAddress, b: ListenAddress): boolean =>
  a.port === b.port && (a.host === undefined || b.host === undefined || a.host === b.host);

/**
 * ServiceList's ports become ListenPort (plain, STARTTLS) and SSLListenPort (implicit TLS).
 * SSLPorts says which are TLS; without it, the protocol's TLS port (993/995), else the second
 * port (the guides' "add |995 after the 110").
 */
function applyServiceList(
  protocol: Protocol,
  items: readonly ServiceListItem[],
  where: string,
  plan: ProtocolPlan,
  sslFiles: readonly (SuccessorFile | undefined)[],
  notes: MigrationNote[],
  problems: ConfigProblem[],
): void {
  const ports = items.flatMap((i) => i.ports);
  if (items.length === 0) return;
  const note = (kind: MigrationNoteKind, message: string): void => {
    notes.push({ where, protocol, name: 'ServiceList', kind, message });
  };
  if (ports.length === 0) {
    note('info', 'no ports given: ListenPort and SSLListenPort keep their defaults');
    return;
  }
  // SSLPorts of the service's own file, else of AService.cfg.
  const sslFile = sslFiles.find((f) =>
    defaults(f).some((e) => e.name.toLowerCase() === 'sslports'),
  );
  const sslEntry = defaults(sslFile)
    .filter((e) => e.name.toLowerCase() === 'sslports')
    .pop();
  let isTls: (p: ListenAddress, index: number) => boolean;
  if (sslEntry !== undefined && sslFile !== undefined) {
    const list = parsePortList(sslEntry.value);
    if (!list.ok) {
      problems.push({
        where: `${sslFile.fileName}:${sslEntry.line}`,
        message: `SSLPorts: ${list.error}`,
      });
      return;
    }
    isTls = (p) => list.value.some((s) => sameAddress(s, p));
  } else {
    const standard = ports.some((p) => p.port === TLS_PORT[protocol]);
    isTls = (p, index) => (standard ? p.port === TLS_PORT[protocol] : index === 1);
  }
  const plain = ports.filter((p, i) => !isTls(p, i));
  const tls = ports.filter((p, i) => isTls(p, i));
  const listen = findParameter('ListenPort');
  const sslListen = findParameter('SSLListenPort');
  if (listen === undefined || sslListen === undefined) return;
  const [firstPlain, ...morePlain] = plain;
  const [firstTls, ...moreTls] = tls;
  if (firstPlain !== undefined) {
    plan.values.ListenPort = formatValue(listen, firstPlain);
    plan.origins.ListenPort = `${where} (ServiceList)`;
  } else {
    note(
      'action',
      `no plain port: mmp always listens on ListenPort (default ${listen.defaults[protocol] ?? ''}), offering STARTTLS when SSLEnable is yes; set RestrictPlainPasswords yes to refuse passwords there before TLS`,
    );
  }
  if (firstTls !== undefined) {
    plan.values.SSLListenPort = formatValue(sslListen, firstTls);
    plan.origins.SSLListenPort = `${where} (ServiceList${sslEntry ? ', SSLPorts' : ''})`;
  }
  const extra = [...morePlain, ...moreTls].map((p) => formatValue(listen, p));
  if (extra.length > 0)
    note(
      'no-equivalent',
      `port(s) ${extra.join(', ')} not imported: an instance listens on one plain and one TLS address per protocol (use another instance for more)`,
    );
}

function sslNotes(
  protocol: Protocol,
  plan: ProtocolPlan,
  file: SuccessorFile | undefined,
  notes: MigrationNote[],
): void {
  const spec = findParameter('SSLEnable');
  const raw = plan.values.SSLEnable;
  const parsed = spec === undefined || raw === undefined ? undefined : parseValue(spec, raw);
  const on = parsed?.ok === true && parsed.value === true;
  const where = plan.origins.SSLEnable?.split(' ')[0] ?? file?.fileName ?? SUCCESSOR_FILES.aservice;
  if (!on && plan.values.SSLListenPort !== undefined)
    notes.push({
      where: plan.origins.SSLListenPort?.split(' ')[0] ?? where,
      protocol,
      name: 'ServiceList',
      kind: 'changed',
      message: `SSLEnable is not yes: SSLListenPort ${plan.values.SSLListenPort} is recorded but not served until it is`,
    });
  if (on && (plan.values.SSLCertFile === undefined || plan.values.SSLKeyFile === undefined))
    notes.push({
      where,
      protocol,
      name: 'SSLEnable',
      kind: 'action',
      message:
        'SSLEnable is yes: set SSLCertFile and SSLKeyFile to PEM files before starting (the proxy refuses to start without them)',
    });
}

function validate(plan: ProtocolPlan, problems: ConfigProblem[]): void {
  for (const [name, raw] of Object.entries(plan.values) as [ParamName, string][]) {
    const spec = findParameter(name);
    if (spec === undefined) continue;
    const parsed = parseValue(spec, raw);
    const origin = plan.origins[name] ?? name;
    if (!parsed.ok) {
      const theirs = /\(([^)]+)\)$/.exec(origin)?.[1];
      problems.push({
        where: origin.split(' ')[0] ?? origin,
        message:
          theirs !== undefined && theirs !== name ? `${theirs}: ${parsed.error}` : parsed.error,
      });
      continue;
    }
    (plan.parsed as Record<string, unknown>)[name] = parsed.value;
  }
}

function checkPortClashes(
  protocols: Partial<Record<Protocol, ProtocolPlan>>,
  where: string,
  problems: ConfigProblem[],
): void {
  const seen: { label: string; addr: ListenAddress }[] = [];
  for (const protocol of PROTOCOLS) {
    const plan = protocols[protocol];
    if (plan === undefined) continue;
    for (const name of ['ListenPort', 'SSLListenPort'] as const) {
      const addr = plan.parsed[name];
      if (addr === undefined) continue;
      const label = `${protocol === 'imap' ? 'IMAP' : 'POP3'} ${name}`;
      const clash = seen.find((s) => sameAddress(s.addr, addr));
      if (clash !== undefined)
        problems.push({
          where,
          message: `ServiceList: port ${addr.port} is both ${clash.label} and ${label}`,
        });
      seen.push({ label, addr });
    }
  }
}

function dedupeNotes(notes: readonly MigrationNote[]): MigrationNote[] {
  const seen = new Set<string>();
  return notes.filter((n) => {
    const key = `${n.where}\0${n.protocol ?? ''}\0${n.name}\0${n.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

function dedupeProblems(problems: readonly ConfigProblem[]): ConfigProblem[] {
  const seen = new Set<string>();
  return problems.filter((p) => {
    const key = `${p.where}\0${p.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
