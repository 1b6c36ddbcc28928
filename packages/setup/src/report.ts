/**
 * The installer's closing report (guide step 10): what was written and how to run it. Apart
 * from plan.ts and apply.ts, which it reads both, so that neither needs the other's types.
 */
import type { ApplyReport } from './apply.js';
import type { Plan } from './plan.js';
import { outFileName, pidFileName, scriptName, unitName } from './scripts.js';
import { PROTOCOL_LABEL } from './table.js';

/** What the installer did and how to run it (guide step 10). */
export function reportText(plan: Plan, report: ApplyReport): string {
  const created = report.created;
  const a = plan.answers;
  const dir = plan.instanceDir;
  const lines = [
    `${created ? 'Created' : 'Updated'} instance ${a.instance} in ${dir}:`,
    ...plan.files.map((f) => `  ${dir}/${f.name}  (mode ${f.mode.toString(8).padStart(4, '0')})`),
    ...plan.dirs.map((d) => `  ${d.path}/  (log directory)`),
    ...plan.launchers.map((f) => `  ${f.path}`),
    `Recorded MMPRoot=${a.root} in ${plan.conf.path}.`,
  ];
  for (const p of a.services) {
    const script = `${dir}/${scriptName(p)}`;
    const unit = unitName(a.instance, p);
    lines.push(
      '',
      `${PROTOCOL_LABEL[p]}:`,
      `  start:   ${script} start`,
      `  stop:    ${script} stop`,
      `  check:   ${script} status     (exit 0: running, 3: stopped)`,
      `  reload:  ${script} reload     (SIGHUP)`,
      `  pid file ${dir}/${pidFileName(p)}, output ${dir}/${outFileName(p)}`,
      `  at boot with systemd: systemctl link ${dir}/${unit} && systemctl enable --now ${unit}`,
      `  or from an init directory: ln -s ${script} /etc/init.d/mmp-${a.instance}-${p}`,
    );
  }
  if (!created) {
    const restart = a.services.map((p) => `${dir}/${scriptName(p)} restart`).join('; ');
    lines.push('', `A running proxy keeps its old settings until restarted: ${restart}`);
  }
  if (report.removed.length > 0)
    lines.push('', `Removed (service no longer configured): ${report.removed.join(', ')}.`);
  return lines.join('\n') + '\n';
}
