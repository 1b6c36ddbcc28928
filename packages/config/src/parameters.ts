/**
 * THE parameter table: the only place a parameter's name, spelling variants, type, defaults,
 * command-line flag, installer prompt and help are written (admin guide ch. 13, Tables 13.1,
 * 13.3, 13.4, 13.5 and 13.7, plus NOTES.md). Option parsing, `-h`, `install`, the installer and
 * validation all read this array; adding a parameter is adding one entry.
 */
import type { Protocol, ValueKind, ValueKinds } from './types.js';

export interface PromptSpec {
  /** The question, exactly as Table 13.7 prints it (`[IMAP4/POP3]` is filled by `promptText`). */
  readonly question: string;
  /**
   * The y/n question that guards this one ("n" keeps the default). Parameters sharing a branch
   * text (BindDN and BindPass: the guide's "LDAPAuth") are asked under a single y/n.
   */
  readonly branch?: string;
  /** Asked only when this boolean parameter was answered yes (the SSL prompts). */
  readonly dependsOn?: string;
  /** Position in the dialogue, ascending. */
  readonly order: number;
  /**
   * The boolean parameter that records the branch's answer (Table 13.7 names the bind question's
   * answer LDAPAuth): "n" writes it `no`; "y" leaves it unset (then it follows the values asked).
   */
  readonly records?: string;
  /** Not asked while this parameter is set (LdapUrl replaces LDAPHost and BaseDN). */
  readonly unlessSet?: string;
}

export interface ParameterSpec {
  /** Canonical spelling (Table 13.3); names are case-sensitive (guide, note to Table 13.3). */
  readonly name: string;
  /** Other spellings the guide uses; accepted on input, never written. */
  readonly aliases: readonly string[];
  readonly kind: ValueKind;
  /** integer: smallest value; chars: shortest length. */
  readonly min?: number;
  /** integer: largest value; chars: longest length. */
  readonly max?: number;
  /** choice: the accepted values, as written; list: the accepted items (absent: any). */
  readonly choices?: readonly string[];
  /** Textual default per protocol, parsed like user input. Absent: no default (unset). */
  readonly defaults: Partial<Record<Protocol, string>>;
  /** Table 13.4 command-line flag. */
  readonly flag?: string;
  /** The flag takes no argument and sets this value (`-pre` sets PreAuth, `-s` sets SSLEnable). */
  readonly flagValue?: string;
  /** Set by the n-th (0-based) argument following another flag (`-s`, Table 13.5 order). */
  readonly positional?: { readonly flag: string; readonly index: number };
  /** Placeholder for the flag's argument in usage text. */
  readonly metavar?: string;
  readonly prompt?: PromptSpec;
  /**
   * A path that must name an existing file or directory when it is configured (the installer
   * checks it). Unset on a path parameter: a file the operator points to when it has no default,
   * a place the proxy copes with being absent when it has one (LogDir).
   */
  readonly mustExist?: 'file' | 'dir';
  readonly protocols: readonly Protocol[];
  /** May be set in a vdmap entry (Table 13.1). */
  readonly virtualDomain: boolean;
  /** Meaningful only in a vdmap entry (VDomain). */
  readonly vdmapOnly?: boolean;
  /** Never printed: shown as `******`. */
  readonly secret: boolean;
  readonly help: string;
  /** Introduced by a later release (iPlanet/Sun/Oracle) or by us, not the 4.x guide. */
  readonly since?: 'later';
}

const BOTH = ['imap', 'pop3'] as const;
const IMAP = ['imap'] as const;
const POP3 = ['pop3'] as const;

const LDAP_AUTH = 'Should the MMP bind to LDAP as someone in particular (y/n):';
const SSL_FLAG = '-s';
// Installer questions the guide does not print (it stops at the first SSL prompt), in its style.
const CERT_LOGIN = 'Should the MMP accept certificate-based client authentication (y/n):';
const OAUTH2 = 'Do your stores accept OAuth2 bearer tokens (Dovecot: an oauth2 passdb) (y/n):';
// LdapUrl (the successors' failover list, `mmp-setup --import`) replaces LDAPHost and BaseDN.
const UNLESS_LDAP_URL = 'LdapUrl';

