// Our tuning of the test bed's Dovecot stores, appended to each dovecot.conf through the test
// bed's `extraDovecotConfig` (later settings win; a repeated `service` block overrides single
// settings): many clients per long-lived imap/pop3 process, so that tens of thousands of idle
// sessions need only tens of processes and a login costs no fork; a login process per core.

export interface DovecotTuning {
  /** clients per imap / pop3 process */
  clientLimit: number;
  /** imap / pop3 processes per store */
  processLimit: number;
  /** login and imap/pop3 processes kept ready (one per core) */
  readyProcesses: number;
}

export const DEFAULT_TUNING: DovecotTuning = {
  clientLimit: 1000,
  processLimit: 100,
  readyProcesses: 2,
};

export const TUNING_MARK = '# tuned by @mmp/bench';

/** The lines appended to every store's dovecot.conf. */
export function dovecotOverrides(t: DovecotTuning = DEFAULT_TUNING): string {
  const service = (name: string): string[] => [
    `service ${name} {`,
    `  client_limit = ${t.clientLimit}`,
    `  process_limit = ${t.processLimit}`,
    // a process serves clients until it is stopped: no fork and exec per login
    '  service_count = 0',
    `  process_min_avail = ${t.readyProcesses}`,
    '  vsz_limit = 2G',
    '}',
  ];
  const login = (name: string): string[] => [
    `service ${name} {`,
    '  service_count = 0',
    `  process_min_avail = ${t.readyProcesses}`,
    '  client_limit = 4096',
    '}',
  ];
  return [
    TUNING_MARK,
    // services without a client_limit of their own (log, config …) see every process
    'default_client_limit = 20000',
    'auth_verbose = no',
    ...service('imap'),
    ...service('pop3'),
    ...login('imap-login'),
    ...login('pop3-login'),
    '',
  ].join('\n');
}
