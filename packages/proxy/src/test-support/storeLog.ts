/** What a test bed store logged, for end-to-end tests that check what the store saw. */

import { readFile, stat } from 'node:fs/promises';

/**
 * Run `login` and return the `<proto>-login` Login line it caused in the store's log at
 * `logPath` (the store logs through its log process, so the line may come a moment after the
 * client's answer).
 */
export async function storeLoginLine(
  logPath: string,
  proto: 'imap' | 'pop3',
  login: () => Promise<void>,
): Promise<string> {
  const before = (await stat(logPath)).size;
  await login();
  const deadline = Date.now() + 5_000;
  for (;;) {
    const added = (await readFile(logPath)).subarray(before).toString('utf8');
    const lines = added.split('\n').filter((l) => l.includes(`${proto}-login: Info: Login: `));
    if (lines.length > 1) throw new Error(`more than one login logged: ${lines.join('\n')}`);
    if (lines[0] !== undefined) return lines[0];
    if (Date.now() > deadline) throw new Error(`no ${proto} login in the store log: ${added}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
