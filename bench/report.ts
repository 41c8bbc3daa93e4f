// The benchmark's answer: each case of docs/BENCHMARKS.md as a ratio against its target, from paired per-round
// figures (target A and B measured back to back in the same round, then the median over rounds),
// which cancels most of a shared machine's drift. A plain table for the terminal, Markdown for docs.
import type { CaseName, Report, Sample, TargetName } from './harness.ts'

export interface Row {
  case: string
  measure: string
  direct: number | undefined
  sidecar: number | undefined
  /** bench/floor.ts: the least a Node.js proxy does on the same path. */
  floor: number | undefined
  nginx: number | undefined
  /** What is compared with the target: a ratio or an amount, depending on the row. */
  result: number | undefined
  resultText: string
  target: string
  pass: boolean | undefined
}

export function median (xs: number[]): number | undefined {
  if (xs.length === 0) return undefined
  const s = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[mid] : ((s[mid - 1] as number) + (s[mid] as number)) / 2
}

type Field = keyof Sample

export function summarise (report: Report): Row[] {
  const get = (c: CaseName, t: TargetName): Sample[] => report.samples[c]?.[t] ?? []
  const med = (c: CaseName, t: TargetName, f: Field): number | undefined => median(get(c, t).map((s) => s[f] as number))
  /** Per-round pairs of `a` and `b`, combined, then the median over rounds. */
  const paired = (c: CaseName, a: TargetName, b: TargetName, f: Field, op: (x: number, y: number) => number): number | undefined => {
    const xs = get(c, a)
    const ys = get(c, b)
    return median(xs.slice(0, ys.length).map((x, i) => op(x[f] as number, (ys[i] as Sample)[f] as number)))
  }
  const ratio = (x: number, y: number): number => x / y
  const minus = (x: number, y: number): number => x - y
  const rows: Row[] = []
  const row = (c: CaseName, label: string, measure: string, f: Field, result: number | undefined, resultText: (r: number) => string, target: string, pass: ((r: number) => boolean) | undefined): void => {
    if (report.samples[c] === undefined) return
    rows.push({
      case: label,
      measure,
      direct: med(c, 'direct', f),
      sidecar: med(c, 'sidecar', f),
      floor: med(c, 'floor', f),
      nginx: med(c, 'nginx', f),
      result,
      resultText: result === undefined ? 'n/a (no nginx)' : resultText(result),
      target,
      pass: result === undefined || pass === undefined ? undefined : pass(result)
    })
  }
  const times = (of: string) => (r: number): string => `${r.toFixed(3)} × ${of}`
  const signed = new Intl.NumberFormat('en', { signDisplay: 'always', minimumFractionDigits: 2, maximumFractionDigits: 2 })
  const plusMs = (r: number): string => `${signed.format(r)} ms`

  row('ai', '1 AI-shaped', 'req/s', 'rps', paired('ai', 'sidecar', 'direct', 'rps', ratio), times('direct'), '≥ 0.98 × direct', (r) => r >= 0.98)
  row('ai', '1 AI-shaped', 'p99 ms', 'p99', paired('ai', 'sidecar', 'direct', 'p99', minus), plusMs, '≤ +1 ms', (r) => r <= 1)
  row('ai', '1 AI-shaped (nginx)', 'req/s', 'rps', paired('ai', 'nginx', 'direct', 'rps', ratio), times('direct'), 'reference', undefined)
  row('ai', '1 AI-shaped (nginx)', 'p99 ms', 'p99', paired('ai', 'nginx', 'direct', 'p99', minus), plusMs, 'reference', undefined)
  // The node floor rows hold Node itself to the same targets: where the floor fails one too, the
  // target is beyond Node on that path, whatever the sidecar does.
  row('ai', '1 AI-shaped (node floor)', 'req/s', 'rps', paired('ai', 'floor', 'direct', 'rps', ratio), times('direct'), 'reference', undefined)
  row('ai', '1 AI-shaped (node floor)', 'p99 ms', 'p99', paired('ai', 'floor', 'direct', 'p99', minus), plusMs, 'reference', undefined)
  row('small', '2 small POST', 'req/s', 'rps', paired('small', 'sidecar', 'nginx', 'rps', ratio), times('nginx'), '≥ 0.5 × nginx', (r) => r >= 0.5)
  row('small', '2 small POST', 'p99 ms', 'p99', paired('small', 'sidecar', 'nginx', 'p99', minus), plusMs, 'reference', undefined)
  row('small', '2 small POST (node floor)', 'req/s', 'rps', paired('small', 'floor', 'nginx', 'rps', ratio), times('nginx'), 'reference', undefined)
  row('preflight', '3 preflight', 'req/s', 'rps', paired('preflight', 'sidecar', 'nginx', 'rps', ratio), times('nginx'), '≥ 0.5 × nginx', (r) => r >= 0.5)
  row('preflight', '3 preflight (node floor)', 'req/s', 'rps', paired('preflight', 'floor', 'nginx', 'rps', ratio), times('nginx'), 'reference', undefined)
  row('stream', '4 stream', 'time ms', 'ms', paired('stream', 'sidecar', 'direct', 'ms', ratio), times('direct'), '≤ 1.3 × direct', (r) => r <= 1.3)
  row('stream', '4 stream', 'peak RSS +MB', 'growth', med('stream', 'sidecar', 'growth'), (r) => `+${r.toFixed(1)} MB`, '≤ 16 MB', (r) => r <= 16)
  row('stream', '4 stream (node floor)', 'time ms', 'ms', paired('stream', 'floor', 'direct', 'ms', ratio), times('direct'), 'reference', undefined)
  row('stream', '4 stream (node floor)', 'peak RSS +MB', 'growth', med('stream', 'floor', 'growth'), (r) => `+${r.toFixed(1)} MB`, 'reference', undefined)
  rows.push({
    case: '5 idle RSS',
    measure: 'MB',
    direct: undefined,
    sidecar: report.idle.start,
    floor: report.idle.floor,
    nginx: undefined,
    result: report.idle.start,
    resultText: `${report.idle.start.toFixed(1)} MB (${report.idle.end.toFixed(1)} after load)`,
    target: '≤ 60 MB',
    pass: report.idle.start <= 60
  })
  row('small', '6 CPU / 10k req', 'CPU s', 'cpu10k', paired('small', 'sidecar', 'nginx', 'cpu10k', ratio), times('nginx'), 'report', undefined)
  row('preflight', '6 CPU / 10k preflights', 'CPU s', 'cpu10k', paired('preflight', 'sidecar', 'nginx', 'cpu10k', ratio), times('nginx'), 'report', undefined)
  // What the sidecar's features and framework cost over the least Node does, per request.
  row('small', '6 CPU / 10k req (over floor)', 'CPU s', 'cpu10k', paired('small', 'sidecar', 'floor', 'cpu10k', ratio), times('floor'), 'report', undefined)
  row('preflight', '6 CPU / 10k preflights (over floor)', 'CPU s', 'cpu10k', paired('preflight', 'sidecar', 'floor', 'cpu10k', ratio), times('floor'), 'report', undefined)
  return rows
}

