export {
  startTestbed,
  DEAD_HOSTS,
  HANGING_HOST,
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
} from './ldap.js';
export {
  MASTER_USER,
  MASTER_PASSWORD,
  MASTER_SEPARATOR,
  type Store,
  type BacksidePorts,
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
export { processGroupMembers, findProcesses } from './process.js';
export {
  LineClient,
  imapString,
  imapLoginCommand,
  saslPlain,
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
export { reapOrphans } from './reap.js';
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
