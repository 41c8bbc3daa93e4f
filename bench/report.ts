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
  // Issue 16: ahead of every Node.js peer on every case; on small POSTs by 1.5 ×. Per round, the
  // sidecar against the best Node.js peer of that round; rows only when a Node.js peer ran.
  const best = (c: CaseName, f: Field, lower: boolean): number | undefined => {
    const peers = NODE_PEERS.map((p) => get(c, p)).filter((xs) => xs.length > 0)
    if (peers.length === 0) return undefined
    return median(get(c, 'sidecar').map((x, i) => {
      // One sample per round for every target: runBench measures each of them in every round.
      const figures = peers.map((xs) => (xs[i] as Sample)[f] as number)
      return (x[f] as number) / (lower ? Math.min(...figures) : Math.max(...figures))
    }))
  }
  const bestPeer = times('best Node.js peer')
  const ahead = [
    ['small', 'req/s', 'rps', false, '≥ 1.5 × best Node.js peer', (r: number) => r >= 1.5],
    ['preflight', 'req/s', 'rps', false, '> 1 × best Node.js peer', (r: number) => r > 1],
    ['ai', 'req/s', 'rps', false, '> 1 × best Node.js peer', (r: number) => r > 1],
    ['stream', 'time ms', 'ms', true, '< 1 × best Node.js peer', (r: number) => r < 1]
  ] as const
  for (const [c, measure, f, lower, target, pass] of ahead) {
    const r = best(c, f, lower)
    if (r !== undefined) row(c, `7 vs Node.js peers (${c})`, measure, f, r, bestPeer, target, pass)
  }
  return rows
}

/** The peers that are Node.js programs, which the sidecar is to be ahead of (docs/BENCHMARKS.md, "Targets"). */
export const NODE_PEERS: readonly TargetName[] = ['fastify', 'vite', 'express']

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
    ...rows.map((r) => `| ${columns(r).join(' | ')} |`),
    '',
    'Every target per case: the median figure, and in brackets its median per-round ratio against nginx ' +
      '(small POSTs, preflights, CPU) or direct (AI-shaped, stream), or for p99 the milliseconds added over direct.',
    '',
    peersMarkdown(report)
  ]
  return lines.join('\n')
}

export const BEGIN = '<!-- bench:results -->'
export const END = '<!-- /bench:results -->'

/** Replaces what lies between the markers (the rest of the document is written by hand). */
export function replaceResults (doc: string, markdown: string, begin = BEGIN, end = END): string {
  const from = doc.indexOf(begin)
  const to = doc.indexOf(end)
  if (from === -1 || to < from) throw new Error(`the document has no ${begin} … ${end} block`)
  return `${doc.slice(0, from + begin.length)}\n${markdown}\n${doc.slice(to)}`
}

/** Every target of the run, in this order, with the name its users know it by . */
export const TARGET_LABELS: Readonly<Record<TargetName, string>> = {
  direct: 'direct (no proxy)',
  nginx: 'nginx',
  haproxy: 'HAProxy',
  caddy: 'Caddy',
  floor: 'node floor (bench/floor.ts)',
  sidecar: 'this sidecar',
  fastify: 'fastify + @fastify/cors + @fastify/reply-from',
  vite: 'Vite dev-server proxy',
  express: 'express + cors + http-proxy-middleware'
}

export interface Cell {
  value: number | undefined
  /** Against nginx (throughput cases) or direct (latency and stream cases), paired per round. */
  ratio: number | undefined
  text: string
}

export interface TargetRow { target: TargetName; label: string; cells: Cell[] }

export interface PeerColumn {
  head: string
  case: CaseName | 'idle'
  field: Field | 'idle'
  /** What the ratio (the difference, for p99) is taken against; none for an amount. */
  against?: TargetName
}

