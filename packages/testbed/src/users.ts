// The generated user population, shared by the directory and the stores.

export const BASE_DN = 'o=mmp.test';
export const PEOPLE_DN = `ou=people,${BASE_DN}`;
export const SERVICES_DN = `ou=services,${BASE_DN}`;
export const VIRTUAL_DOMAIN = 'virt.example';

/** Store names are capital letters: 'A', 'B', … */
export type StoreName = string;

export type UserKind =
  /** an ordinary user with one mailHost and a mailbox on that store */
  | 'plain'
  /** mailHost = [a dead host, a live store]: the multiplexor must fail over */
  | 'failover'
  /** mailHost = [store A, store B], a mailbox on both (the first one answers) */
  | 'dual'
  /** mailHost = [a host that accepts connections and never answers, a live store] */
  | 'stalled'
  /** every mailHost value is a dead host */
  | 'dead'
  /** an entry without any mailHost */
  | 'no-mailhost'
  /** a directory entry routed to store A, but no mailbox (the store refuses the login) */
  | 'ghost'
  /** mailHost = store A, mmpAltMailHost = store B, a mailbox on both */
  | 'alt'
  /** uid NAME+DOMAIN (virtual domain) */
  | 'virtual'
  /** a password holding a double quote, a backslash, spaces and non-ASCII UTF-8 */
  | 'special-password'
  /** user001 … for concurrency tests */
  | 'bulk'
  /** uid NAME+DOMAIN in a hosted domain's own directory (TestbedOptions.domains) */
  | 'hosted'
  /** given by the test (TestbedOptions.extraUsers), e.g. routed to a scripted store */
  | 'extra';

export interface TestUser {
  /** The uid attribute and the store's login name, e.g. `alice` or `alice+virt.example`. */
  uid: string;
  password: string;
  /** Entry DN, RFC 4514-escaped (`uid=alice\+virt.example,ou=people,o=mmp.test`). */
  dn: string;
  mail: string;
  kind: UserKind;
  /** The store the mailHost list leads to (first live host); null when none does. */
  store: StoreName | null;
  /** mailHost values, in order (bare addresses; the port is the back-side port). */
  mailHosts: string[];
  /** mmpAltMailHost values, in order. */
  altMailHosts: string[];
  /** Stores holding a mailbox (passdb entry and seeded maildir) for this user. */
  mailboxes: StoreName[];
  /** The part before `+` for virtual-domain users, else the uid. */
  localPart: string;
  /** The virtual domain, or null. */
  domain: string | null;
}

export interface StoreAddress {
  name: StoreName;
  host: string;
}

export interface PopulationOptions {
  stores: readonly StoreAddress[];
  deadHosts: readonly [string, string];
  hangingHost: string;
  bulkUsers: number;
}

const NAMES: readonly (readonly string[])[] = [
  ['alice', 'carol', 'erin'],
  ['bob', 'dave', 'frank'],
  ['grace', 'heidi', 'ivan'],
  ['judy', 'karl', 'laura'],
  ['mike', 'nina', 'oscar'],
  ['peggy', 'quinn', 'rupert'],
  ['sybil', 'trent', 'ursula'],
];

export const MAX_STORES = NAMES.length;

/** The password of the `special-password` user: `"`, `\`, spaces and UTF-8 (no `:`). */
export const SPECIAL_PASSWORD = 'sp ace "quote" back\\slash ünïcødé €';

