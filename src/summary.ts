// The job summary: the HTML @actions/core's summary would write (<h3>, <table>, <ul>, a line
// each), rendered here and appended to GITHUB_STEP_SUMMARY with one write. core.summary reads
// fs.promises when it loads, which costs every run ~2 ms of start-up for a write at its end.
import { EOL } from 'node:os'
import { escapeHtml } from './core/inert.js'
import { formatPlatformFull, type Platform } from './core/platform.js'
import type { MergeResult } from './merge.js'

export const SUMMARY_HEADERS = ['platform', 'digest', 'size', 'source', 'attestations']

/** The table rows of one merge, one per index entry: each cell escaped HTML. */
export function summaryRows(r: MergeResult): string[][] {
  return r.children.map((c) =>
    [
      c.kind === 'image'
        ? formatPlatformFull(c.descriptor.platform as Platform)
        : `attestation of ${c.subject?.slice(7, 19) ?? '?'}`,
      c.descriptor.digest,
      String(c.descriptor.size),
      c.sourceInput,
      c.kind === 'image' ? (r.attestations[c.descriptor.digest] ?? 'none') : ''
    ].map((cell, i) => (i === 1 ? `<code>${escapeHtml(cell)}</code>` : escapeHtml(cell)))
  )
}

/** The heading of one merge's part: the image's number and first tag in a plan. */
export function summaryHeading(
  r: MergeResult,
  i: number,
  dryRun: boolean,
  fromPlan: boolean
): string {
  const title = dryRun ? 'multiarch-merge (dry run)' : 'multiarch-merge'
  return fromPlan ? `${title}: image ${i + 1} (${escapeHtml(r.tags[0]?.ref ?? '')})` : title
}

/** The summary of every merge of a run. Every cell is escaped, whatever it holds. */
export function renderSummary(results: MergeResult[], dryRun: boolean, fromPlan: boolean): string {
  let html = ''
  for (const [i, r] of results.entries()) {
    const table = [
      SUMMARY_HEADERS.map((h) => `<th>${h}</th>`),
      ...summaryRows(r).map((cells) => cells.map((cell) => `<td>${cell}</td>`))
    ]
      .map((cells) => `<tr>${cells.join('')}</tr>`)
      .join('')
    const items = r.tags.map((t) => `<li>${escapeHtml(`${t.ref}: ${t.outcome}`)}</li>`).join('')
    html += `<h3>${summaryHeading(r, i, dryRun, fromPlan)}</h3>${EOL}`
    html += `Index <code>${escapeHtml(r.index.digest)}</code> (${escapeHtml(r.index.mediaType)})${EOL}`
    html += `<table>${table}</table>${EOL}<ul>${items}</ul>${EOL}`
  }
  return html
}
