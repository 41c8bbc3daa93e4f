// The per-target table of `npm run bench` as a chart ("where people would rather look than
// read"): one panel per ratio, one bar per target, drawn as plain SVG text (no dependency).
// `npm run bench` writes it to docs/bench-peers.svg with the results block; `node bench/chart.ts
// <report.json> <out.svg>` redraws it from a `--json` file.
import { readFileSync, writeFileSync } from 'node:fs'
import type { Report, TargetName } from './harness.ts'
import { peerColumns, peerRows, type TargetRow } from './report.ts'

const COLOURS: Readonly<Record<TargetName, string>> = {
  direct: '#9e9e9e',
  nginx: '#607d8b',
  haproxy: '#607d8b',
  caddy: '#607d8b',
  floor: '#43a047',
  sidecar: '#e53935',
  fastify: '#1e88e5',
  vite: '#1e88e5',
  express: '#1e88e5'
}

const escape = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')

export function chart (report: Report, rows: TargetRow[] = peerRows(report)): string {
  const columns = peerColumns(report)
  const LABEL = 470
  const BAR = 380
  const ROW = 18
  const width = LABEL + BAR + 70
  const parts: string[] = []
  let y = 64
  columns.forEach((col, i) => {
    // Ratios only: the p99 difference, the RSS growth and idle RSS stay in the table.
    if (col.against === undefined || col.field === 'p99') return
    const bars = rows.map((r) => ({ r, ratio: r.cells[i]?.ratio })).filter((b): b is { r: TargetRow; ratio: number } => b.ratio !== undefined && b.r.target !== col.against)
    if (bars.length === 0) return
    const max = Math.max(1, ...bars.map((b) => b.ratio))
    const x = (v: number): number => LABEL + v / max * BAR
    const lower = col.field === 'ms' || col.field === 'cpu10k'
    parts.push(`<text x="10" y="${y + 14}" font-weight="bold">${escape(col.head.replace(/ \(×.*\)$/, ''))}, × ${col.against}${lower ? ' (lower is better)' : ' (higher is better)'}</text>`)
    y += 22
    const top = y
    for (const { r, ratio } of bars) {
      parts.push(`<text x="${LABEL - 8}" y="${y + 13}" text-anchor="end">${escape(r.label)}</text>`,
        `<rect x="${LABEL}" y="${y + 2}" width="${(x(ratio) - LABEL).toFixed(1)}" height="${ROW - 4}" fill="${COLOURS[r.target]}"/>`,
        `<text x="${(x(ratio) + 4).toFixed(1)}" y="${y + 13}">${ratio.toFixed(2)}</text>`)
      y += ROW
    }
    parts.push(`<line x1="${x(1).toFixed(1)}" y1="${top}" x2="${x(1).toFixed(1)}" y2="${y}" stroke="#000" stroke-dasharray="3,3"/>`)
    y += 14
  })
  const m = report.meta
  const machine = `npm run bench, ${m.date}: Node ${m.node}, ${m.cpus} CPUs${m.pinned ? ' (servers on core 0, load on core 1)' : ''}`
  const method = `${m.rounds} round(s) × ${m.seconds} s per target and case, ${m.connections} connections, load average ${m.loadavg.join(' / ')}; medians of per-round ratios`
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${y + 10}" viewBox="0 0 ${width} ${y + 10}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="#fff"/>
<text x="10" y="20" font-size="14" font-weight="bold">CORS proxies in front of the same upstream (dashed line: the reference, 1.00)</text>
<text x="10" y="36" fill="#555">${escape(machine)}</text>
<text x="10" y="52" fill="#555">${escape(method)}</text>
${parts.join('\n')}
</svg>
`
}

if (import.meta.main) {
  const [input, output] = process.argv.slice(2) as [string, string]
  writeFileSync(output, chart(JSON.parse(readFileSync(input, 'utf8')) as Report))
}
