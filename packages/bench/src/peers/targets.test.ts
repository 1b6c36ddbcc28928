import { describe, expect, it } from 'vitest';
import { nginxConf, perditionArgs, perditionLdapUrl, socatArgs } from './targets.js';

const directory = {
  host: '127.0.0.1',
  port: 3890,
  baseDn: 'o=mmp.test',
  bindDn: 'cn=mmp,ou=services,o=mmp.test',
  bindPassword: 'mmp-bind-secret',
};

describe('perdition', () => {
  it('asks LDAPv3 for uid and mailHost below the base, bound as the service account', () => {
    expect(perditionLdapUrl(directory)).toBe(
      '3:ldap://127.0.0.1:3890/o=mmp.test?uid,mailHost?sub?(uid=%s)' +
        '?!bindname=cn=mmp%2cou=services%2co=mmp.test,x-bindpw=mmp-bind-secret',
    );
  });
  it('runs in the foreground on loopback with the LDAP map and the stores port', () => {
    const args = perditionArgs({
      protocol: 'pop3',
      port: 1110,
      outgoingPort: 2110,
      ldapLib: '/lib/ldap.so',
      ldap: directory,
      configFile: '/d/perdition.conf',
      logFile: '/d/p.log',
      pidFile: '/d/p.pid',
    });
    const after = (flag: string): string | undefined => args[args.indexOf(flag) + 1];
    expect(args).toContain('--no_daemon');
    expect(after('--protocol')).toBe('POP3');
    expect(after('--bind_address')).toBe('127.0.0.1');
    expect(after('--listen_port')).toBe('1110');
    expect(after('--outgoing_port')).toBe('2110');
    expect(after('--map_library')).toBe('/lib/ldap.so');
    expect(after('--config_file')).toBe('/d/perdition.conf');
  });
});

describe('nginx', () => {
  const conf = nginxConf({
    dir: '/d',
    module: '/m/ngx_mail_module.so',
    workers: 6,
    authPort: 8080,
    imapPort: 1143,
    pop3Port: 1110,
  });
  it('loads the mail module, stays in the foreground and names the auth_http service', () => {
    expect(conf).toContain('load_module /m/ngx_mail_module.so;');
    expect(conf).toContain('daemon off;');
    expect(conf).toContain('worker_processes 6;');
    expect(conf).toContain('auth_http 127.0.0.1:8080/auth;');
    expect(conf).toContain('accept_mutex on;');
  });
  it('proxies IMAP and POP3 on loopback, each with proxy on', () => {
    expect(conf).toMatch(/listen 127\.0\.0\.1:1143;\n\s+protocol imap;\n\s+proxy on;/);
    expect(conf).toMatch(/listen 127\.0\.0\.1:1110;\n\s+protocol pop3;\n\s+proxy on;/);
    expect(conf).not.toContain('proxy_buffer');
  });
  it('keeps descriptors under the 20,000 a process may hold', () => {
    const limit = Number(/worker_rlimit_nofile (\d+);/.exec(conf)?.[1]);
    const connections = Number(/worker_connections (\d+);/.exec(conf)?.[1]);
    expect(limit).toBeLessThanOrEqual(20_000);
    expect(connections).toBeLessThan(limit);
  });
});

describe('socat', () => {
  it('forks a relay per connection with 64 KiB buffers to the one store', () => {
    expect(socatArgs(1143, '127.0.0.2', 2143)).toEqual([
      '-b',
      '65536',
      'TCP-LISTEN:1143,bind=127.0.0.1,fork,reuseaddr,nodelay,backlog=1024',
      'TCP:127.0.0.2:2143,nodelay',
    ]);
  });
});