export const PARAMETERS = [
  {
    name: 'LDAPHost',
    aliases: [],
    kind: 'hostList',
    defaults: { imap: 'localhost:389', pop3: 'localhost:389' },
    flag: '-h',
    metavar: 'host[:port]',
    prompt: { question: 'LDAP Host:', order: 10, unlessSet: UNLESS_LDAP_URL },
    protocols: BOTH,
    virtualDomain: false,
    secret: false,
    help: 'Directory server(s) holding the users, tried in order (space-separated for failover)',
  },
  {
    name: 'BaseDN',
    aliases: [],
    kind: 'dn',
    defaults: { imap: 'o=mcom.com', pop3: 'o=mcom.com' },
    flag: '-b',
    metavar: 'basedn',
    prompt: { question: 'Base DN:', order: 20, unlessSet: UNLESS_LDAP_URL },
    protocols: BOTH,
    virtualDomain: false,
    secret: false,
    help: 'Where user searches start in the directory',
  },
  {
    name: 'LogDir',
    aliases: [],
    kind: 'path',
    defaults: { imap: '.', pop3: '.' },
    flag: '-o',
    metavar: 'dir',
    prompt: { question: '[IMAP4/POP3] MMP LogDir:', order: 30 },
    protocols: BOTH,
    virtualDomain: false,
    secret: false,
    help: 'Directory for the MMP_yyyymmdd.log files (no log if it does not exist)',
  },
  {
    name: 'LogLevel',
    aliases: [],
    kind: 'integer',
    min: 0,
    max: 10,
    defaults: { imap: '1', pop3: '1' },
    flag: '-v',
    metavar: 'num',
    prompt: { question: 'Log Level:', order: 40 },
    protocols: BOTH,
    virtualDomain: false,
    secret: false,
    help: 'Log verbosity, 0 (quiet) to 10 (everything)',
  },
  {
    name: 'LogFormat',
    aliases: [],
    kind: 'choice',
    choices: ['text', 'json'],
    // Decision: the guide's own record shape (`yyyymmdd hhmmss (sid 0x…) message`), which people
    // read and the guide specifies for PreAuth; JSON lines, for log shippers, on request.
    defaults: { imap: 'text', pop3: 'text' },
    protocols: BOTH,
    virtualDomain: false,
    secret: false,
    since: 'later',
    help: 'Log records as text lines "yyyymmdd hhmmss (sid 0x…) message key=value…" or json',
  },
  {
    name: 'BindDN',
    aliases: [],
    kind: 'dn',
    defaults: {},
    flag: '-D',
    metavar: 'binddn',
    prompt: {
      question: 'What user should the MMP authenticate as:',
      branch: LDAP_AUTH,
      records: 'LDAPAuth',
      order: 50,
    },
    protocols: BOTH,
    virtualDomain: true,
    secret: false,
    help: 'DN to bind to the directory as (unset: anonymous)',
  },
  {
    name: 'BindPass',
    aliases: ['BindPassword'],
    kind: 'string',
    defaults: {},
    flag: '-w',
    metavar: 'pass',
    prompt: {
      question: 'What\'s the password for "BindDN":',
      branch: LDAP_AUTH,
      records: 'LDAPAuth',
      order: 51,
    },
    protocols: BOTH,
    virtualDomain: true,
    secret: true,
    help: 'Password for BindDN',
  },
  {
    name: 'NumThreads',
    aliases: [],
    kind: 'integer',
    min: 0,
    max: 64,
    defaults: { imap: '0', pop3: '0' },
    flag: '-t',
    metavar: 'num',
    prompt: { question: 'Number of Threads:', order: 60 },
    protocols: BOTH,
    virtualDomain: false,
    secret: false,
    help: 'Worker processes to spread sessions over (0: the main process does all the work)',
  },
  {
    name: 'ListenPort',
    aliases: [],
    kind: 'listen',
    defaults: { imap: '143', pop3: '110' },
    flag: '-p',
    metavar: '[IP:]port',
    prompt: {
      question: 'Which port:',
      branch: 'Should the MMP listen on a non-default port (y/n):',
      order: 70,
    },
    protocols: BOTH,
    virtualDomain: false,
    secret: false,
    help: 'Where to accept client connections (IPv6 as [::1]:143)',
  },
  {
    name: 'BacksidePort',
    aliases: [],
    kind: 'port',
    defaults: { imap: '143', pop3: '110' },
    flag: '-c',
    metavar: 'port',
    prompt: {
      question: 'Which port:',
      branch: 'Do your main [IMAP4/POP3] servers listen on non-default ports (y/n):',
      order: 80,
    },
    protocols: BOTH,
    virtualDomain: false,
    secret: false,
    help: 'Port of the message stores, when the mail host value carries none',
  },
  {
    name: 'Capability',
    aliases: [],
    kind: 'string',
    // Decision: not the guide's "IMAP4 IMAP4rev1 AUTH=LOGIN AUTH=PLAIN". We answer ID ourselves
    // (RFC 2971), accept non-synchronising literals (RFC 7888) and an initial response
    // (RFC 4959), and drop the obsolete "IMAP4" (RFC 1730). STARTTLS and LOGINDISABLED are added
    // by the proxy per connection (RFC 3501 6.2.1, RFC 9051 6.2.1), never written here.
    defaults: { imap: 'IMAP4rev1 LITERAL+ SASL-IR ID AUTH=PLAIN AUTH=LOGIN' },
    flag: '-x',
    metavar: 'str',
    prompt: {
      question: 'Please type in the new CAPABILITY, and hit return.',
      branch: "Would you like to override the IMAP4 MMP's CAPABILITY response (y/n):",
      order: 90,
    },
    protocols: IMAP,
    virtualDomain: false,
    secret: false,
    help: 'CAPABILITY list announced before login',
  },
  {
    name: 'Banner',
    aliases: [],
    kind: 'string',
    defaults: {
      imap: 'Netscape Messaging Multiplexor ready',
      pop3: 'Netscape Messaging Multiplexor ready',
    },
    flag: '-ba',
    metavar: 'str',
    prompt: {
      question: 'Please type in the new banner, and hit return.',
      branch: "Would you like to override the MMP's banner (y/n):",
      order: 100,
    },
    protocols: BOTH,
    virtualDomain: false,
    secret: false,
    help: 'Greeting text after * OK / +OK',
  },
  {
    name: 'UidSearch',
    // SearchFormat: the same parameter in iPlanet 5 to Oracle 7 (NOTES.md), so migrated files and
    // habits work; always written as UidSearch.
    aliases: ['SearchFormat'],
    kind: 'searchFormat',
    defaults: { imap: '(uid=%s)', pop3: '(uid=%s)' },
    flag: '-us',
    metavar: 'format',
    prompt: {
      question: 'Please type in the new search string, and hit return.',
      branch: "Would you like to override the MMP's LDAP search string (y/n):",
      order: 110,
    },
    protocols: BOTH,
    virtualDomain: true,
    secret: false,
    help: 'LDAP filter finding the user; %s %U %V %o %C %S %D %% are replaced, RFC 4515-escaped',
  },
  {
    name: 'UidAttr',
    aliases: [],
    kind: 'string',
    defaults: {},
    prompt: {
      question: 'Please type in attribute, and hit return.',
      branch: 'Would you like MMP to use a particular attribute for auth replay (y/n):',
      order: 120,
    },
    protocols: BOTH,
    virtualDomain: false,
    secret: false,
    help: "Attribute of the user's entry whose value is the login replayed to the store",
  },
  {
    name: 'MailHostAttrs',
    aliases: [],
    kind: 'list',
    defaults: { imap: 'mailHost', pop3: 'mailHost' },
    flag: '-ma',
    metavar: 'attr,...',
    prompt: {
      question: 'Please type in the list of attributes, and hit return.',
      branch: 'Would you like the MMP to use a non-default attribute for the mailhost? (y/n):',
      order: 130,
    },
    protocols: BOTH,
    virtualDomain: true,
    secret: false,
    help: "Attributes naming the user's store(s), tried in order",
  },
  {
    name: 'VirtualDomainFile',
    aliases: [],
    kind: 'path',
    defaults: {},
    flag: '-vd',
    metavar: 'file',
    prompt: {
      question: 'Please type the location of the mapping file, and hit return:',
      branch: 'Should this MMP do virtual domain mapping(y/n):',
      order: 140,
    },
    protocols: BOTH,
    virtualDomain: true,
    secret: false,
    help: 'vdmap file mapping listening addresses to domains (set: virtual domains on)',
  },
  {
    name: 'VirtualDomainDelim',
    aliases: [],
    kind: 'chars',
    min: 1,
    defaults: { imap: '@', pop3: '@' },
    flag: '-vdd',
    metavar: 'chars',
    prompt: {
      question: 'Please type in the new delimiter and hit return:',
      branch: 'Do you want to specify a list of virtual domain delimiters? (y/n)',
      order: 150,
    },
    protocols: BOTH,
    virtualDomain: true,
    secret: false,
    help: 'Characters separating user and domain in a login name (last one wins)',
  },
  {
    name: 'CanonicalVirtualDomainDelim',
    aliases: [],
    kind: 'chars',
    min: 1,
    max: 1,
    defaults: { imap: '+', pop3: '+' },
    flag: '-vddc',
    metavar: 'char',
    prompt: {
      question: 'Please type in the new delimiter and hit return:',
      branch: 'Do you want to specify a canonical virtual domain delimiter? (y/n)',
      order: 160,
    },
    protocols: BOTH,
    virtualDomain: true,
    secret: false,
    help: 'Character joining user and domain towards the directory and stores (user+domain)',
  },
  {
    name: 'SpoofMessageFile',
    aliases: [],
    kind: 'path',
    defaults: {},
    flag: '-m',
    metavar: 'file',
    prompt: {
      question: 'Please type in the location of the file to be used, and hit return:',
      branch: 'Would you like to provide a "spoof" message for POP3 (y/n):',
      order: 170,
    },
    protocols: POP3,
    virtualDomain: false,
    secret: false,
    help: 'RFC 5322 message served as a one-message inbox when the store is down',
  },
  {
    name: 'ServerDownAlert',
    aliases: [],
    kind: 'string',
    // Decision: POP3 has no ALERT; the text follows "-ERR [SYS/TEMP]" (RFC 3206).
    defaults: {
      imap: 'Your IMAP server appears to be temporarily out of service.',
      pop3: 'Your POP3 server appears to be temporarily out of service.',
    },
    flag: '-a',
    metavar: 'str',
    prompt: {
      question: 'Please type in the alert string and hit return:',
      branch: 'Would you like to override the Server Down Alert for the MMP? (y/n)',
      order: 180,
    },
    protocols: BOTH,
    virtualDomain: false,
    secret: false,
    help: 'Text sent when the store cannot be reached ([ALERT] in IMAP, [SYS/TEMP] in POP3)',
  },
  {
    name: 'SSLEnable',
    aliases: [],
    kind: 'boolean',
    defaults: { imap: 'no', pop3: 'no' },
    flag: SSL_FLAG,
    flagValue: 'yes',
    prompt: { question: 'Should the [IMAP4/POP3] MMP do SSL (y/n):', order: 190 },
    protocols: BOTH,
    virtualDomain: false,
    secret: false,
    help: 'Accept TLS clients (implicit TLS on SSLListenPort, STARTTLS/STLS on ListenPort)',
  },
  {
    name: 'SSLListenPort',
    aliases: [],
    kind: 'listen',
    defaults: { imap: '993', pop3: '995' },
    flag: '-ps',
    metavar: '[IP:]port',
    prompt: {
      question: 'Which port?',
      branch: 'Should the MMP listen for SSL on a non-default port (y/n)',
      dependsOn: 'SSLEnable',
      order: 200,
    },
    protocols: BOTH,
    virtualDomain: false,
    secret: false,
    help: 'Where to accept implicit-TLS clients (RFC 8314)',
  },
  {
    name: 'SSLSecmodFile',
    aliases: [],
    kind: 'path',
    defaults: {},
    positional: { flag: SSL_FLAG, index: 0 },
    protocols: BOTH,
    virtualDomain: false,
    secret: false,
    help: 'Accepted for compatibility and ignored (no PKCS#11 module database in Node TLS)',
  },
  {
    name: 'SSLCertFile',
    aliases: [],
    kind: 'path',
    // Decision: no default. The guide's cert7.db is an NSS database; we read a PEM chain.
    defaults: {},
    positional: { flag: SSL_FLAG, index: 1 },
    prompt: {
      question: 'Please type in the location of the server certificate file (PEM), and hit return:',
      dependsOn: 'SSLEnable',
      order: 210,
    },
    protocols: BOTH,
    virtualDomain: false,
    secret: false,
    help: 'PEM file with the server certificate and its chain',
  },
  {
    name: 'SSLKeyFile',
    aliases: [],
    kind: 'path',
    defaults: {},
    positional: { flag: SSL_FLAG, index: 2 },
    prompt: {
      question: 'Please type in the location of the private key file (PEM), and hit return:',
      dependsOn: 'SSLEnable',
      order: 220,
    },
    protocols: BOTH,
    virtualDomain: false,
    secret: false,
    help: "PEM file with the server certificate's private key",
  },
  {
    name: 'SSLKeyPasswd',
    aliases: ['SSLkeypass'],
    kind: 'string',
    defaults: {},
    positional: { flag: SSL_FLAG, index: 3 },
    prompt: {
      question: "Please type in the private key's password (empty if none), and hit return:",
      dependsOn: 'SSLEnable',
      order: 230,
    },
    protocols: BOTH,
    virtualDomain: false,
    secret: true,
    help: 'Passphrase of SSLKeyFile (empty: not encrypted)',
  },
  {
    name: 'SSLCipherSpecs',
    aliases: ['SSLCipherSecs'],
    kind: 'string',
    defaults: { imap: 'all', pop3: 'all' },
    positional: { flag: SSL_FLAG, index: 4 },
    prompt: {
      question: 'Please type in the list of ciphers (colon-separated, or all), and hit return:',
      dependsOn: 'SSLEnable',
      order: 240,
    },
    protocols: BOTH,
    virtualDomain: false,
    secret: false,
    help: 'OpenSSL cipher list, colon-separated ("all": the Node.js defaults)',
  },
  {
    name: 'SSLCertNickname',
    aliases: ['SSLCertName'],
    kind: 'string',
    defaults: {},
    positional: { flag: SSL_FLAG, index: 5 },
    protocols: BOTH,
    virtualDomain: false,
    secret: false,
    help: 'Name of the server certificate (informational with PEM files; shown in logs)',
  },
  {
    name: 'SSLStartTLS',
    aliases: [],
    kind: 'boolean',
    defaults: { imap: 'yes', pop3: 'yes' },
    prompt: {
      question: 'Should the MMP offer STARTTLS (STLS for POP3) on its plain port (y/n):',
      dependsOn: 'SSLEnable',
      order: 250,
    },
    protocols: BOTH,
    virtualDomain: false,
    secret: false,
    since: 'later',
    help: 'With SSLEnable, offer STARTTLS (RFC 3501) / STLS (RFC 2595) on ListenPort',
  },
  {
    name: 'SSLBacksidePort',
    aliases: [],
    kind: 'port',
    defaults: {},
    prompt: {
      question: 'Which SSL port:',
      branch: 'Should the MMP connect to your main [IMAP4/POP3] servers with SSL (y/n):',
      order: 85,
    },
    protocols: BOTH,
    virtualDomain: false,
    secret: false,
    help: 'Connect to the stores with implicit TLS on this port (unset: plain BacksidePort)',
  },
  {
    name: 'SSLCAFile',
    aliases: [],
    kind: 'path',
    defaults: {},
    protocols: BOTH,
    virtualDomain: false,
    secret: false,
    since: 'later',
    help: "PEM CA bundle verifying the stores' certificates (unset: the system CAs)",
  },
  {
    name: 'SSLBacksideVerify',
    aliases: [],
    kind: 'boolean',
    defaults: { imap: 'yes', pop3: 'yes' },
    protocols: BOTH,
    virtualDomain: false,
    secret: false,
    since: 'later',
    help: "Verify the stores' TLS certificates and host names",
  },
  {
    name: 'SSLClientCAFile',
    aliases: [],
    kind: 'path',
    // Decision: client certificates are verified against a CA bundle the operator names (this,
    // else SSLCAFile), never the system CAs: any public CA could otherwise vouch for a user.
    defaults: {},
    prompt: {
      question:
        'Please type in the location of the CA file (PEM) that issues client certificates, and hit return:',
      branch: CERT_LOGIN,
      dependsOn: 'SSLEnable',
      order: 261,
    },
    protocols: BOTH,
    virtualDomain: false,
    secret: false,
    since: 'later',
    help: 'PEM CA bundle verifying client certificates (certificate login; unset: SSLCAFile)',
  },
  {
    name: 'CertMapFile',
    aliases: [],
    kind: 'path',
    defaults: { imap: 'certmap.conf', pop3: 'certmap.conf' },
    flag: '-cm',
    metavar: 'cmfile',
    prompt: {
      question: 'Please type in the location of the certmap.conf file, and hit return:',
      branch: CERT_LOGIN,
      dependsOn: 'SSLEnable',
      order: 260,
    },
    // The default names a file too: certificate login cannot start without it.
    mustExist: 'file',
    protocols: BOTH,
    virtualDomain: true,
    secret: false,
    help: 'certmap.conf mapping client certificates to directory entries',
  },
  {
    name: 'StoreAdmin',
    aliases: [],
    kind: 'string',
    defaults: {},
    flag: '-d',
    metavar: 'storeadmin',
    prompt: {
      question: 'What store administrator should the MMP log in to the stores as:',
      branch: CERT_LOGIN,
      dependsOn: 'SSLEnable',
      order: 262,
    },
    protocols: BOTH,
    virtualDomain: true,
    secret: false,
    help: 'Store account that logs in on behalf of certificate-authenticated users',
  },
  {
    name: 'StoreAdminPass',
    aliases: [],
    kind: 'string',
    defaults: {},
    flag: '-W',
    metavar: 'pass',
    prompt: {
      question: 'What\'s the password for "StoreAdmin":',
      branch: CERT_LOGIN,
      dependsOn: 'SSLEnable',
      order: 263,
    },
    protocols: BOTH,
    virtualDomain: true,
    secret: true,
    help: 'Password of StoreAdmin',
  },
  {
    name: 'PreAuth',
    aliases: [],
    kind: 'boolean',
    defaults: { imap: 'no', pop3: 'no' },
    flag: '-pre',
    flagValue: 'yes',
    prompt: {
      question: 'Should the MMP pre-authenticate users by binding to LDAP as them (y/n):',
      order: 135,
    },
    protocols: BOTH,
    virtualDomain: true,
    secret: false,
    help: 'Check the password by binding to the directory as the user before contacting the store',
  },
  {
    name: 'LdapUrl',
    aliases: [],
    kind: 'ldapUrl',
    defaults: {},
    protocols: BOTH,
    virtualDomain: true,
    secret: false,
    help: 'ldap[s]://HOST[:PORT]/BASEDN, space-separated for failover; overrides LDAPHost/BaseDN',
  },
  {
    name: 'VDomain',
    aliases: [],
    kind: 'string',
    defaults: {},
    protocols: BOTH,
    virtualDomain: true,
    vdmapOnly: true,
    secret: false,
    help: 'Domain appended to user names arriving on this address (vdmap only)',
  },
  {
    name: 'DefaultDomain',
    aliases: [],
    kind: 'string',
    defaults: {},
    protocols: BOTH,
    virtualDomain: true,
    secret: false,
    since: 'later',
    help: 'Domain appended to user names that carry none',
  },
  {
    name: 'RestrictPlainPasswords',
    aliases: [],
    kind: 'boolean',
    defaults: { imap: 'no', pop3: 'no' },
    protocols: BOTH,
    virtualDomain: true,
    secret: false,
    since: 'later',
    help: 'Refuse plaintext logins on connections without TLS',
  },
  {
    name: 'LdapCacheSize',
    aliases: [],
    kind: 'integer',
    min: 0,
    max: 10_000_000,
    defaults: { imap: '10000', pop3: '10000' },
    protocols: BOTH,
    virtualDomain: false,
    secret: false,
    since: 'later',
    help: 'Directory lookups kept in memory (0: no cache)',
  },
  {
    name: 'LdapCacheTTL',
    aliases: [],
    kind: 'integer',
    min: 0,
    max: 86_400,
    defaults: { imap: '900', pop3: '900' },
    protocols: BOTH,
    virtualDomain: false,
    secret: false,
    since: 'later',
    help: 'Seconds a cached directory lookup stays valid',
  },
  {
    name: 'PreAuthCacheTTL',
    aliases: [],
    kind: 'integer',
    min: 0,
    max: 86_400,
    defaults: { imap: '0', pop3: '0' },
    protocols: BOTH,
    virtualDomain: false,
    secret: false,
    since: 'later',
    help: 'Seconds a successful pre-authentication is remembered (0: never)',
  },
  {
    name: 'MaxConcurrentConnectionAttempts',
    aliases: [],
    kind: 'integer',
    min: 1,
    max: 100_000,
    defaults: { imap: '10', pop3: '10' },
    protocols: BOTH,
    virtualDomain: false,
    secret: false,
    since: 'later',
    help: 'Simultaneous connection attempts to one store (spreads reconnects after a restart)',
  },
  {
    name: 'Timeout',
    aliases: [],
    kind: 'integer',
    min: 1,
    max: 86_400,
    defaults: { imap: '60', pop3: '60' },
    protocols: BOTH,
    virtualDomain: false,
    secret: false,
    since: 'later',
    help: 'Seconds a client may stay idle before logging in',
  },
  {
    name: 'LoginTimeout',
    aliases: [],
    kind: 'integer',
    min: 1,
    max: 86_400,
    // Dovecot closes a client that has not logged in after 3 minutes, whatever it sends: a
    // client dripping NOOPs or one byte of a line must not stay unauthenticated for ever.
    defaults: { imap: '180', pop3: '180' },
    protocols: BOTH,
    virtualDomain: false,
    secret: false,
    since: 'later',
    help: 'Seconds a client has to log in, whatever it sends meanwhile',
  },
  {
    name: 'MaxClientConnections',
    aliases: [],
    kind: 'integer',
    min: 1,
    max: 1_000_000,
    // Lowered at start to what the descriptor limit allows with room kept for stores and LDAP
    // (connectionLimits.ts), so that a flood of clients can never starve the logins.
    defaults: { imap: '10000', pop3: '10000' },
    protocols: BOTH,
    virtualDomain: false,
    secret: false,
    since: 'later',
    help: 'Client connections served at once (over it, new ones are refused with a greeting)',
  },
  {
    name: 'MaxConnectionsPerAddress',
    aliases: [],
    kind: 'integer',
    min: 1,
    max: 1_000_000,
    // Generous for a NAT or an office behind one address (list it in ConnectionLimitExempt if
    // more), small enough that one host cannot take the global cap.
    defaults: { imap: '100', pop3: '100' },
    protocols: BOTH,
    virtualDomain: false,
    secret: false,
    since: 'later',
    help: 'Client connections at once from one address (see ConnectionLimitPrefix)',
  },
  {
    name: 'ConnectionLimitPrefix',
    aliases: [],
    kind: 'integer',
    min: 8,
    max: 32,
    defaults: { imap: '32', pop3: '32' },
    protocols: BOTH,
    virtualDomain: false,
    secret: false,
    since: 'later',
    help: 'IPv4 prefix length counted as one address by the per-address limits (IPv6: always /64)',
  },
  {
    name: 'ConnectionLimitExempt',
    aliases: [],
    kind: 'networks',
    defaults: {},
    protocols: BOTH,
    virtualDomain: false,
    secret: false,
    since: 'later',
    help: 'Client networks (a.b.c.d/n, x::/n) not subject to the per-address limits',
  },
  {
    name: 'AuthFailureDelay',
    aliases: [],
    kind: 'integer',
    min: 0,
    max: 60,
    // Dovecot's auth_failure_delay: 2 s, doubled per failure of the same client address.
    defaults: { imap: '2', pop3: '2' },
    protocols: BOTH,
    virtualDomain: false,
    secret: false,
    since: 'later',
    help: 'Seconds a failed login waits before its answer; doubles per failure of the address',
  },
  {
    name: 'AuthFailureDelayMax',
    aliases: [],
    kind: 'integer',
    min: 0,
    max: 3_600,
    defaults: { imap: '15', pop3: '15' },
    protocols: BOTH,
    virtualDomain: false,
    secret: false,
    since: 'later',
    help: 'Longest wait of a failed login (AuthFailureDelay doubled up to this)',
  },
  {
    name: 'StoreConnectTimeout',
    aliases: [],
    kind: 'integer',
    min: 1,
    max: 3_600,
    defaults: { imap: '10', pop3: '10' },
    protocols: BOTH,
    virtualDomain: false,
    secret: false,
    since: 'later',
    help: 'Seconds to wait for a store to connect and greet before trying the next one',
  },
  // Issue 14: failing neighbours. Each bounds a wait that a hung neighbour would make endless.
  {
    name: 'StoreReplyTimeout',
    aliases: [],
    kind: 'integer',
    min: 1,
    max: 3_600,
    // Generous: a store may check a password against a slow backend of its own.
    defaults: { imap: '30', pop3: '30' },
    protocols: BOTH,
    virtualDomain: false,
    secret: false,
    since: 'later',
    help: 'Seconds a store has for each answer of the login replay before the next one is tried',
  },
  {
    name: 'LdapTimeout',
    aliases: [],
    kind: 'integer',
    min: 1,
    max: 600,
    defaults: { imap: '5', pop3: '5' },
    protocols: BOTH,
    virtualDomain: false,
    secret: false,
    since: 'later',
    help: 'Seconds the directory has to connect and to answer one bind or search',
  },
  {
    name: 'LdapNegativeCacheTTL',
    aliases: [],
    kind: 'integer',
    min: 0,
    max: 3_600,
    // Short: a user created a moment ago must be able to log in soon; long enough that a flood of
    // unknown names costs one search per name, not one per attempt.
    defaults: { imap: '5', pop3: '5' },
    protocols: BOTH,
    virtualDomain: false,
    secret: false,
    since: 'later',
    help: 'Seconds an unknown user name is remembered as unknown (0: never)',
  },
  {
    name: 'ForwardClientAddress',
    aliases: [],
    kind: 'boolean',
    // Off by default: it costs a round trip per IMAP login (and a CAPA per POP3 store), and only
    // a store that trusts the proxy's address (Dovecot login_trusted_networks) believes it.
    defaults: { imap: 'no', pop3: 'no' },
    protocols: BOTH,
    virtualDomain: false,
    secret: false,
    since: 'later',
    help: "Tell the store the client's address (IMAP ID x-originating-ip, POP3 XCLIENT)",
  },
  {
    name: 'RunAsUser',
    aliases: [],
    kind: 'string',
    // No default: a proxy started as root must be told whom to serve clients as (mmp-setup
    // writes the installer's "user to run as" answer here); `root` is the explicit opt-in.
    defaults: {},
    metavar: 'user',
    protocols: BOTH,
    virtualDomain: false,
    secret: false,
    since: 'later',
    help: 'User the proxy serves clients as when started by root (it listens and reads its files first)',
  },
  {
    name: 'LDAPAuth',
    aliases: [],
    kind: 'boolean',
    // Table 13.7 names the y/n answer to "Should the MMP bind to LDAP as someone in particular"
    // LDAPAuth. No static default: unset, it follows BindDN (yes when BindDN is set); `no` searches
    // anonymously whatever BindDN says (resolve.ts, effectiveBind).
    defaults: {},
    protocols: BOTH,
    virtualDomain: false,
    secret: false,
    help: 'Bind to the directory as BindDN (no: search anonymously; unset: yes when BindDN is set)',
  },
  // Issue 17: certificates required on chosen listeners, and OAuth2 passed through to the stores.
  {
    name: 'SSLRequireClientCert',
    aliases: [],
    kind: 'choice',
    choices: ['no', 'implicit', 'all'],
    // Decision: off by default, as the guide's certificate login only requests a certificate;
    // `implicit` is nginx's `ssl_verify_client on` for SSLListenPort (and each vdmap TLS address);
    // `all` also refuses STARTTLS/STLS handshakes without one and any login before TLS. A vdmap
    // entry sets it for the listeners of its address alone (the handshake is chosen by the local
    // address, `tls/listener.ts`), so a certificate can be required on chosen listeners only.
    defaults: { imap: 'no', pop3: 'no' },
    prompt: {
      question:
        'Should the MMP require a client certificate (no; implicit: on the SSL port; all: STARTTLS too):',
      branch: CERT_LOGIN,
      dependsOn: 'SSLEnable',
      order: 264,
    },
    protocols: BOTH,
    virtualDomain: true,
    secret: false,
    since: 'later',
    help: 'Require a client certificate from SSLClientCAFile: no, implicit (SSLListenPort), all (STARTTLS too)',
  },
  {
    name: 'OAuth2Mechanisms',
    aliases: [],
    kind: 'list',
    choices: ['XOAUTH2', 'OAUTHBEARER'],
    // No default: the proxy cannot check a bearer token, so these are offered only when the
    // operator says the stores take them (Dovecot: an oauth2 passdb, auth_mechanisms).
    defaults: {},
    prompt: {
      question:
        'Which OAuth2 mechanisms should the MMP pass through to the stores (XOAUTH2,OAUTHBEARER):',
      branch: OAUTH2,
      order: 136,
    },
    protocols: BOTH,
    virtualDomain: true,
    secret: false,
    since: 'later',
    help: 'SASL mechanisms the stores accept with OAuth2 bearer tokens, passed through (XOAUTH2,OAUTHBEARER)',
  },
  // Issue 16: several multiplexors behind a TCP balancer (README "Many multiplexors").
  {
    name: 'ProxyProtocol',
    aliases: [],
    kind: 'list',
    choices: ['ListenPort', 'SSLListenPort'],
    // Off by default: a listener that expects a header refuses every client that connects
    // directly, so only an operator who put a balancer in front turns it on, per listener (and
    // per vdmap address: a vdmap entry's value holds for connections to its address).
    defaults: {},
    protocols: BOTH,
    virtualDomain: true,
    secret: false,
    since: 'later',
    help: 'Listeners whose connections start with a PROXY protocol header (v1 or v2) from a balancer: ListenPort,SSLListenPort',
  },
  {
    name: 'ProxyProtocolTrustedNetworks',
    aliases: [],
    kind: 'networks',
    // No default: whoever may send the header decides every client address we log and forward,
    // so the operator names the balancers; with ProxyProtocol set and none named, the proxy
    // refuses to start.
    defaults: {},
    protocols: BOTH,
    virtualDomain: false,
    secret: false,
    since: 'later',
    help: 'Balancers allowed to connect to a ProxyProtocol listener (e.g. 10.0.0.0/8, 192.0.2.7); others are refused',
  },
  // Issue 16: watching it run.
  {
    name: 'MetricsListen',
    aliases: [],
    kind: 'listen',
    // Off by default: an HTTP listener is one more open port. A bare port binds 127.0.0.1 only
    // (settings.ts): what it shows (stores, directory hosts, errors) is for the operator's
    // Prometheus and balancer, not the Internet; `0.0.0.0:9143` opens it on purpose.
    defaults: {},
    metavar: '[IP:]port',
    protocols: BOTH,
    virtualDomain: false,
    secret: false,
    since: 'later',
    help: 'Where to serve Prometheus /metrics, /healthz and the status page (a bare port: 127.0.0.1; unset: off)',
  },
] as const satisfies readonly ParameterSpec[];

