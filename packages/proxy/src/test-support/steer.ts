/**
 * Workers accept on one shared listening socket (`listeners.ts`), and the kernel need not take
 * them in turn: a test that needs connections on a given worker steers them there by stopping
 * (SIGSTOP) every other worker meanwhile. A stopped worker accepts nothing; the one left running
 * takes what arrives. The others are continued afterwards, whatever `f` did; their own sessions
 * only wait meanwhile.
 */
export async function onWorker<T>(
  workers: readonly number[],
  serving: number,
  f: () => Promise<T>,
): Promise<T> {
  if (!workers.includes(serving)) throw new Error(`${serving} is not one of the workers`);
  const others = workers.filter((w) => w !== serving);
  for (const w of others) process.kill(w, 'SIGSTOP');
  try {
    return await f();
  } finally {
    for (const w of others) process.kill(w, 'SIGCONT');
  }
}
