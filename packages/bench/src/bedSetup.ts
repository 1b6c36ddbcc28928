// The test bed as every benchmark mode starts it: slapd and two Dovecot stores (A on 127.0.0.2,
// B on 127.0.0.3) with our tuning, TLS off, bulk users; what the targets need to reach it, and
// the bulk users as load-generator accounts (each with its own store's address).
import { readFile } from 'node:fs/promises';
import { type Testbed, startTestbed } from '@mmp/testbed';
import { TUNING_MARK, dovecotOverrides } from './peers/dovecotTuning.js';
import type { Backend } from './peers/targets.js';
import type { Account } from './load/scenarios.js';

export interface BenchBed {
  bed: Testbed;
  backend: Backend;
  accounts: Account[];
}

export async function startBenchBed(bulkUsers: number): Promise<BenchBed> {
  const bed = await startTestbed({
    stores: 2,
    bulkUsers,
    tls: false,
    extraDovecotConfig: dovecotOverrides(),
  });
  try {
    for (const store of bed.stores) {
      if (!(await readFile(store.configFile, 'utf8')).includes(TUNING_MARK)) {
        throw new Error('the test bed ignored extraDovecotConfig: rebuild @mmp/testbed');
      }
    }
    const backend: Backend = {
      ldap: {
        host: bed.ldap.host,
        port: bed.ldap.port,
        baseDn: bed.ldap.baseDn,
        bindDn: bed.ldap.bindDn,
        bindPassword: bed.ldap.bindPassword,
      },
      imapPort: bed.backsidePorts.imap,
      pop3Port: bed.backsidePorts.pop3,
    };
    const hostOf = new Map(bed.stores.map((s) => [s.name, s.host]));
    const accounts: Account[] = bed.usersOfKind('bulk').map((u) => ({
      user: u.uid,
      pass: u.password,
      host: u.store === null ? undefined : hostOf.get(u.store),
    }));
    if (accounts.length === 0) throw new Error('no bulk users in the test bed');
    return { bed, backend, accounts };
  } catch (error) {
    await bed.stop();
    throw error;
  }
}