type Spec = (typeof PARAMETERS)[number];
export type ParamName = Spec['name'];
type SpecNamed<N extends ParamName> = Extract<Spec, { name: N }>;

/** The typed value of parameter N. */
export type ParamValue<N extends ParamName> = ValueKinds[SpecNamed<N>['kind']];

/** True when every protocol the parameter applies to has a default: it always has a value. */
type AlwaysSet<S> = S extends { protocols: readonly (infer P)[]; defaults: infer D }
  ? [Exclude<P, keyof D>] extends [never]
    ? true
    : false
  : false;

type RequiredName = {
  [N in ParamName]: AlwaysSet<SpecNamed<N>> extends true ? N : never;
}[ParamName];
type OptionalName = Exclude<ParamName, RequiredName>;

/** A complete configuration; parameters without a default may be unset. */
export type ConfigValues = { [N in RequiredName]: ParamValue<N> } & {
  [N in OptionalName]?: ParamValue<N> | undefined;
};

/**
 * Parameters the installer gives a part of its own (mmp-setup): RunAsUser holds its "user to run
 * as" answer, and a new instance's LogDir defaults to a directory it makes for that user.
 */
export const INSTALLER_PARAMETERS = {
  runAsUser: 'RunAsUser',
  logDir: 'LogDir',
} as const satisfies Record<string, ParamName>;

