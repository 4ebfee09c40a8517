// The release-plan scenario: 8 images, each in its own repository, merged by one
// `node dist/cli.js --plan` run, against the same 8 merges as 8 sequential runs of
// `node dist/cli.js` (one per image, as a pipeline with one step per image runs them). Both go
// through the same kind of latency proxy, and must leave the same index digests on the tags.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { getManifest } from '../__tests__/helpers/oci.js'
import type { TestRegistry } from '../__tests__/helpers/registry.js'
import { platforms, pushWrapped } from './fixtures.js'
import { collect, EXTRA_OPTIONS, runCliTimed, type Sample } from './measure.js'
import { resetProbe, startProbe, type Probe } from './probe.js'
import { medianSample, mib, ms, printTimeline, type Result } from './report.js'
import { DELAY_MS, progress, RUNS, TIMELINE } from './settings.js'

export const PLAN_ID = 'plan-8'
const IMAGES = 8
/** Layers of each per-arch image (besides its config; each source also has its attestation). */
const LAYERS = 6
const TAGS = ['1.0', 'latest']
const STAGING = 'bench/fleet-staging'

/** Image k (0-based) has 3 platforms when k is even, 2 when odd: 20 sources in all. */
const sourcesOf = (k: number): number => (k % 2 === 0 ? 3 : 2)

interface Image {
  /** The image's own repository, under the staging and the release prefix. */
  name: string
  /** Digests of its attestation-wrapped per-arch indexes in the staging repository. */
  sources: string[]
}

export interface PlanComparison {
  plan: Result
  separate: Result
  images: number
  sources: number
  tags: number
  /** Index digest of each image (the same from both sides, and on every tag: checked). */
  digests: string[]
}

/** One run of either side: what the proxy saw, and the index digests the run printed. */
interface Side {
  sample: Sample
  /** Index digest of each image, in image order, as the run printed it (--json). */
  digests: string[]
}

