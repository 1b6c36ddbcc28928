// Which objects N more sessions add: aggregates two heap snapshots (memory-probe.mjs writes them)
// by type and constructor or function name, and prints the difference per session, largest first.
//   node packages/proxy/scripts/heap-diff.mjs A.heapsnapshot B.heapsnapshot SESSIONS [TOP=40]
import { readFileSync } from 'node:fs';

const [a, b, sessionsArg, topArg] = process.argv.slice(2);
const sessions = Number(sessionsArg);
const top = Number(topArg ?? 40);

function aggregate(path) {
  const snap = JSON.parse(readFileSync(path, 'utf8'));
  const fields = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const width = fields.length;
  const [iType, iName, iSize] = ['type', 'name', 'self_size'].map((f) => fields.indexOf(f));
  const out = new Map();
  let total = 0;
  const { nodes, strings } = snap;
  for (let i = 0; i < nodes.length; i += width) {
    const type = types[nodes[i + iType]];
    let name = strings[nodes[i + iName]];
    if (type === 'string' || type === 'concatenated string' || type === 'sliced string') name = '';
    if (type === 'number' || type === 'hidden' || type === 'code') name = name.slice(0, 40);
    const key = `${type} ${name}`.slice(0, 80);
    const size = nodes[i + iSize];
    total += size;
    const e = out.get(key) ?? { count: 0, size: 0 };
    e.count++;
    e.size += size;
    out.set(key, e);
  }
  return { out, total };
}

const A = aggregate(a);
const B = aggregate(b);
const rows = [];
for (const [key, e] of B.out) {
  const o = A.out.get(key) ?? { count: 0, size: 0 };
  rows.push({ key, count: (e.count - o.count) / sessions, size: (e.size - o.size) / sessions });
}
for (const [key, o] of A.out)
  if (!B.out.has(key)) rows.push({ key, count: -o.count / sessions, size: -o.size / sessions });
rows.sort((x, y) => Math.abs(y.size) - Math.abs(x.size));
console.log(`self size per session: ${((B.total - A.total) / sessions).toFixed(1)} B`);
console.log('bytes/session  objects/session  type name');
for (const r of rows.slice(0, top))
  console.log(`${r.size.toFixed(1).padStart(12)}  ${r.count.toFixed(3).padStart(15)}  ${r.key}`);
