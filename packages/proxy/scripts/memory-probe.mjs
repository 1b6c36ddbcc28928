// Preloaded into a proxy by `session-memory.mjs --probe` (`node --import`): on SIGWINCH, writes
// the process's memory figures before and after forced collections to MMP_PROBE_DIR/usage-K.json
// (K = 1, 2, … per signal), and with MMP_PROBE_SNAPSHOT=1 a heap snapshot (heap-K.heapsnapshot,
// taken after the collections), then MMP_PROBE_DIR/done-K. Measurement only: never in a release.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { getHeapSpaceStatistics, setFlagsFromString, writeHeapSnapshot } from 'node:v8';
import { runInNewContext } from 'node:vm';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc');
const dir = process.env.MMP_PROBE_DIR;
let k = 0;
process.on('SIGWINCH', () => {
  const n = ++k;
  const before = process.memoryUsage();
  for (let i = 0; i < 3; i++) gc();
  const after = process.memoryUsage();
  const spaces = Object.fromEntries(
    getHeapSpaceStatistics().map((s) => [
      s.space_name,
      { size: s.space_size, used: s.space_used_size },
    ]),
  );
  if (process.env.MMP_PROBE_SNAPSHOT === '1')
    writeHeapSnapshot(join(dir, `heap-${n}.heapsnapshot`));
  const afterSnapshot = process.memoryUsage();
  writeFileSync(
    join(dir, `usage-${n}.json`),
    JSON.stringify({ before, after, afterSnapshot, spaces }),
  );
  writeFileSync(join(dir, `done-${n}`), '');
});
