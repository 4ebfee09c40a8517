// The job summary is the HTML @actions/core's summary writes for the same content, escaped.
import { describe, expect, it } from '@jest/globals'
import { summary } from '@actions/core'
import type { Child } from '../../src/core/children.js'
import { escapeHtml } from '../../src/core/inert.js'
import type { MergeResult } from '../../src/merge.js'
import { renderSummary, SUMMARY_HEADERS, summaryHeading, summaryRows } from '../../src/summary.js'

const IMAGE = `sha256:${'a'.repeat(64)}`
const ATTESTATION = `sha256:${'b'.repeat(64)}`
const INDEX = `sha256:${'c'.repeat(64)}`

function result(tag: string, source: string): MergeResult {
  const children: Child[] = [
    {
      kind: 'image',
      descriptor: {
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        digest: IMAGE,
        size: 1234,
        platform: { os: 'linux', architecture: 'arm64', variant: 'v8' }
      },
      source: { registry: 'r.example', repository: 'app' },
      sourceInput: source
    },
    {
      kind: 'attestation',
      descriptor: {
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        digest: ATTESTATION,
        size: 567,
        platform: { os: 'unknown', architecture: 'unknown' }
      },
      source: { registry: 'r.example', repository: 'app' },
      sourceInput: source,
      subject: IMAGE
    }
  ]
  return {
    index: {
      bytes: new Uint8Array(),
      json: '{}',
      digest: INDEX,
      mediaType: 'application/vnd.oci.image.index.v1+json'
    },
    children,
    decisions: [],
    images: [`r.example/app@${INDEX}`],
    tags: [
      { ref: tag, outcome: 'pushed' },
      { ref: 'r.example/app:latest', outcome: 'unchanged' }
    ],
    platforms: ['linux/arm64/v8'],
    platformDigests: { 'linux/arm64/v8': IMAGE },
    attestations: { [IMAGE]: 'kept (1)' }
  }
}

/**
 * The same rows and headings laid out by @actions/core's summary (what the action used before it
 * rendered its own): the HTML around the cells must be the same.
 */
function toolkitSummary(results: MergeResult[], dryRun: boolean, fromPlan: boolean): string {
  summary.emptyBuffer()
  for (const [i, r] of results.entries()) {
    summary
      .addHeading(summaryHeading(r, i, dryRun, fromPlan), 3)
      .addRaw(
        `Index <code>${escapeHtml(r.index.digest)}</code> (${escapeHtml(r.index.mediaType)})`,
        true
      )
      .addTable([SUMMARY_HEADERS.map((data) => ({ data, header: true })), ...summaryRows(r)])
      .addList(r.tags.map((t) => escapeHtml(`${t.ref}: ${t.outcome}`)))
  }
  const html = summary.stringify()
  summary.emptyBuffer()
  // The toolkit leaves an empty cell open (`<td></tr>`, valid HTML: td's end tag may be left
  // out); ours closes it.
  return html.replaceAll('<td></tr>', '<td></td></tr>')
}

describe('renderSummary', () => {
  it('writes what @actions/core summary writes: heading, index line, table, tag list', () => {
    const r = [result('r.example/app:1.0', 'r.example/app:arm64')]
    const html = renderSummary(r, false, false)
    expect(html).toBe(toolkitSummary(r, false, false))
    expect(html).toContain(
      `<tr><td>linux/arm64/v8</td><td><code>${IMAGE}</code></td><td>1234</td><td>r.example/app:arm64</td><td>kept (1)</td></tr>`
    )
    expect(html).toContain('<li>r.example/app:latest: unchanged</li>')
  })

  it('a heading per image of a plan, dry runs titled so', () => {
    const r = [result('r.example/a:1', 'r.example/a:x'), result('r.example/b:1', 'r.example/b:y')]
    const html = renderSummary(r, true, true)
    expect(html).toBe(toolkitSummary(r, true, true))
    expect(html).toContain('<h3>multiarch-merge (dry run): image 2 (r.example/b:1)</h3>')
  })

  it('escapes every cell, whatever a source or registry holds', () => {
    const r = [result('r.example/app:<b>1</b>', 'r.example/app:<img src=x onerror=alert(1)>')]
    const html = renderSummary(r, false, true)
    expect(html).toBe(toolkitSummary(r, false, true))
    expect(html).not.toContain('<img')
    expect(html).not.toContain('<b>')
    expect(html).toContain('&lt;img src=x onerror=alert(1)&gt;')
  })
})
