/** Renders a check report as the lines the CLI prints: a header, then one line per check, its hint below it. */
import type { CheckReport, CheckStatus } from '../operations';

const LABELS: Readonly<Record<CheckStatus, string>> = { ok: 'ok', warn: 'warn', fail: 'FAIL' };
const LABEL_WIDTH = 6;

export function formatCheck(report: CheckReport): string {
  const title = [
    'meter-sync check',
    report.siteId !== undefined ? `site ${report.siteId}` : undefined,
    `tenant ${report.tenantId}`,
    report.ok ? 'ok' : 'fail',
  ]
    .filter((part) => part !== undefined)
    .join(' · ');
  const width = Math.max(0, ...report.checks.map((c) => c.name.length));
  const lines = report.checks.flatMap((c) => [
    `${LABELS[c.status].padEnd(LABEL_WIDTH)}${c.name.padEnd(width)}  ${c.message}`,
    ...(c.hint !== undefined ? [`${' '.repeat(LABEL_WIDTH)}hint: ${c.hint}`] : []),
  ]);
  return [title, ...lines].join('\n');
}
