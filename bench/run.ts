// `npm run bench`: runs the bundled action (node dist/index.js, as a runner does) against real
// Distribution registries behind a latency proxy, and prints a Markdown table of wall time,
// requests and round trips per scenario, compared with buildah's manifest commands where buildah
// is installed. Progress goes to stderr; stdout is only the Markdown report. See bench/README.md.
import os from 'node:os'
import { performance } from 'node:perf_hooks'
import { DIST } from '../__tests__/helpers/action.js'
import { startRegistry } from '../__tests__/helpers/registry.js'
import { isFailed, runBuildah, runOurs, type Sample } from './measure.js'
import { PLAN_ID, runPlanScenario, type PlanComparison } from './plan.js'
import type { Probe } from './probe.js'
import { medianSample, mib, ms, printTimeline, report, type Result } from './report.js'
import { crossRegistry, mountScenario, sameRepo, skipScenario, type Scenario } from './scenarios.js'
import { BUILDAH, DELAY_MS, LAYER_MB, ONLY, progress, RUNS, TIMELINE } from './settings.js'
import { bundleSize, measureStartup, type StartupResult } from './startup.js'

async function runScenario(s: Scenario): Promise<Result> {
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
  const result: Result = { scenario: s, ours: [], buildah: [] }
  let buildah = BUILDAH && s.buildah !== undefined
  for (let i = 1; i <= RUNS; i++) {
    const sample = await ours(i)
    s.check?.(sample)
    result.ours.push(sample)
    progress(
      `${s.id} run ${i}: ours ${ms(sample.wallMs)} ms, ${sample.requests} requests, peak RSS ${mib(sample.peakRss ?? 0)}`
    )
    if (!buildah) continue
    const b = await s.buildah!(i)
    try {
      const bs = await runBuildah(b.sources, b.target, b.probes, b.addArgs)
      result.buildah.push(bs)
      progress(
        `${s.id} run ${i}: buildah ${isFailed(bs) ? `failed (${bs.failed})` : `${ms(bs.wallMs)} ms, ${bs.requests} requests`}`
      )
      // buildah fails the same way every time: don't spend the time again.
      if (isFailed(bs)) buildah = false
    } finally {
      await stopAll(b.probes)
    }
  }
  if (TIMELINE) printTimeline(s.id, medianSample(result.ours).hits)
  progress(`${s.id}: done in ${((performance.now() - started) / 1000).toFixed(1)} s`)
  return result
}

async function main(): Promise<void> {
  const t0 = performance.now()
  const bundle = await bundleSize(DIST)
  const loadBefore = os.loadavg()[0]
  progress(
    `delay ${DELAY_MS} ms, ${RUNS} run(s), ${LAYER_MB} MiB layers, buildah ${BUILDAH ? 'on' : 'off'}`
  )
  const [a, b] = await Promise.all([startRegistry(), startRegistry()])
  try {
    const skip = skipScenario(a)
    const scenarios: Scenario[] = [
      ...[2, 5, 16, 64].map((n) => sameRepo(a, n)),
      mountScenario(a),
      crossRegistry(a, b),
      skip
    ]
    const selected = scenarios.filter((s) => ONLY.length === 0 || ONLY.includes(s.id))
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
    for (const s of selected) results.push(await runScenario(s))
    let plan: PlanComparison | undefined
    if (ONLY.length === 0 || ONLY.includes(PLAN_ID)) {
      plan = await runPlanScenario(a)
      results.push(plan.plan, plan.separate)
    }
    report(results, startup, bundle, [loadBefore, os.loadavg()[0]], plan)
  } finally {
    await Promise.all([a.stop(), b.stop()])
  }
  progress(`total ${((performance.now() - t0) / 1000).toFixed(1)} s`)
}

await main()
