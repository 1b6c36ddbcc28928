import { describe, expect, it } from 'vitest';
import { tuneDovecotConf } from './dovecotTuning.js';

const SAMPLE = [
  'default_client_limit = 4096',
  'auth_verbose = yes',
  'service imap-login {',
  '  inet_listener imap {',
  '    port = 1143',
  '  }',
  '  service_count = 0',
  '  process_min_avail = 1',
  '  client_limit = 4096',
  '}',
  'service imap {',
  '  process_limit = 2048',
  '  client_limit = 1',
  '}',
  'service pop3-login {',
  '  process_min_avail = 1',
  '}',
  'service pop3 {',
  '  process_limit = 2048',
  '  client_limit = 1',
  '}',
  '',
].join('\n');

describe('tuneDovecotConf', () => {
  it('raises the imap/pop3 client limits, login processes and the default client limit', () => {
    const out = tuneDovecotConf(SAMPLE, { clientLimit: 500, processLimit: 80, loginProcesses: 2 });
    expect(out).toContain('service imap {\n  process_limit = 80\n  client_limit = 500\n');
    expect(out).toContain('service pop3 {\n  process_limit = 80\n  client_limit = 500\n');
    expect(out.match(/process_min_avail = 2/g)).toHaveLength(2);
    expect(out).toContain('default_client_limit = 20000');
    expect(out).toContain('auth_verbose = no');
    // the login services keep their own client_limit
    expect(out).toContain('  client_limit = 4096');
  });
  it('refuses a configuration it does not recognise', () => {
    expect(() => tuneDovecotConf('protocols = imap\n')).toThrow(/no service imap block/);
  });
});
