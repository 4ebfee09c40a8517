// The Markdown report (stdout): medians, the results table, startup figures and request mix; and
// the BENCH_TIMELINE request timeline (stderr).
import { execFileSync } from 'node:child_process'
import os from 'node:os'
import { NODE } from '../__tests__/helpers/action.js'
import { isFailed, type Failed, type Sample } from './measure.js'
import type { PlanComparison } from './plan.js'
import { kindOf, type Hit } from './probe.js'
import type { Scenario } from './scenarios.js'
import { BUILDAH, DELAY_MS, RUNS } from './settings.js'
import type { BundleSize, StartupResult } from './startup.js'

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}

export interface Result {
  scenario: Pick<Scenario, 'id' | 'title'>
  ours: Sample[]
  buildah: Array<Sample | Failed>
}

export const ms = (x: number): string => `${Math.round(x)}`
export const mib = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MiB`
const rts = (x: number): string => (DELAY_MS > 0 ? (x / DELAY_MS).toFixed(1) : '—')

export function medianSample(samples: Sample[]): Sample {
  const pick = (f: (s: Sample) => number): number => median(samples.map(f))
  // The request mix of the run with the median wall time.
  const byWall = [...samples].sort((x, y) => x.wallMs - y.wallMs)[samples.length >> 1]
  return {
    wallMs: pick((s) => s.wallMs),
    requests: pick((s) => s.requests),
    spanMs: pick((s) => s.spanMs),
    maxInFlight: pick((s) => s.maxInFlight),
    peakRss: samples.every((s) => s.peakRss !== undefined) ? pick((s) => s.peakRss!) : undefined,
    kinds: byWall.kinds,
    hits: byWall.hits
  }
}

export function report(
  results: Result[],
  startup: StartupResult | undefined,
  bundle: BundleSize,
  load: [number, number],
  plan?: PlanComparison
) {
  const lines: string[] = []
  lines.push(
    `### multiarch-merge benchmark`,
    '',
    `${DELAY_MS} ms per request at the proxy, median of ${RUNS} run(s); node ${nodeVersion()}, ` +
      `${os.cpus().length} CPU(s), load average ${load[0].toFixed(1)} at the start and ` +
      `${load[1].toFixed(1)} at the end${BUILDAH ? `; ${buildahVersion()}` : '; buildah not run'}.`,
    '',
    '| scenario | wall (ms) | requests | round trips (wall / delay) | round trips at the proxy | max in flight | peak RSS | buildah wall (ms) | buildah requests | ours / buildah |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |'
  )
  for (const r of results) {
    const o = medianSample(r.ours)
    let bw = '—'
    let breq = '—'
    let ratio = '—'
    if (r.buildah.length) {
      const failed = r.buildah.find(isFailed)
      if (failed) {
        bw = 'buildah failed'
        breq = '—'
        ratio = 'buildah failed'
      } else {
        const b = medianSample(r.buildah as Sample[])
        bw = ms(b.wallMs)
        breq = String(b.requests)
        ratio = `${(o.wallMs / b.wallMs).toFixed(2)}×`
      }
    }
    lines.push(
      `| ${r.scenario.title} | ${ms(o.wallMs)} | ${o.requests} | ${rts(o.wallMs)} | ${rts(o.spanMs)} | ${o.maxInFlight} | ${o.peakRss ? mib(o.peakRss) : '—'} | ${bw} | ${breq} | ${ratio} |`
    )
  }
  const failures = results.flatMap((r) =>
    r.buildah.filter(isFailed).map((f) => `- ${r.scenario.title}: buildah failed: ${f.failed}`)
  )
  if (failures.length) lines.push('', ...new Set(failures))
  if (plan) lines.push('', ...planSection(plan))

  lines.push('', '#### Startup', '', '| measure | value |', '| --- | ---: |')
  lines.push(
    `| dist/index.js size, with the ${bundle.chunks} chunk(s) it imports | ${(bundle.bytes / 1024).toFixed(0)} KiB (${bundle.bytes} bytes) |`
  )
  if (startup) {
    lines.push(
      `| \`node -e 0\`: spawn to exit | ${ms(startup.nodeExitMs)} ms |`,
      `| bare node (one http.get): spawn to first request at the proxy | ${ms(startup.nodeFirstRequestMs)} ms |`,
      `| node dist/index.js: spawn to first request at the proxy | ${ms(startup.actionFirstRequestMs)} ms |`,
      `| node dist/index.js: startup over bare node | ${ms(startup.actionFirstRequestMs - startup.nodeFirstRequestMs)} ms |`,
      `| node dist/index.js: last response to exit | ${ms(startup.actionTailMs)} ms |`,
      `| node dist/index.js: spawn to exit (skip path, no delay) | ${ms(startup.actionExitMs)} ms |`
    )
  }

  lines.push('', '#### Request mix of our runs (the median run)', '')
  lines.push('| scenario | requests by kind |', '| --- | --- |')
  for (const r of results) {
    const o = medianSample(r.ours)
    const mix = [...o.kinds]
      .sort((x, y) => y[1] - x[1])
      .map(([k, n]) => `${n}× ${k}`)
      .join(', ')
    lines.push(`| ${r.scenario.title} | ${mix} |`)
  }
  if (BUILDAH) {
    lines.push('', '#### Request mix of buildah (the median run)', '')
    lines.push('| scenario | requests by kind |', '| --- | --- |')
    for (const r of results) {
      if (!r.buildah.length || r.buildah.some(isFailed)) continue
      const b = medianSample(r.buildah as Sample[])
      const mix = [...b.kinds]
        .sort((x, y) => y[1] - x[1])
        .map(([k, n]) => `${n}× ${k}`)
        .join(', ')
      lines.push(`| ${r.scenario.title} | ${mix} |`)
    }
  }
  console.log(lines.join('\n'))
}