/** RFC 4514 escaping of an attribute value inside a DN. */
export function escapeDnValue(value: string): string {
  let out = value.replace(/[\\,+"<>;=]/g, (c) => `\\${c}`);
  out = out.replace(/^([ #])/, '\\$1');
  out = out.replace(/ $/, '\\ ');
  return out;
}

export function userDn(uid: string, peopleDn: string = PEOPLE_DN): string {
  return `uid=${escapeDnValue(uid)},${peopleDn}`;
}

/** A hosted domain: its own directory (suffix `o=DOMAIN`) and users on the shared stores. */
export interface HostedDomainOptions {
  /** `one.example`: its users log in to the stores as `NAME+one.example`. */
  domain: string;
  /** Local part → the store holding the mailbox: `{ alice: 'B' }`. */
  users: Readonly<Record<string, StoreName>>;
  /**
   * The attribute naming the store (default `mailHost`). With `mmpAltMailHost`, `mailHost` names a
   * dead host: only a multiplexor reading mmpAltMailHost (MailHostAttrs) reaches the mailbox.
   */
  mailHostAttr?: 'mailHost' | 'mmpAltMailHost';
  /** Anonymous clients may search its directory (default true); if false, only bound ones. */
  anonymousRead?: boolean;
}

/** The users of a hosted domain; their passwords (`secret-alice+one.example`) differ per domain. */
export function hostedDomainUsers(
  options: HostedDomainOptions,
  storeHost: (name: StoreName) => string,
  deadHost: string,
): TestUser[] {
  const peopleDn = `ou=people,o=${options.domain}`;
  return Object.entries(options.users).map(([localPart, store]) => {
    const uid = `${localPart}+${options.domain}`;
    const host = storeHost(store);
    const alt = options.mailHostAttr === 'mmpAltMailHost';
    return {
      uid,
      password: passwordFor(uid),
      dn: userDn(uid, peopleDn),
      mail: `${localPart}@${options.domain}`,
      kind: 'hosted',
      store,
      mailHosts: alt ? [deadHost] : [host],
      altMailHosts: alt ? [host] : [],
      mailboxes: [store],
      localPart,
      domain: options.domain,
    };
  });
}

/** A user the test adds to the main directory, with mailHost values of its choice. */
export interface ExtraUserOptions {
  /** A new uid (not one of the generated population's). */
  uid: string;
  /** Default `secret-UID`. */
  password?: string;
  /** Bare addresses, in order: stores (127.0.0.2 …), scripted stores, dead hosts, anything. */
  mailHosts: readonly string[];
  altMailHosts?: readonly string[];
  /** Stores that hold a mailbox for this user (default none). */
  mailboxes?: readonly StoreName[];
}

/** The entries of TestbedOptions.extraUsers (kind `extra`). */
export function extraUsers(
  options: readonly ExtraUserOptions[],
  stores: readonly StoreAddress[],
): TestUser[] {
  const byHost = new Map(stores.map((s) => [s.host, s.name]));
  return options.map((o) => {
    const plus = o.uid.indexOf('+');
    const localPart = plus >= 0 ? o.uid.slice(0, plus) : o.uid;
    const domain = plus >= 0 ? o.uid.slice(plus + 1) : null;
    const known = new Set(stores.map((s) => s.name));
    for (const name of o.mailboxes ?? []) {
      if (!known.has(name)) throw new Error(`extra user ${o.uid}: no store ${name}`);
    }
    // the first mailHost that is a store of the test bed
    const store = o.mailHosts.map((h) => byHost.get(h)).find((n) => n !== undefined) ?? null;
    return {
      uid: o.uid,
      password: o.password ?? passwordFor(o.uid),
      dn: userDn(o.uid),
      mail: `${localPart}@${domain ?? 'mmp.test'}`,
      kind: 'extra',
      store,
      mailHosts: [...o.mailHosts],
      altMailHosts: [...(o.altMailHosts ?? [])],
      mailboxes: [...(o.mailboxes ?? [])],
      localPart,
      domain,
    };
  });
}

export function passwordFor(uid: string): string {
  return `secret-${uid}`;
}

export function generateUsers(options: PopulationOptions): TestUser[] {
  const { stores, deadHosts, hangingHost, bulkUsers } = options;
  const first = stores[0];
  if (first === undefined) throw new Error('at least one store is needed');
  const second = stores[1] ?? first;
  const hostOf = new Map(stores.map((s) => [s.name, s.host]));
  const users: TestUser[] = [];

  const add = (
    uid: string,
    kind: UserKind,
    store: StoreName | null,
    mailHosts: string[],
    mailboxes: StoreName[],
    extra: { altMailHosts?: string[]; password?: string } = {},
  ): void => {
    const plus = uid.indexOf('+');
    const localPart = plus >= 0 ? uid.slice(0, plus) : uid;
    const domain = plus >= 0 ? uid.slice(plus + 1) : null;
    users.push({
      uid,
      password: extra.password ?? passwordFor(uid),
      dn: userDn(uid),
      mail: `${localPart}@${domain ?? 'mmp.test'}`,
      kind,
      store,
      mailHosts,
      altMailHosts: extra.altMailHosts ?? [],
      mailboxes,
      localPart,
      domain,
    });
  };
  const host = (name: StoreName): string => {
    const h = hostOf.get(name);
    if (h === undefined) throw new Error(`unknown store ${name}`);
    return h;
  };

  stores.forEach((store, i) => {
    for (const name of NAMES[i] ?? []) add(name, 'plain', store.name, [store.host], [store.name]);
  });
  add('failover', 'failover', second.name, [deadHosts[0], second.host], [second.name]);
  add('stalled', 'stalled', second.name, [hangingHost, second.host], [second.name]);
  // With one store both are the same: a value twice is no valid LDAP (slapadd -q lets it pass,
  // a syncrepl consumer refuses the entry).
  add(
    'dual',
    'dual',
    first.name,
    [...new Set([first.host, second.host])],
    [...new Set([first.name, second.name])],
  );
  add('nohost', 'dead', null, [deadHosts[0], deadHosts[1]], []);
  add('nomailhost', 'no-mailhost', null, [], []);
  add('ghost', 'ghost', first.name, [first.host], []);
  add('althost', 'alt', first.name, [first.host], [...new Set([first.name, second.name])], {
    altMailHosts: [second.host],
  });
  add(`alice+${VIRTUAL_DOMAIN}`, 'virtual', first.name, [first.host], [first.name]);
  add(`bob+${VIRTUAL_DOMAIN}`, 'virtual', second.name, [second.host], [second.name]);
  add('quoted', 'special-password', first.name, [first.host], [first.name], {
    password: SPECIAL_PASSWORD,
  });
  const width = Math.max(3, String(bulkUsers).length);
  for (let i = 1; i <= bulkUsers; i++) {
    const store = stores[(i - 1) % stores.length] ?? first;
    add(
      `user${String(i).padStart(width, '0')}`,
      'bulk',
      store.name,
      [host(store.name)],
      [store.name],
    );
  }
  return users;
}
