// The Markdown report (stdout): medians, the results table, ours beside its peers, the targets,
// startup figures and request mixes; and the BENCH_TIMELINE request timeline (stderr).
import { execFileSync } from 'node:child_process'
import os from 'node:os'
import { NODE } from '../__tests__/helpers/action.js'
import { isFailed, type Failed, type Sample } from './measure.js'
import { PEER_NAME, PEERS, versionOf, type PeerId } from './peers.js'
import type { PlanComparison } from './plan.js'
import { kindOf, type Hit } from './probe.js'
import type { Scenario } from './scenarios.js'
import { DELAY_MS, RUNS, TARGET_DELAY_MS } from './settings.js'
import type { BundleSize, StartupResult } from './startup.js'
import { PROTOCOLS, type TlsResult } from './tls-scenarios.js'

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}

export interface Result {
  scenario: Pick<Scenario, 'id' | 'title' | 'delayMs'>
  ours: Sample[]
  /** The peers that ran the scenario: their samples, or the one Failed that stopped them. */
  peers: Partial<Record<PeerId, Array<Sample | Failed>>>
}

/** Why a peer did not run at all (undefined: it ran). */
export type PeerStatus = Record<PeerId, string | undefined>

export const ms = (x: number): string => `${Math.round(x)}`
export const mib = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MiB`
const rts = (x: number, delay = DELAY_MS): string => (delay > 0 ? (x / delay).toFixed(1) : '—')
const ratio = (x: number): string => `${x.toFixed(2)}×`
const verdict = (ok: boolean): string => (ok ? 'met' : '**not met**')
const FAILED_CELL: Record<Failed['how'], string> = {
  cannot: 'cannot',
  failed: 'failed',
  wrong: 'wrong result'
}

/** A peer's median sample, or the Failed that stopped it, or undefined when it did not run. */
function peerOf(r: Result, peer: PeerId): Sample | Failed | undefined {
  const xs = r.peers[peer]
  if (!xs?.length) return undefined
  return xs.find(isFailed) ?? medianSample(xs as Sample[])
}

/** Our median wall time over a peer's, when the peer gave timings. */
function ratioTo(r: Result, peer: PeerId): number | undefined {
  const p = peerOf(r, peer)
  return p && !isFailed(p) ? medianSample(r.ours).wallMs / p.wallMs : undefined
}

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
  status: PeerStatus,
  plan?: PlanComparison,
  tls: TlsResult[] = []
) {
  const ran = PEERS.filter((p) => status[p] === undefined)
  const lines: string[] = []
  const delays = [...new Set(results.map((r) => r.scenario.delayMs))].filter((d) => d !== DELAY_MS)
  lines.push(
    `### multiarch-merge benchmark`,
    '',
    `${DELAY_MS} ms per request at the proxy` +
      (delays.length ? ` (${delays.join(', ')} ms in the rows that say so)` : '') +
      `, median of ${RUNS} run(s); node ${nodeVersion()}, ` +
      `${os.cpus().length} CPU(s), load average ${load[0].toFixed(1)} at the start and ` +
      `${load[1].toFixed(1)} at the end. Peers: ` +
      PEERS.map((p) => `${PEER_NAME[p]}: ${status[p] ?? versionOf(p)}`).join('; ') +
      '.',
    '',
    '| scenario | wall (ms) | requests | round trips (wall / delay) | round trips at the proxy | max in flight | peak RSS |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: |'
  )
  for (const r of results) {
    const o = medianSample(r.ours)
    const d = r.scenario.delayMs
    lines.push(
      `| ${r.scenario.title} | ${ms(o.wallMs)} | ${o.requests} | ${rts(o.wallMs, d)} | ${rts(o.spanMs, d)} | ${o.maxInFlight} | ${o.peakRss ? mib(o.peakRss) : '—'} |`
    )
  }
  const compared = results.filter((r) => ran.some((p) => r.peers[p]?.length))
  if (compared.length) lines.push('', ...peersSection(compared, ran))
  lines.push('', ...targetsSection(results, status))
  if (plan) lines.push('', ...planSection(plan))
  if (tls.length) lines.push('', ...httpsSection(tls))

  lines.push('', '#### Startup', '', '| measure | value |', '| --- | ---: |')
  lines.push(
    `| dist/index.js size, with the ${bundle.chunks} file(s) it requires as it loads | ${(bundle.bytes / 1024).toFixed(0)} KiB (${bundle.bytes} bytes) |`
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
    lines.push(`| ${r.scenario.title} | ${mixOf(medianSample(r.ours))} |`)
  }
  for (const r of tls)
    for (const p of PROTOCOLS)
      lines.push(`| HTTPS, ${p}: ${r.scenario.title} | ${mixOf(medianSample(r.runs[p]))} |`)
  for (const peer of ran) {
    const rows = results.flatMap((r) => {
      const p = peerOf(r, peer)
      return p && !isFailed(p) ? [`| ${r.scenario.title} | ${mixOf(p)} |`] : []
    })
    if (!rows.length) continue
    lines.push('', `#### Request mix of ${PEER_NAME[peer]} (the median run)`, '')
    lines.push('| scenario | requests by kind |', '| --- | --- |', ...rows)
  }
  console.log(lines.join('\n'))
}

