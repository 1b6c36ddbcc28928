/** A log that keeps its records in memory, for tests that check what was logged. */

import { type Log, type LogFields, type LogLevelName, silentLog } from '../log.js';

export interface LogEntry {
  level: LogLevelName;
  msg: string;
  fields: LogFields | undefined;
}

export function recordingLog(): { log: Log; records: LogEntry[] } {
  const records: LogEntry[] = [];
  const log: Log = {
    ...silentLog,
    at: (level, _phase, msg, fields) => records.push({ level, msg, fields }),
  };
  return { log, records };
}