const num = (n: number | undefined): string => n === undefined ? '–' : n >= 100 ? n.toFixed(0) : n.toFixed(2)
const verdict = (p: boolean | undefined): string => p === undefined ? '' : p ? 'PASS' : 'FAIL'

function columns (r: Row): string[] {
  return [r.case, r.measure, num(r.direct), num(r.sidecar), num(r.floor), num(r.nginx), r.resultText, r.target, verdict(r.pass)]
}

const HEAD = ['case', 'measure', 'direct', 'sidecar', 'floor', 'nginx', 'result', 'target', '']

/** Rows of cells as plain-text columns, each as wide as its widest cell, two spaces apart. */
export function aligned (rows: readonly (readonly string[])[]): string {
  const widths: number[] = []
  for (const r of rows) r.forEach((c, i) => { widths[i] = Math.max(widths[i] ?? 0, c.length) })
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i] as number)).join('  ').trimEnd()).join('\n')
}

export function formatTable (rows: Row[]): string {
  return aligned([HEAD, ...rows.map(columns)])
}

export function formatMarkdown (report: Report, rows: Row[]): string {
  const m = report.meta
  const lines = [
    `Run of ${m.date}: Node ${m.node}, load by ${m.loader}, ${m.cpus} CPUs${m.pinned ? ' (servers pinned to core 0, load to core 1)' : ' (not pinned)'}, ` +
      `${m.rounds} rounds × ${m.seconds} s per target and case, ${m.connections} connections, ${m.streamMB} MB streamed, ` +
      `load average at the end ${m.loadavg.join(' / ')}${m.nginx ? '' : ', nginx not installed'}. Figures are medians over rounds.`,
    '',
    `| ${HEAD.map((h) => h === '' ? 'verdict' : h).join(' | ')} |`,
    `|${HEAD.map(() => '---').join('|')}|`,
    ...rows.map((r) => `| ${columns(r).join(' | ')} |`)
  ]
  return lines.join('\n')
}

export const BEGIN = '<!-- bench:results -->'
export const END = '<!-- /bench:results -->'

/** Replaces what lies between the markers (the rest of the document is written by hand). */
export function replaceResults (doc: string, markdown: string): string {
  const from = doc.indexOf(BEGIN)
  const to = doc.indexOf(END)
  if (from === -1 || to < from) throw new Error(`the document has no ${BEGIN} … ${END} block`)
  return `${doc.slice(0, from + BEGIN.length)}\n${markdown}\n${doc.slice(to)}`
}
