// scripts/fuzz's table: one row per fuzz target from vitest's JSON reports (one per package).
// Inputs come from the target's meta.fuzz (packages/testbed/src/fuzz.ts); a property
// test that does not report them shows the configured MMP_FUZZ_RUNS, marked as such.
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';

const [runs, ...files] = process.argv.slice(2);
const rows = [];
let failed = false;
for (const file of files) {
  const pkg = basename(file, '.json');
  const report = JSON.parse(readFileSync(file, 'utf8'));
  for (const suite of report.testResults) {
    for (const t of suite.assertionResults) {
      const fuzz = t.meta?.fuzz;
      const failures = fuzz?.failures ?? (t.status === 'passed' ? 0 : 1);
      if (failures > 0 || t.status !== 'passed') failed = true;
      rows.push([
        pkg,
        t.title,
        fuzz === undefined
          ? `${Number(runs).toLocaleString('en-US')} (configured)`
          : fuzz.inputs.toLocaleString('en-US'),
        `${((t.duration ?? 0) / 1000).toFixed(1)} s`,
        String(failures) + (fuzz !== undefined && failures > 0 ? ` (seed ${fuzz.seed})` : ''),
      ]);
    }
  }
  if (report.numFailedTestSuites > 0) failed = true;
}
const head = ['package', 'target', 'inputs', 'time', 'failures'];
const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
const line = (cells) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
console.log(line(head));
console.log(`| ${widths.map((w) => '-'.repeat(w)).join(' | ')} |`);
for (const r of rows) console.log(line(r));
process.exit(failed ? 1 : 0);