export async function runPlanScenario(reg: TestRegistry): Promise<PlanComparison> {
  const started = performance.now()
  const images = await pushFixtures(reg)
  const sources = images.reduce((n, i) => n + i.sources.length, 0)
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mm-bench-plan-'))
  const plan: Sample[] = []
  const separate: Sample[] = []
  let digests: string[] = []
  try {
    // Run 0 of each side warms up (page cache, the registry's blob store); it is not measured.
    for (let i = 0; i <= RUNS; i++) {
      const p = await runPlan(reg, images, dir, i)
      const s = await runSeparate(reg, images, i)
      await check(reg, images, i, p, s)
      if (digests.length && digests.join() !== p.digests.join())
        throw new Error(`${PLAN_ID}: run ${i} made other index digests than the run before`)
      digests = p.digests
      if (i === 0) continue
      plan.push(p.sample)
      separate.push(s.sample)
      progress(
        `${PLAN_ID} run ${i}: plan ${ms(p.sample.wallMs)} ms, ${p.sample.requests} requests, peak RSS ${mib(p.sample.peakRss ?? 0)}; ` +
          `${IMAGES} separate runs ${ms(s.sample.wallMs)} ms, ${s.sample.requests} requests`
      )
    }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
  if (TIMELINE) {
    printTimeline(`${PLAN_ID} (plan)`, medianSample(plan).hits)
    printTimeline(`${PLAN_ID} (separate runs)`, medianSample(separate).hits)
  }
  progress(`${PLAN_ID}: done in ${((performance.now() - started) / 1000).toFixed(1)} s`)
  const titles = `${IMAGES} images (${sources} attestation-wrapped sources, ${LAYERS} layers each), staging → release repositories`
  return {
    plan: {
      scenario: { id: PLAN_ID, title: `${titles}: one plan run`, delayMs: DELAY_MS },
      ours: plan,
      peers: {}
    },
    separate: {
      scenario: { id: PLAN_ID, title: `${titles}: ${IMAGES} separate runs`, delayMs: DELAY_MS },
      ours: separate,
      peers: {}
    },
    images: IMAGES,
    sources,
    tags: IMAGES * TAGS.length,
    digests
  }
}

async function pushFixtures(reg: TestRegistry): Promise<Image[]> {
  progress(`${PLAN_ID}: fixtures`)
  const images: Image[] = []
  for (let k = 0; k < IMAGES; k++) {
    const name = `app-${k + 1}`
    const repo = `${STAGING}/${name}`
    const digests: string[] = []
    for (const p of platforms(sourcesOf(k)))
      digests.push(await pushWrapped(reg, repo, p, LAYERS, `fleet-${name}`))
    images.push({ name, sources: digests })
  }
  return images
}

/** The release repository of image `img` for run `i` of one side: a new one every run. */
const releaseRepo = (side: 'plan' | 'sep', i: number, img: Image): string =>
  `bench/fleet-${side}-${i}/${img.name}`

function imageRefs(host: string, side: 'plan' | 'sep', i: number, img: Image) {
  return {
    tags: TAGS.map((t) => `${host}/${releaseRepo(side, i, img)}:${t}`),
    sources: img.sources.map((d) => `${host}/${STAGING}/${img.name}@${d}`)
  }
}

async function withProbe<T>(reg: TestRegistry, f: (probe: Probe) => Promise<T>): Promise<T> {
  // A new proxy (a new port) per run, as in the other scenarios.
  const probe = await startProbe(reg.url)
  try {
    resetProbe(probe)
    return await f(probe)
  } finally {
    await probe.proxy.stop()
  }
}

async function runPlan(reg: TestRegistry, images: Image[], dir: string, i: number): Promise<Side> {
  return withProbe(reg, async (probe) => {
    const file = path.join(dir, `plan-${i}.json`)
    const doc = {
      defaults: { attestations: 'keep' },
      images: images.map((img) => imageRefs(probe.proxy.host, 'plan', i, img))
    }
    await writeFile(file, JSON.stringify(doc, null, 2))
    const run = await runCliTimed(['--plan', file, '--json', ...EXTRA_OPTIONS])
    const out = JSON.parse(run.stdout) as { results: Array<{ digest: string }> }
    return {
      sample: collect([probe], run.wallMs, run.peakRss),
      digests: out.results.map((r) => r.digest)
    }
  })
}

/**
 * The same merges, one `node dist/cli.js` per image, one after the other, through one proxy.
 * Wall time is from the first spawn to the last exit; the time at the proxy is the sum of each
 * run's own (first arrival to last response), so that it leaves out the processes' startups;
 * peak RSS is the largest of the runs'.
 */
async function runSeparate(reg: TestRegistry, images: Image[], i: number): Promise<Side> {
  return withProbe(reg, async (probe) => {
    const digests: string[] = []
    let spanMs = 0
    let peakRss = 0
    const t0 = performance.now()
    for (const img of images) {
      const from = probe.hits.length
      const { tags, sources } = imageRefs(probe.proxy.host, 'sep', i, img)
      const args = [
        ...tags.flatMap((t) => ['-t', t]),
        '--attestations',
        'keep',
        '--json',
        ...EXTRA_OPTIONS,
        ...sources
      ]
      const run = await runCliTimed(args)
      digests.push((JSON.parse(run.stdout) as { digest: string }).digest)
      peakRss = Math.max(peakRss, run.peakRss)
      const hits = probe.hits.slice(from)
      if (hits.length) {
        spanMs +=
          Math.max(...hits.map((h) => h.done ?? h.arrived)) -
          Math.min(...hits.map((h) => h.arrived))
      }
    }
    const sample = collect([probe], performance.now() - t0, peakRss)
    return { sample: { ...sample, spanMs }, digests }
  })
}

/**
 * Both sides merged the same sources with the same inputs: each image must get the same index
 * digest from both, on every tag (read back from the registry, not through the proxy), holding
 * every source's image and attestation manifest; every blob must have been mounted, none
 * uploaded.
 */
async function check(
  reg: TestRegistry,
  images: Image[],
  i: number,
  plan: Side,
  separate: Side
): Promise<void> {
  for (const [k, img] of images.entries()) {
    const want = plan.digests[k]
    if (separate.digests[k] !== want) {
      throw new Error(
        `${PLAN_ID}: ${img.name}: the plan made ${want}, the separate run ${separate.digests[k]}`
      )
    }
    for (const side of ['plan', 'sep'] as const) {
      for (const t of TAGS) {
        const repo = releaseRepo(side, i, img)
        const m = await getManifest(reg, repo, t)
        if (m?.digest !== want) {
          throw new Error(`${PLAN_ID}: ${repo}:${t} holds ${m?.digest ?? 'nothing'}, not ${want}`)
        }
        const n = (JSON.parse(m.body) as { manifests: unknown[] }).manifests.length
        if (n !== 2 * img.sources.length) {
          throw new Error(
            `${PLAN_ID}: ${repo}:${t} lists ${n} manifests, not ${2 * img.sources.length} (images and attestations)`
          )
        }
      }
    }
  }
  for (const [side, s] of [
    ['plan', plan],
    ['separate runs', separate]
  ] as const) {
    const uploads = s.sample.kinds.get('PUT upload') ?? 0
    if (!s.sample.kinds.get('POST mount') || uploads) {
      throw new Error(
        `${PLAN_ID}: the ${side} mounted ${s.sample.kinds.get('POST mount') ?? 0} blob(s) and uploaded ${uploads}`
      )
    }
  }
}