/** The release-plan scenario: one plan run against the same merges as separate runs. */
function planSection(c: PlanComparison): string[] {
  const p = medianSample(c.plan.ours)
  const s = medianSample(c.separate.ours)
  const wall = p.wallMs / s.wallMs
  const req = p.requests / s.requests
  const verdict = (ok: boolean): string => (ok ? 'met' : '**not met**')
  return [
    `#### Release plan: ${c.images} images in one run vs ${c.images} separate runs`,
    '',
    `${c.images} images, each in its own repository, ${c.sources} attestation-wrapped sources in all, ` +
      `staging → release repository (every blob mounted), ${c.tags / c.images} tags each. ` +
      `One plan: \`node dist/cli.js --plan FILE\`, one process. Separate: ${c.images} runs of ` +
      `\`node dist/cli.js -t TAG -t TAG SOURCE...\`, one per image, one after the other (as a ` +
      `pipeline with one step per image runs them), wall time from the first spawn to the last exit. ` +
      `Both through the same ${DELAY_MS} ms proxy, median of ${RUNS} run(s) each.`,
    '',
    '| | one plan | separate runs | plan / separate | target |',
    '| --- | ---: | ---: | ---: | --- |',
    `| wall (ms) | ${ms(p.wallMs)} | ${ms(s.wallMs)} | ${wall.toFixed(2)}× | ≤ 0.5×: ${verdict(wall <= 0.5)} |`,
    `| requests | ${p.requests} | ${s.requests} | ${req.toFixed(2)}× | ≤ 1×: ${verdict(req <= 1)} |`,
    `| round trips at the proxy | ${rts(p.spanMs)} | ${rts(s.spanMs)} | ${p.spanMs && s.spanMs ? `${(p.spanMs / s.spanMs).toFixed(2)}×` : '—'} | |`,
    `| peak RSS | ${p.peakRss ? mib(p.peakRss) : '—'} | ${s.peakRss ? `${mib(s.peakRss)} (largest run)` : '—'} | | |`,
    '',
    `Index digests: the same from the plan and from the separate runs for every image, on all ` +
      `${c.tags} tags of each side, in every run (checked): ${c.digests.map((d) => `\`${d.slice(7, 19)}\``).join(', ')}.`
  ]
}

/** The version of the node that runs ours (MAM_E2E_NODE when set), not the bench's own. */
function nodeVersion(): string {
  try {
    return execFileSync(NODE, ['--version'], { encoding: 'utf8' }).trim()
  } catch {
    return `${NODE} (version unknown)`
  }
}

function buildahVersion(): string {
  try {
    return execFileSync('buildah', ['--version'], { encoding: 'utf8' }).trim()
  } catch {
    return 'buildah (version unknown)'
  }
}

/** BENCH_TIMELINE=1: every request of the median run, in ms from the first arrival (stderr). */
export function printTimeline(id: string, hits: Hit[]): void {
  const t0 = Math.min(...hits.map((h) => h.arrived))
  const rows = [...hits]
    .sort((x, y) => x.arrived - y.arrived)
    .map(
      (h) =>
        `  ${ms(h.arrived - t0).padStart(6)} → ${(h.done === undefined ? '?' : ms(h.done - t0)).padStart(6)}  ${kindOf(h.method, h.path).padEnd(14)} ${h.path.split('?')[0]}`
    )
  process.stderr.write(`[bench] ${id}: timeline of the median run\n${rows.join('\n')}\n`)
}
