import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseServiceList, parseSuccessorFile } from './successors.js';

const fixture = (path: string): string =>
  readFileSync(new URL(`../fixtures/successors/${path}`, import.meta.url), 'utf8');

describe('parseSuccessorFile (ImapProxyAService.cfg, PopProxyAService.cfg, AService.cfg)', () => {
  it('reads default:Name value lines, quoted values with spaces, and skips comments', () => {
    const r = parseSuccessorFile(fixture('sun6/ImapProxyAService.cfg'), 'ImapProxyAService.cfg');
    if (!r.ok) throw new Error(JSON.stringify(r.error));
    const byName = new Map(r.value.entries.map((e) => [e.name, e]));
    expect(r.value.entries[0]).toEqual({
      section: 'default',
      name: 'LdapUrl',
      value:
        'ldap://ldap1.example.com:389/o=example.com ldap://ldap2.example.com:389/o=example.com',
      line: 2,
    });
    expect(byName.get('BindDN')?.value).toBe('cn=MMP Service, ou=Services, o=example.com');
    expect(byName.get('SearchFormat')?.value).toBe('(uid=%U)');
    expect(byName.get('ConnLimits')?.value).toBe('0.0.0.0|0.0.0.0:20');
    expect(r.value.entries.length).toBe(36);
  });

  it('reads a quoted value that runs on over the next lines, as the guides print them', () => {
    const r = parseSuccessorFile(fixture('sun6/ImapProxyAService.cfg'), 'ImapProxyAService.cfg');
    if (!r.ok) throw new Error(JSON.stringify(r.error));
    const byName = new Map(r.value.entries.map((e) => [e.name, e]));
    expect(byName.get('Capability')).toMatchObject({
      value: 'IMAP4rev1 LITERAL+ NAMESPACE ID UIDPLUS CHILDREN',
      line: 8,
    });
    expect(byName.get('ServerDownAlert')?.value).toBe(
      'Your mail server is being serviced; please try again in a few minutes.',
    );
    expect(byName.get('SearchFormat')?.line).toBe(10);
    expect(r.value.warnings).toEqual([
      {
        where: 'ImapProxyAService.cfg:8',
        name: 'Capability',
        message: 'the quoted value runs on to line 9; read as one line',
      },
      {
        where: 'ImapProxyAService.cfg:23',
        name: 'ServerDownAlert',
        message: 'the quoted value runs on to line 24; read as one line',
      },
    ]);
  });

  it('reports every other line with its number, and an open quote never swallows the next entry', () => {
    expect(parseSuccessorFile(fixture('broken/ImapProxyAService.cfg'), 'Imap.cfg')).toEqual({
      ok: false,
      error: [
        { where: 'Imap.cfg:2', message: "expected 'default:Name value', got 'LogLevel 5'" },
        { where: 'Imap.cfg:4', message: 'Banner: unterminated double quote' },
        {
          where: 'Imap.cfg:6',
          message: "Capability: text after the closing double quote: 'trailing'",
        },
        { where: 'Imap.cfg:8', message: "expected 'default:Name value', got ': no name'" },
      ],
    });
  });

  it('takes escapes only for \\" and \\\\, CRLF line ends, a BOM, sections and empty values', () => {
    const text =
      '\uFEFFdefault:LogDir "C:\\iPlanet\\log dir"\r\n' +
      'default:Banner "say \\"hi\\" \\\\o/"  # greeting\r\n' +
      'default:SSLKeyPasswdFile ""\r\n' +
      'default:PreAuth\r\n' +
      '  mmp2:LogLevel   7  \r\n';
    const r = parseSuccessorFile(text, 'x.cfg');
    expect(r.ok && r.value.entries).toEqual([
      { section: 'default', name: 'LogDir', value: 'C:\\iPlanet\\log dir', line: 1 },
      { section: 'default', name: 'Banner', value: 'say "hi" \\o/', line: 2 },
      { section: 'default', name: 'SSLKeyPasswdFile', value: '', line: 3 },
      { section: 'default', name: 'PreAuth', value: '', line: 4 },
      { section: 'mmp2', name: 'LogLevel', value: '7', line: 5 },
    ]);
  });
});

describe('parseSuccessorFile and U+2028', () => {
  it('reads a value holding U+2028 (a line end only for JavaScript regexps)', () => {
    const r = parseSuccessorFile('default:Banner a\u2028b\n', 'x.cfg');
    expect(r.ok && r.value.entries[0]?.value).toBe('a\u2028b');
  });
});

describe('parseServiceList', () => {
  it('reads library paths and short names, with their ports in order', () => {
    const r = parseServiceList(
      '/opt/SUNWmsgsr/lib/ImapProxyAService@143|993 popproxy@110|995 C:\\iMS\\lib\\SmtpProxyAService.dll@25 /opt/x/lib/libHttpService.so@80',
    );
    expect(r).toEqual({
      ok: true,
      value: [
        {
          service: '/opt/SUNWmsgsr/lib/ImapProxyAService',
          kind: 'imap',
          ports: [{ port: 143 }, { port: 993 }],
        },
        { service: 'popproxy', kind: 'pop3', ports: [{ port: 110 }, { port: 995 }] },
        { service: 'C:\\iMS\\lib\\SmtpProxyAService.dll', kind: 'smtp', ports: [{ port: 25 }] },
        { service: '/opt/x/lib/libHttpService.so', kind: 'other', ports: [{ port: 80 }] },
      ],
    });
  });

  it('reads IP:port, [IPv6]:port, commas, and a service without ports', () => {
    expect(
      parseServiceList('imapproxy@10.0.0.1:143|[::1]:993,*:1143 submitproxy@587 popproxy'),
    ).toEqual({
      ok: true,
      value: [
        {
          service: 'imapproxy',
          kind: 'imap',
          ports: [{ host: '10.0.0.1', port: 143 }, { host: '::1', port: 993 }, { port: 1143 }],
        },
        { service: 'submitproxy', kind: 'smtp', ports: [{ port: 587 }] },
        { service: 'popproxy', kind: 'pop3', ports: [] },
      ],
    });
  });

  it('refuses bad ports and nameless items', () => {
    expect(parseServiceList('imapproxy@143|99999')).toEqual({
      ok: false,
      error: "'imapproxy@143|99999': '99999' is not a port or IP:port",
    });
    expect(parseServiceList('@143')).toEqual({ ok: false, error: "'@143' names no service" });
  });
});