/** The columns of the per-target table, for the cases the run measured. */
export function peerColumns (report: Report): PeerColumn[] {
  const all: PeerColumn[] = [
    { head: 'small POST req/s (× nginx)', case: 'small', field: 'rps', against: 'nginx' },
    { head: 'preflight req/s (× nginx)', case: 'preflight', field: 'rps', against: 'nginx' },
    { head: 'AI-shaped req/s (× direct)', case: 'ai', field: 'rps', against: 'direct' },
    { head: 'AI-shaped p99 ms (+ms over direct)', case: 'ai', field: 'p99', against: 'direct' },
    { head: 'stream ms (× direct)', case: 'stream', field: 'ms', against: 'direct' },
    { head: 'stream peak RSS +MB', case: 'stream', field: 'growth' },
    { head: 'CPU s / 10k small POSTs (× nginx)', case: 'small', field: 'cpu10k', against: 'nginx' },
    { head: 'idle RSS MB', case: 'idle', field: 'idle' }
  ]
  return all.filter((c) => c.case === 'idle' || report.samples[c.case] !== undefined)
}

/**
 * Every target per case: its median figure and its ratio against nginx (small POSTs,
 * preflights, CPU) or direct (AI-shaped, stream), from per-round pairs like the main table; for
 * p99, the milliseconds added over direct.
 */
export function peerRows (report: Report): TargetRow[] {
  const columns = peerColumns(report)
  const get = (c: CaseName, t: TargetName): Sample[] => report.samples[c]?.[t] ?? []
  const present = (t: TargetName): boolean => report.idle.targets?.[t] !== undefined || Object.values(report.samples).some((s) => (s?.[t]?.length ?? 0) > 0)
  const paren = (r: number | undefined, text: (r: number) => string): string => r === undefined ? '–' : text(r)
  const cell = (t: TargetName, col: PeerColumn): Cell => {
    if (col.case === 'idle') {
      const mb = report.idle.targets?.[t]
      return { value: mb, ratio: undefined, text: mb === undefined ? '–' : mb.toFixed(0) }
    }
    const c = col.case
    const f = col.field as Field
    const value = median(get(c, t).map((s) => s[f] as number))
    if (value === undefined) return { value, ratio: undefined, text: '–' }
    if (col.against === undefined) return { value, ratio: undefined, text: `+${value.toFixed(0)}` }
    const ys = get(c, col.against)
    const op = f === 'p99' ? (x: number, y: number): number => x - y : (x: number, y: number): number => x / y
    const ratio = median(get(c, t).slice(0, ys.length).map((x, i) => op(x[f] as number, (ys[i] as Sample)[f] as number)))
    const text = f === 'p99' ? paren(ratio, (r) => `${r >= 0 ? '+' : '−'}${Math.abs(r).toFixed(1)}`) : paren(ratio, (r) => r.toFixed(2))
    return { value, ratio, text: `${num(value)} (${text})` }
  }
  const label = (t: TargetName): string => {
    const version = report.meta.versions?.[t]
    return version === undefined ? TARGET_LABELS[t] : `${TARGET_LABELS[t]} (${version})`
  }
  return (Object.keys(TARGET_LABELS) as TargetName[]).filter(present).map((t) => ({ target: t, label: label(t), cells: columns.map((col) => cell(t, col)) }))
}

function peerTable (report: Report, rows: TargetRow[]): string[][] {
  return [['target', ...peerColumns(report).map((c) => c.head)], ...rows.map((r) => [r.label, ...r.cells.map((c) => c.text)])]
}

/** The per-target table for the terminal. */
export function formatPeers (report: Report, rows = peerRows(report)): string {
  return aligned(peerTable(report, rows))
}

/** The per-target table in Markdown. */
export function peersMarkdown (report: Report, rows = peerRows(report)): string {
  const [head, ...body] = peerTable(report, rows) as [string[], ...string[][]]
  return [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...body.map((r) => `| ${r.join(' | ')} |`)].join('\n')
}