const mixOf = (s: Sample): string =>
  [...s.kinds]
    .sort((x, y) => y[1] - x[1])
    .map(([k, n]) => `${n}× ${k}`)
    .join(', ')

/** Ours beside each peer that ran: wall time, requests, and our wall time over the peer's. */
function peersSection(results: Result[], ran: readonly PeerId[]): string[] {
  const lines = [
    '#### Ours and its peers',
    '',
    `Each peer merges the same sources into a new target, through a new proxy with the same ` +
      `delay, right after each of our runs (median of ${RUNS}; a peer that fails, cannot take ` +
      `the sources or pushes something other than the expected index is run once and not timed).`,
    '',
    `| scenario | ours wall (ms) | ours requests | ${ran.map((p) => `${PEER_NAME[p]} wall (ms) | ${PEER_NAME[p]} requests | ours / ${PEER_NAME[p]}`).join(' | ')} |`,
    `| --- | ---: | ---: | ${ran.map(() => '---: | ---: | ---:').join(' | ')} |`
  ]
  const notes: string[] = []
  for (const r of results) {
    const o = medianSample(r.ours)
    const cells = ran.map((peer) => {
      const p = peerOf(r, peer)
      if (!p) return '— | — | —'
      if (isFailed(p)) {
        notes.push(`- ${r.scenario.title}: ${PEER_NAME[peer]} ${FAILED_CELL[p.how]}: ${p.failed}`)
        return `${FAILED_CELL[p.how]} | — | —`
      }
      return `${ms(p.wallMs)} | ${p.requests} | ${ratio(o.wallMs / p.wallMs)}`
    })
    lines.push(`| ${r.scenario.title} | ${ms(o.wallMs)} | ${o.requests} | ${cells.join(' | ')} |`)
  }
  if (notes.length) lines.push('', ...notes)
  return lines
}