const byName = new Map<string, ParameterSpec>();
for (const spec of PARAMETERS as readonly ParameterSpec[]) {
  for (const n of [spec.name, ...spec.aliases]) byName.set(n, spec);
}

/** Look a name or alias up, case-sensitively (the guide: names are case-sensitive). */
export function findParameter(
  nameOrAlias: string,
): (ParameterSpec & { name: ParamName }) | undefined {
  return byName.get(nameOrAlias) as (ParameterSpec & { name: ParamName }) | undefined;
}

/** The parameters that apply to one protocol, in table order. */
export function parametersFor(
  protocol: Protocol,
): readonly (ParameterSpec & { name: ParamName })[] {
  return (PARAMETERS as readonly (ParameterSpec & { name: ParamName })[]).filter((p) =>
    p.protocols.includes(protocol),
  );
}

export function allParameters(): readonly (ParameterSpec & { name: ParamName })[] {
  return PARAMETERS as readonly (ParameterSpec & { name: ParamName })[];
}

/** Levenshtein distance, small strings only. */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      cur[j] = Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost);
    }
    prev = cur;
  }
  return prev[b.length] ?? 0;
}

/**
 * Closest known spelling for a "did you mean" hint, compared case-insensitively so that
 * `listenport` suggests `ListenPort`. Returns the canonical name; undefined when nothing is close.
 */
export function suggestName(unknown: string): ParamName | undefined {
  const u = unknown.toLowerCase();
  let best: { name: ParamName; d: number } | undefined;
  for (const spec of allParameters()) {
    for (const n of [spec.name, ...spec.aliases]) {
      const l = n.toLowerCase();
      // A truncated name (`SSLCertNick`) is a stronger hint than an equally distant other word.
      const d = l.startsWith(u) && u.length >= 4 ? 1 : editDistance(u, l);
      if (best === undefined || d < best.d) best = { name: spec.name, d };
    }
  }
  if (best === undefined) return undefined;
  // Allow about a third of the word to be wrong, and always a case-only difference.
  return best.d <= Math.max(2, Math.floor(unknown.length / 3)) ? best.name : undefined;
}

/** Fill Table 13.7's `[IMAP4/POP3]` placeholder for one protocol. */
export function promptText(text: string, protocol: Protocol): string {
  return text.replaceAll('[IMAP4/POP3]', protocol === 'imap' ? 'IMAP4' : 'POP3');
}

/** The executable names of Table 13.6. */
export function programName(protocol: Protocol): 'ImapProxy' | 'PopProxy' {
  return protocol === 'imap' ? 'ImapProxy' : 'PopProxy';
}
