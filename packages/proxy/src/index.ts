/** @mmp/proxy: the multiplexor runtime, for the executables and for tests. */
export { main } from './main.js';
export {
  ProxyServer,
  type SessionContext,
  type SessionHandle,
  type StartSession,
} from './server.js';
export {
  Directory,
  type DirectorySettings,
  type LookupError,
  type UserEntry,
} from './directory.js';
export { logIn, type LoginOutcome, type Principal } from './login.js';
export { startPipe, type PipeOptions, type PipeResult } from './pipe.js';
export {
  connectStore,
  StoreConversation,
  type Replay,
  type ReplayResult,
  type StoreFailure,
} from './store.js';
export { settingsFrom, type ProxySettings } from './settings.js';
export { openLogFile, silentLog, LOG, type Log } from './log.js';
export * as limits from './limits.js';
