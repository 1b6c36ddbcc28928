// The nginx mail proxy's auth_http service: nginx asks, for each login, where the user lives
// (headers Auth-User, Auth-Pass, Auth-Protocol); we look the user's mailHost up in LDAP, as
// the multiplexor does, and answer Auth-Status: OK with Auth-Server (an IP address) and
// Auth-Port. Like mmp, we do not check the password: the store does.
import * as http from 'node:http';
import { isIP } from 'node:net';
import { Client, EqualityFilter } from 'ldapts';

export interface MailDirectory {
  /** The user's mailHost values, in order; empty when the user is unknown. */
  mailHosts(uid: string): Promise<string[]>;
}

export interface AuthPorts {
  imap: number;
  pop3: number;
}

export interface AuthAnswer {
  headers: Record<string, string>;
}

const INVALID = 'Invalid login or password';
const TEMPORARY = 'Temporary server problem, try again later';

/** nginx escapes Auth-User and Auth-Pass (URL-style %XX) since 1.5.6. */
export function decodeAuthHeader(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/** Split `host[:port]` (a mailHost value may carry a port); undefined when unusable. */
export function parseMailHost(value: string): { host: string; port?: number } | undefined {
  const v = value.trim();
  if (isIP(v) !== 0) return { host: v };
  const m = /^\[?([^\]]+?)\]?:(\d{1,5})$/.exec(v);
  if (m !== null && isIP(m[1] ?? '') !== 0) return { host: m[1] as string, port: Number(m[2]) };
  return undefined;
}

/** The answer to one auth_http request, from its headers (lower-case names, as node gives). */
export async function authAnswer(
  headers: Readonly<Record<string, string | string[] | undefined>>,
  directory: MailDirectory,
  ports: AuthPorts,
): Promise<AuthAnswer> {
  const one = (name: string): string | undefined => {
    const v = headers[name];
    return Array.isArray(v) ? v[0] : v;
  };
  const user = decodeAuthHeader(one('auth-user') ?? '');
  const protocol = (one('auth-protocol') ?? '').toLowerCase();
  if (user === '' || (protocol !== 'imap' && protocol !== 'pop3')) {
    return { headers: { 'Auth-Status': INVALID } };
  }
  let hosts: string[];
  try {
    hosts = await directory.mailHosts(user);
  } catch {
    return { headers: { 'Auth-Status': TEMPORARY } };
  }
  // nginx proxies to exactly one server: take the first usable mailHost, as perdition does.
  for (const value of hosts) {
    const parsed = parseMailHost(value);
    if (parsed === undefined) continue;
    return {
      headers: {
        'Auth-Status': 'OK',
        'Auth-Server': parsed.host,
        'Auth-Port': String(parsed.port ?? ports[protocol]),
      },
    };
  }
  return { headers: { 'Auth-Status': INVALID } };
}

export interface LdapDirectoryOptions {
  url: string;
  baseDn: string;
  bindDn?: string;
  bindPassword?: string;
  mailHostAttr?: string;
  uidAttr?: string;
}

/** LDAP lookups over one kept connection (bound once, reopened after an error). */
export class LdapDirectory implements MailDirectory {
  private client: Client | undefined;
  private binding: Promise<Client> | undefined;

  constructor(private readonly o: LdapDirectoryOptions) {}

  private connect(): Promise<Client> {
    if (this.client !== undefined) return Promise.resolve(this.client);
    this.binding ??= (async () => {
      const client = new Client({ url: this.o.url, timeout: 10_000, connectTimeout: 5_000 });
      if (this.o.bindDn !== undefined) await client.bind(this.o.bindDn, this.o.bindPassword ?? '');
      this.client = client;
      return client;
    })().finally(() => {
      this.binding = undefined;
    });
    return this.binding;
  }

  async mailHosts(uid: string): Promise<string[]> {
    const attr = this.o.mailHostAttr ?? 'mailHost';
    for (let attempt = 1; ; attempt++) {
      const client = await this.connect();
      try {
        const { searchEntries } = await client.search(this.o.baseDn, {
          scope: 'sub',
          filter: new EqualityFilter({ attribute: this.o.uidAttr ?? 'uid', value: uid }),
          attributes: [attr],
          sizeLimit: 2,
        });
        const entry = searchEntries[0];
        if (entry === undefined || searchEntries.length > 1) return [];
        const key = Object.keys(entry).find((k) => k.toLowerCase() === attr.toLowerCase());
        const value = key === undefined ? undefined : entry[key];
        if (value === undefined) return [];
        return (Array.isArray(value) ? value : [value]).map((v) => v.toString());
      } catch (error) {
        this.client = undefined;
        void client.unbind().catch(() => undefined);
        if (attempt >= 2) throw error;
      }
    }
  }

  async close(): Promise<void> {
    const c = this.client;
    this.client = undefined;
    await c?.unbind().catch(() => undefined);
  }
}

/** An HTTP server answering auth_http requests on any path. */
export function createAuthHttpServer(directory: MailDirectory, ports: AuthPorts): http.Server {
  const server = http.createServer((req, res) => {
    authAnswer(req.headers, directory, ports).then(
      (answer) => {
        res.writeHead(200, answer.headers);
        res.end();
      },
      () => {
        res.writeHead(200, { 'Auth-Status': TEMPORARY });
        res.end();
      },
    );
  });
  server.keepAliveTimeout = 60_000;
  return server;
}
