import { describe, expect, it } from 'vitest';
import { TUNING_MARK, dovecotOverrides } from './dovecotTuning.js';

describe('dovecotOverrides', () => {
  it('gives imap and pop3 many clients per long-lived process, and ready login processes', () => {
    const out = dovecotOverrides({ clientLimit: 500, processLimit: 80, readyProcesses: 2 });
    expect(out.startsWith(TUNING_MARK)).toBe(true);
    for (const service of ['imap', 'pop3']) {
      const block = new RegExp(`^service ${service} \\{\\n([^}]*)\\}`, 'm').exec(out)?.[1] ?? '';
      expect(block).toContain('client_limit = 500');
      expect(block).toContain('process_limit = 80');
      expect(block).toContain('service_count = 0');
      expect(block).toContain('process_min_avail = 2');
      const login = new RegExp(`^service ${service}-login \\{\\n([^}]*)\\}`, 'm').exec(out)?.[1];
      expect(login).toContain('service_count = 0');
    }
    expect(out).toContain('default_client_limit = 20000');
    // braces balance
    expect(out.split('{').length).toBe(out.split('}').length);
  });
});
