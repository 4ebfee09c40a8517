// `npm run bench`: runs the bundled action (node dist/index.js, as a runner does) against real
// Distribution registries behind a latency proxy, and prints a Markdown table of wall time,
// requests and round trips per scenario, compared with its peers (buildah's, docker's and
// podman's manifest commands) on the same registries behind the same kind of proxy. Progress goes
// to stderr; stdout is only the Markdown report. See bench/README.md.
import os from 'node:os'
import { performance } from 'node:perf_hooks'
import { DIST } from '../__tests__/helpers/action.js'
import { startRegistry } from '../__tests__/helpers/registry.js'
import { isFailed, runOurs, type Sample } from './measure.js'
import { ensurePodman, PEER_NAME, PEERS, runPeer, type PeerId } from './peers.js'
import { PLAN_ID, runPlanScenario, type PlanComparison } from './plan.js'
import type { Probe } from './probe.js'
import {
  medianSample,
  mib,
  ms,
  printTimeline,
  report,
  type PeerStatus,
  type Result
} from './report.js'
import { crossRegistry, mountScenario, sameRepo, skipScenario, type Scenario } from './scenarios.js'
import {
  BUILDAH,
  DELAY_MS,
  DOCKER,
  LAYER_MB,
  ONLY,
  PODMAN,
  progress,
  RUNS,
  TARGET_DELAY_MS,
  TIMELINE
} from './settings.js'
import { bundleSize, measureStartup, type StartupResult } from './startup.js'
import { makeTlsCerts } from './tls-probe.js'
import {
  runTlsScenario,
  tlsCrossRegistry,
  tlsMount,
  type TlsResult,
  type TlsScenario
} from './tls-scenarios.js'

async function runScenario(s: Scenario, peers: PeerId[]): Promise<Result> {
  const started = performance.now()
  progress(`${s.id}: fixtures`)
  await s.setup()
  const stopAll = (probes: Probe[]): Promise<void[]> =>
    Promise.all(probes.map((p) => p.proxy.stop()))
  const ours = async (i: number): Promise<Sample> => {
    const { inputs, probes } = await s.ours(i)
    try {
      return await runOurs(inputs, probes)
    } finally {
      await stopAll(probes)
    }
  }
  // Run 0 warms up (and, for the skip path, makes the tags current); it is not measured.
  await ours(0)
  const result: Result = { scenario: s, ours: [], peers: {} }
  let active = s.peer ? peers : []
  for (const peer of active) result.peers[peer] = []
  for (let i = 1; i <= RUNS; i++) {
    const sample = await ours(i)
    s.check?.(sample)
    result.ours.push(sample)
    progress(
      `${s.id} run ${i}: ours ${ms(sample.wallMs)} ms, ${sample.requests} requests, peak RSS ${mib(sample.peakRss ?? 0)}`
    )
    for (const peer of active) {
      const run = await s.peer!(peer, i)
      let ps
      try {
        ps = await runPeer(peer, run)
      } finally {
        await stopAll(run.probes)
      }
      if (isFailed(ps) && ps.how === 'failed' && s.cannot?.[peer]) ps.how = 'cannot'
      result.peers[peer]!.push(ps)
      progress(
        `${s.id} run ${i}: ${PEER_NAME[peer]} ${isFailed(ps) ? `${ps.how} (${ps.failed})` : `${ms(ps.wallMs)} ms, ${ps.requests} requests`}`
      )
      // A peer fails (or cannot) the same way every time: don't spend the time again.
      if (isFailed(ps)) active = active.filter((p) => p !== peer)
    }
  }
  if (TIMELINE) printTimeline(s.id, medianSample(result.ours).hits)
  progress(`${s.id}: done in ${((performance.now() - started) / 1000).toFixed(1)} s`)
  return result
}

/** Which peers run, and why the others do not. Installs podman when a selected scenario needs it. */
function choosePeers(needed: boolean): { peers: PeerId[]; status: PeerStatus } {
  const status: PeerStatus = {
    buildah: BUILDAH ? undefined : 'not run (BENCH_BUILDAH=0, or buildah is not installed)',
    docker: DOCKER ? undefined : 'not run (BENCH_DOCKER=0, or the docker CLI is not installed)',
    podman: PODMAN ? undefined : 'not run (BENCH_PODMAN=0)'
  }
  if (needed && status.podman === undefined) {
    const why = ensurePodman()
    if (why) status.podman = `not run (${why})`
  }
  if (!needed) for (const p of PEERS) status[p] ??= 'not run (no selected scenario runs peers)'
  return { peers: PEERS.filter((p) => status[p] === undefined), status }
}

async function main(): Promise<void> {
  const t0 = performance.now()
  const bundle = await bundleSize(DIST)
  const [a, b] = await Promise.all([startRegistry(), startRegistry()])
  // One certificate (for 127.0.0.1) serves every TLS front; the action trusts its CA.
  const certs = await makeTlsCerts()
  try {
    const skip = skipScenario(a)
    const scenarios: Scenario[] = [
      ...[2, 5, 16, 64].map((n) => sameRepo(a, n)),
      sameRepo(a, 2, TARGET_DELAY_MS),
      mountScenario(a),
      crossRegistry(a, b),
      skip
    ]
    const selected = scenarios.filter((s) => ONLY.length === 0 || ONLY.includes(s.id))
    const https: TlsScenario[] = [tlsMount(a, certs), tlsCrossRegistry(a, b, certs)].filter(
      (s) => ONLY.length === 0 || ONLY.includes(s.id)
    )
    const { peers, status } = choosePeers(selected.some((s) => s.peer !== undefined))
    const loadBefore = os.loadavg()[0]
    progress(
      `delay ${DELAY_MS} ms, ${RUNS} run(s), ${LAYER_MB} MiB layers, peers: ${peers.map((p) => PEER_NAME[p]).join(', ') || 'none'}`
    )
    // Startup first, while the machine is not yet busy with the registries' writes.
    let startup: StartupResult | undefined
    if (ONLY.length === 0 || ONLY.includes('startup')) {
      progress('startup')
      await skip.setup()
      const { inputs, probes } = await skip.ours(0)
      await runOurs(inputs, probes).finally(() => Promise.all(probes.map((p) => p.proxy.stop())))
      startup = await measureStartup(skip)
    }
    const results: Result[] = []
    for (const s of selected) results.push(await runScenario(s, peers))
    const tls: TlsResult[] = []
    for (const s of https) tls.push(await runTlsScenario(s, certs))
    let plan: PlanComparison | undefined
    if (ONLY.length === 0 || ONLY.includes(PLAN_ID)) {
      plan = await runPlanScenario(a)
      results.push(plan.plan, plan.separate)
    }
    report(results, startup, bundle, [loadBefore, os.loadavg()[0]], status, plan, tls)
  } finally {
    await Promise.all([a.stop(), b.stop(), certs.remove()])
  }
  progress(`total ${((performance.now() - t0) / 1000).toFixed(1)} s`)
}

await main()