/** The issue's two targets against the peers, and whether each is met. */
function targetsSection(results: Result[], status: PeerStatus): string[] {
  const lines = ['#### Targets', '', '| target | measured | verdict |', '| --- | --- | --- |']
  const two = results.find((r) => r.scenario.id === `same-2-at-${TARGET_DELAY_MS}ms`)
  const docker = two && ratioTo(two, 'docker')
  const dockerPeer = two && peerOf(two, 'docker')
  let measured = 'not measured'
  if (!two) measured = `not measured (scenario \`same-2-at-${TARGET_DELAY_MS}ms\` not selected)`
  else if (status.docker) measured = `not measured (docker manifest ${status.docker})`
  else if (dockerPeer && isFailed(dockerPeer))
    measured = `docker manifest ${FAILED_CELL[dockerPeer.how]}`
  else if (docker !== undefined && dockerPeer && !isFailed(dockerPeer))
    measured = `${ratio(docker)} (ours ${ms(medianSample(two.ours).wallMs)} ms, docker manifest ${ms(dockerPeer.wallMs)} ms)`
  lines.push(
    `| ours ≤ 1.0× docker manifest, 2 sources, ${TARGET_DELAY_MS} ms per request | ${measured} | ${docker === undefined ? '—' : verdict(docker <= 1)} |`
  )
  const vsBuildah = results.flatMap((r) => {
    const x = ratioTo(r, 'buildah')
    return x === undefined ? [] : [{ id: r.scenario.id, x }]
  })
  const failedBuildah = results.filter((r) => {
    const p = peerOf(r, 'buildah')
    return p && isFailed(p)
  })
  if (vsBuildah.length) {
    const worst = vsBuildah.reduce((w, v) => (v.x > w.x ? v : w))
    const each = vsBuildah.map((v) => `${v.id} ${ratio(v.x)}`).join(', ')
    const also = failedBuildah.length
      ? `; buildah gave no timing for ${failedBuildah.map((r) => r.scenario.id).join(', ')}`
      : ''
    lines.push(
      `| ours ≤ 0.5× buildah in every scenario buildah runs | worst ${ratio(worst.x)} (${worst.id}); ${each}${also} | ${verdict(worst.x <= 0.5)} |`
    )
  } else {
    lines.push(
      `| ours ≤ 0.5× buildah in every scenario buildah runs | not measured${status.buildah ? ` (buildah ${status.buildah})` : ''} | — |`
    )
  }
  return lines
}

/** The release-plan scenario: one plan run against the same merges as separate runs. */
function planSection(c: PlanComparison): string[] {
  const p = medianSample(c.plan.ours)
  const s = medianSample(c.separate.ours)
  const wall = p.wallMs / s.wallMs
  const req = p.requests / s.requests
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

/** The HTTPS scenarios: each measured run made with HTTP/2 and with HTTP/1.1, side by side. */
function httpsSection(results: TlsResult[]): string[] {
  const lines = [
    '#### HTTPS: HTTP/2 against HTTP/1.1',
    '',
    `The registries behind TLS fronts that offer h2 and HTTP/1.1 (ALPN), ${DELAY_MS} ms per ` +
      `request and 2 × ${DELAY_MS} ms per new connection; each run made with HTTP/2 (the default) ` +
      `and with \`MULTIARCH_MERGE_HTTP2=false\` (HTTP/1.1), median of ${RUNS} run(s) each.`,
    '',
    '| scenario | h2 wall (ms) | h1 wall (ms) | h2 / h1 | h2 requests | h1 requests | h2 TLS connections | h1 TLS connections | h2 peak RSS | h1 peak RSS |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |'
  ]
  const notes: string[] = []
  for (const r of results) {
    const [h2, h1] = PROTOCOLS.map((p) => medianSample(r.runs[p]))
    const [c2, c1] = PROTOCOLS.map((p) => median(r.runs[p].map((s) => s.tls)))
    const rss = (s: Sample): string => (s.peakRss ? mib(s.peakRss) : '—')
    lines.push(
      `| ${r.scenario.title} | ${ms(h2.wallMs)} | ${ms(h1.wallMs)} | ${ratio(h2.wallMs / h1.wallMs)} | ${h2.requests} | ${h1.requests} | ${c2} | ${c1} | ${rss(h2)} | ${rss(h1)} |`
    )
    for (const p of PROTOCOLS) {
      const retries = r.runs[p].reduce((n, s) => n + (s.retries ?? 0), 0)
      if (retries) notes.push(`- ${r.scenario.title}, ${p}: ${retries} retries in all its runs.`)
    }
  }
  if (notes.length) lines.push('', ...notes)
  return lines
}

/** The version of the node that runs ours (MAM_E2E_NODE when set), not the bench's own. */
function nodeVersion(): string {
  try {
    return execFileSync(NODE, ['--version'], { encoding: 'utf8' }).trim()
  } catch {
    return `${NODE} (version unknown)`
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
