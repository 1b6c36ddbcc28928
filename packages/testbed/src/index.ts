export {
  startTestbed,
  DEAD_HOSTS,
  HANGING_HOST,
  SCRIPTED_HOSTS,
  type Testbed,
  type TestbedOptions,
  type TestbedDescription,
  type MasterUser,
  type HostedDomain,
} from './testbed.js';
export {
  BIND_DN,
  BIND_PASSWORD,
  ROOT_DN,
  ROOT_PASSWORD,
  SCHEMA_FILE,
  buildLdif,
  directoryDns,
  ldifLine,
  type LdapServer,
  type ReplicationRole,
} from './ldap.js';
export {
  createReplicatedDirectory,
  type ReplicatedDirectory,
  type ReplicatedDirectoryOptions,
} from './replication.js';
export {
  startTokenIssuer,
  INTROSPECTION_PATH,
  TOKEN_SCOPE,
  DOVECOT_XOAUTH2_ERROR,
  DOVECOT_OAUTHBEARER_ERROR,
  type TokenIssuer,
  type IssueTokenOptions,
  type Introspection,
} from './oauth2.js';
export {
  startScriptedStore,
  SCRIPTED_BEHAVIOURS,
  GARBAGE,
  type ScriptedBehaviour,
  type ScriptedStore,
  type ScriptedStoreOptions,
} from './scripted.js';
export { mountFullTmpfs, type FullTmpfs, type FullTmpfsOptions } from './tmpfs.js';
export {
  MASTER_USER,
  MASTER_PASSWORD,
  MASTER_SEPARATOR,
  type Store,
  type BacksidePorts,
  type StoreOAuth2,
} from './dovecot.js';
export {
  BASE_DN,
  PEOPLE_DN,
  SERVICES_DN,
  VIRTUAL_DOMAIN,
  SPECIAL_PASSWORD,
  MAX_STORES,
  escapeDnValue,
  passwordFor,
  userDn,
  hostedDomainUsers,
  type HostedDomainOptions,
  type ExtraUserOptions,
  type TestUser,
  type UserKind,
  type StoreName,
} from './users.js';
export {
  BIG_MESSAGE_SIZE,
  BIG_MESSAGE_SUBJECT,
  bigMessage,
  mailboxMessages,
  markerMessage,
  markerSubject,
  secondMessage,
  type SeededMessage,
} from './messages.js';
export { type TestbedTls, type ClientCertificate } from './tls.js';
export { freePort, freePortsOnAll } from './ports.js';
export { readGreeting, canConnect, waitUntil } from './wire.js';
export {
  processGroupMembers,
  findProcesses,
  childrenOf,
  credentialsOf,
  workersOf,
} from './process.js';
export {
  LineClient,
  imapString,
  imapLoginCommand,
  saslPlain,
  saslXoauth2,
  saslOauthbearer,
  type LineClientOptions,
} from './raw.js';
export {
  checks,
  selftest,
  curl,
  imapSubject,
  pop3Subject,
  imapLoginSubject,
  pop3UserPassSubject,
  type Check,
  type SelftestReport,
} from './selftest.js';
export { type HangingHost } from './hang.js';
export { reapOrphans, mountsUnder } from './reap.js';
export {
  startHaproxy,
  parseShowStat,
  type Haproxy,
  type HaproxyOptions,
  type HaproxyListener,
  type HaproxyListenerOptions,
  type HaproxyServer,
  type HaproxyServerState,
  type ProxyProtocolVersion,
  type BalanceAlgorithm,
} from './haproxy.js';
export { privateDir, type PrivateDir } from './cleanup.js';
export { type ServerControls } from './process.js';
