/**
 * Table 13.4's `-n instance` with options: "if the instance exists the options are applied to it;
 * if not, a new one is created". The verb is `ImapProxy install -n NAME [options]` (PopProxy
 * alike): `install` already means "turn these options into configuration" (without `-n` it prints
 * config-file lines), and `ImapProxy -n NAME` without it keeps running that instance as before.
 * The options become an answers file for mmp-setup's own non-interactive run: the same validators,
 * the same atomic writer, the same report; a new instance gets mmp-setup's defaults (user, LogDir,
 * this protocol only); an existing one keeps everything else, and gains this protocol's service
 * when it did not have it.
 */
import type { ParamName, Protocol } from '@mmp/config';
import { type CliIo, main } from './cli.js';
import { confFilePath, listInstances, loadInstance, recordedRoot } from './instances.js';

export interface ApplyOptionsInput {
  readonly protocol: Protocol;
  readonly instance: string;
  /** Raw values by canonical name, as the command line gave them. */
  readonly values: Partial<Record<ParamName, string>>;
}

/** Apply the options to the instance (creating it); resolves with mmp-setup's exit code. */
export async function applyOptions(
  input: ApplyOptionsInput,
  io: Pick<CliIo, 'env' | 'cwd' | 'stdout' | 'stderr'> & Partial<CliIo>,
): Promise<number> {
  const root = recordedRoot(confFilePath(io.env));
  let services: Protocol[] = [input.protocol];
  if (root.ok && listInstances(root.value).includes(input.instance)) {
    const loaded = loadInstance(root.value, input.instance);
    if (loaded.ok) services = [...new Set([...loaded.value.services, input.protocol])].sort();
  }
  const values: Record<Protocol, Record<string, string | null>> = { imap: {}, pop3: {} };
  values[input.protocol] = { ...input.values };
  return main({
    ...io,
    argv: ['--yes'],
    answers: { instance: input.instance, services, values },
  });
}
