// `npm run bench`: runs the bundled action (node dist/index.js, as a runner does) against real
// Distribution registries behind a latency proxy, and prints a Markdown table of wall time,
// requests and round trips per scenario, compared with buildah's manifest commands where buildah
// is installed. Progress goes to stderr; stdout is only the Markdown report. See bench/README.md.
import { execFileSync, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { gzipSync } from 'node:zlib'
import { DIST, runAction } from '../__tests__/helpers/action.js'
import {
  makeTar,
  MT,
  pushBlob,
  pushImage,
  pushIndex,
  pushManifest,
  sha256,
  type Platform,
  type PushedImage
} from '../__tests__/helpers/oci.js'
import { startProxy, type TestProxy } from '../__tests__/helpers/proxy.js'
import { startRegistry, type TestRegistry } from '../__tests__/helpers/registry.js'
import { withBuildah } from '../__tests__/helpers/tools.js'

// ---------------------------------------------------------------------------------------------
// Settings

function envInt(name: string, dflt: number, min: number): number {
  const v = (process.env[name] ?? '').trim()
  if (v === '') return dflt
  if (!/^\d+$/.test(v) || Number(v) < min) {
    throw new Error(`${name}="${v}" is not a whole number >= ${min}`)
  }
  return Number(v)
}

function hasCommand(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

const DELAY_MS = envInt('BENCH_DELAY_MS', 50, 0)
const RUNS = envInt('BENCH_RUNS', 3, 1)
const LAYER_MB = envInt('BENCH_LAYER_MB', 100, 1)
const STARTUP_RUNS = envInt('BENCH_STARTUP_RUNS', 7, 1)
const ONLY = (process.env.BENCH_ONLY ?? '')
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean)
const BUILDAH = process.env.BENCH_BUILDAH !== '0' && hasCommand('buildah')
/** BENCH_INPUT_MAX_CONCURRENCY=32 sets the action's max-concurrency input in every run of ours. */
const EXTRA_INPUTS: Record<string, string> = Object.fromEntries(
  Object.entries(process.env)
    .filter(([k]) => k.startsWith('BENCH_INPUT_'))
    .map(([k, v]) => [k.slice('BENCH_INPUT_'.length).toLowerCase().replace(/_/g, '-'), v ?? ''])
)

const TIMELINE = process.env.BENCH_TIMELINE === '1'

const progress = (m: string): void => void process.stderr.write(`[bench] ${m}\n`)

// ---------------------------------------------------------------------------------------------
// A proxy with timings: when each request arrived and when its response was sent.

interface Hit {
  method: string
  path: string
  /** performance.now() when the request reached the proxy (before the delay). */
  arrived: number
  /** performance.now() when the response was fully written; undefined if it never was. */
  done?: number
}

interface Probe {
  proxy: TestProxy
  hits: Hit[]
}

async function startProbe(upstream: string): Promise<Probe> {
  const proxy = await startProxy(upstream, { delayMs: DELAY_MS })
  const hits: Hit[] = []
  // Rules run after the proxy's delay, so the arrival is the rule's time less the delay.
  proxy.rules.push((req, res) => {
    const hit: Hit = {
      method: req.method ?? '',
      path: req.url ?? '',
      arrived: performance.now() - proxy.delayMs
    }
    hits.push(hit)
    res.on('finish', () => (hit.done = performance.now()))
    return false
  })
  return { proxy, hits }
}

function resetProbe(p: Probe): void {
  p.proxy.reset()
  p.hits.length = 0
}

/** What kind of Distribution API call a request is, for the request mix. */
function kindOf(method: string, url: string): string {
  const p = url.split('?')[0]
  if (/^\/v2\/?$/.test(p)) return `${method} /v2/`
  if (p.includes('/manifests/')) return `${method} manifest`
  if (p.includes('/blobs/uploads/')) {
    if (method === 'POST') return url.includes('mount=') ? 'POST mount' : 'POST upload'
    return `${method} upload`
  }
  if (p.includes('/blobs/')) return `${method} blob`
  if (p.includes('/tags/list')) return `${method} tags`
  return `${method} other`
}

// ---------------------------------------------------------------------------------------------
// Fixtures

/** Go's GOOS x GOARCH, in an order that starts with the common ones: 88 distinct platforms. */
function platforms(n: number): Platform[] {
  const oses = ['linux', 'freebsd', 'netbsd', 'openbsd', 'windows', 'darwin', 'illumos']
  const arches: Array<[string, string?]> = [
    ['amd64'],
    ['arm64'],
    ['arm', 'v7'],
    ['arm', 'v6'],
    ['386'],
    ['ppc64le'],
    ['s390x'],
    ['riscv64'],
    ['mips64le'],
    ['loong64'],
    ['ppc64']
  ]
  const out: Platform[] = []
  for (const o of oses)
    for (const [architecture, variant] of arches) {
      const p: Platform = { os: o, architecture }
      if (variant) p.variant = variant
      out.push(p)
    }
  if (n > out.length) throw new Error(`at most ${out.length} distinct platforms`)
  return out.slice(0, n)
}

/** A small single-platform image (`layers` tiny gzip'd tar layers), pushed by digest. */
function pushSmall(
  reg: TestRegistry,
  repo: string,
  p: Platform,
  layers: number,
  seed: string
): Promise<PushedImage> {
  return pushImage(reg, repo, { arch: p.architecture, os: p.os, variant: p.variant, layers, seed })
}

/**
 * What `docker buildx build --push` pushes for one platform (an OCI index holding the image and a
 * provenance attestation manifest), with an image of `layers` layers. Returns the index digest.
 */
async function pushWrapped(
  reg: TestRegistry,
  repo: string,
  p: Platform,
  layers: number,
  seed: string
): Promise<string> {
  const image = await pushSmall(reg, repo, p, layers, seed)
  const predicateType = 'https://slsa.dev/provenance/v0.2'
  const platformStr = [p.os, p.architecture, p.variant].filter(Boolean).join('/')
  const statement = JSON.stringify({
    _type: 'https://in-toto.io/Statement/v0.1',
    predicateType,
    subject: [
      {
        name: `pkg:docker/${repo}@latest?platform=${encodeURIComponent(platformStr)}`,
        digest: { sha256: image.digest.slice('sha256:'.length) }
      }
    ],
    predicate: {
      builder: { id: '' },
      buildType: 'https://mobyproject.org/buildkit@v1',
      metadata: { buildInvocationID: seed }
    }
  })
  const att = await pushBlob(reg, repo, statement)
  const cfg = await pushBlob(
    reg,
    repo,
    JSON.stringify({
      architecture: 'unknown',
      os: 'unknown',
      config: {},
      rootfs: { type: 'layers', diff_ids: [att.digest] }
    })
  )
  const attBody = JSON.stringify({
    schemaVersion: 2,
    mediaType: MT.ociManifest,
    config: { mediaType: MT.ociConfig, digest: cfg.digest, size: cfg.size },
    layers: [
      {
        mediaType: MT.inToto,
        digest: att.digest,
        size: att.size,
        annotations: { 'in-toto.io/predicate-type': predicateType }
      }
    ]
  })
  const attDigest = await pushManifest(reg, repo, sha256(attBody), attBody, MT.ociManifest)
  const index = await pushIndex(reg, repo, undefined, [
    { mediaType: MT.ociManifest, digest: image.digest, size: image.size, platform: p },
    {
      mediaType: MT.ociManifest,
      digest: attDigest,
      size: Buffer.byteLength(attBody),
      annotations: {
        'vnd.docker.reference.digest': image.digest,
        'vnd.docker.reference.type': 'attestation-manifest'
      },
      platform: { architecture: 'unknown', os: 'unknown' }
    }
  ])
  return index.digest
}

/**
 * An image with one layer of `mb` MiB of random bytes: a tar holding one random file, gzip'd
 * with level 0 (stored blocks), so it is a valid gzip'd tar that no tool would compress further.
 */
async function pushBig(reg: TestRegistry, repo: string, p: Platform, mb: number): Promise<string> {
  const tar = makeTar([{ name: 'random.bin', content: randomBytes(mb * 1024 * 1024) }])
  const gz = gzipSync(tar, { level: 0 })
  const layer = await pushBlob(reg, repo, gz)
  const config = JSON.stringify({
    created: '2024-01-01T00:00:00Z',
    architecture: p.architecture,
    os: p.os,
    ...(p.variant ? { variant: p.variant } : {}),
    config: {},
    rootfs: { type: 'layers', diff_ids: [sha256(tar)] }
  })
  const cfg = await pushBlob(reg, repo, config)
  const body = JSON.stringify({
    schemaVersion: 2,
    mediaType: MT.ociManifest,
    config: { mediaType: MT.ociConfig, digest: cfg.digest, size: cfg.size },
    layers: [{ mediaType: MT.ociLayer, digest: layer.digest, size: layer.size }]
  })
  return pushManifest(reg, repo, sha256(body), body, MT.ociManifest)
}

// ---------------------------------------------------------------------------------------------
// Measuring one run

interface Sample {
  wallMs: number
  requests: number
  /** First arrival to last response at the proxies. */
  spanMs: number
  maxInFlight: number
  peakRss?: number
  kinds: Map<string, number>
  hits: Hit[]
}

interface Failed {
  failed: string
}

function collect(probes: Probe[], wallMs: number, peakRss?: number): Sample {
  const hits = probes.flatMap((p) => p.hits)
  const kinds = new Map<string, number>()
  for (const h of hits) {
    const k = kindOf(h.method, h.path)
    kinds.set(k, (kinds.get(k) ?? 0) + 1)
  }
  const first = Math.min(...hits.map((h) => h.arrived))
  const last = Math.max(...hits.map((h) => h.done ?? h.arrived))
  return {
    wallMs,
    requests: probes.reduce((n, p) => n + p.proxy.requests.length, 0),
    spanMs: hits.length ? last - first : 0,
    maxInFlight: Math.max(...probes.map((p) => p.proxy.maxInFlight)),
    peakRss,
    kinds,
    hits
  }
}

async function runOurs(inputs: Record<string, string>, probes: Probe[]): Promise<Sample> {
  probes.forEach(resetProbe)
  const t0 = performance.now()
  const run = await runAction({ ...inputs, ...EXTRA_INPUTS })
  const wallMs = performance.now() - t0
  if (run.code !== 0) {
    throw new Error(`the action failed (exit ${run.code}):\n${run.stdout}\n${run.stderr}`)
  }
  if (!/^sha256:[0-9a-f]{64}$/.test(run.outputs.digest ?? '')) {
    throw new Error(`the action set no digest output:\n${run.stdout}`)
  }
  return collect(probes, wallMs, run.peakRss)
}

/**
 * buildah manifest create / add (one per source) / push --all, with a private vfs store. Every
 * call passes --tls-verify=false, so buildah tries HTTPS first and falls back to plain HTTP.
 */
async function runBuildah(
  sources: string[],
  target: string,
  probes: Probe[],
  addArgs: string[] = []
): Promise<Sample | Failed> {
  const list = 'mm-bench-list'
  probes.forEach(resetProbe)
  // A private store per run (withBuildah), so buildah's blob cache never carries over.
  return withBuildah(async (buildah) => {
    const t0 = performance.now()
    try {
      await buildah(['manifest', 'create', list])
      for (const s of sources) {
        await buildah(['manifest', 'add', ...addArgs, '--tls-verify=false', list, `docker://${s}`])
      }
      await buildah(['manifest', 'push', '--all', '--tls-verify=false', list, `docker://${target}`])
    } catch (e) {
      // buildah's own error is its last "Error: ..." line (earlier lines are log noise).
      const msg = (e as Error).message
      const errors = [...msg.matchAll(/^Error: (.*)$/gm)].map((m) => m[1])
      return { failed: (errors.at(-1) ?? msg.split('\n')[0]).slice(0, 400) }
    }
    const wallMs = performance.now() - t0
    return collect(probes, wallMs)
  })
}

// ---------------------------------------------------------------------------------------------
// Scenarios

interface Scenario {
  id: string
  title: string
  /** Pushes fixtures (directly to the registries, not through a proxy). */
  setup(): Promise<void>
  /**
   * Inputs of run `i` (0 is the unmeasured warm-up) and the proxies it talks through: a fresh
   * proxy per run, so no client-side cache (buildah's blob info cache is keyed by host:port)
   * carries over from one run to the next.
   */
  ours(i: number): Promise<{ inputs: Record<string, string>; probes: Probe[] }>
  buildah?(
    i: number
  ): Promise<{ sources: string[]; target: string; probes: Probe[]; addArgs?: string[] }>
  /** Checks a measured run of ours did what the scenario means (e.g. wrote nothing). */
  check?(s: Sample): void
}

function sameRepo(reg: TestRegistry, n: number): Scenario {
  const repo = `bench/same-${n}`
  let digests: string[] = []
  return {
    id: `same-${n}`,
    title: `${n} sources, same repository`,
    async setup() {
      digests = []
      for (const p of platforms(n)) digests.push((await pushSmall(reg, repo, p, 1, 'same')).digest)
    },
    async ours(i) {
      const probe = await startProbe(reg.url)
      const host = probe.proxy.host
      return {
        inputs: {
          tags: `${host}/${repo}:run-${i}`,
          sources: digests.join('\n'),
          'source-repository': `${host}/${repo}`
        },
        probes: [probe]
      }
    },
    async buildah(i) {
      const probe = await startProbe(reg.url)
      const host = probe.proxy.host
      return {
        sources: digests.map((d) => `${host}/${repo}@${d}`),
        target: `${host}/${repo}:buildah-${i}`,
        probes: [probe]
      }
    },
    check(s) {
      const copies = (s.kinds.get('POST mount') ?? 0) + (s.kinds.get('POST upload') ?? 0)
      if (copies) throw new Error(`${repo}: a same-repository merge copied ${copies} blob(s)`)
    }
  }
}

function mountScenario(reg: TestRegistry): Scenario {
  const staging = 'bench/staging'
  let digests: string[] = []
  return {
    id: 'mount',
    title: '5 attestation-wrapped sources, 10 layers each, staging → release repository',
    async setup() {
      digests = []
      for (const p of platforms(5)) digests.push(await pushWrapped(reg, staging, p, 10, 'mount'))
    },
    async ours(i) {
      const probe = await startProbe(reg.url)
      const host = probe.proxy.host
      return {
        inputs: {
          tags: `${host}/bench/mount-${i}:v1`,
          sources: digests.join('\n'),
          'source-repository': `${host}/${staging}`
        },
        probes: [probe]
      }
    },
    async buildah(i) {
      const probe = await startProbe(reg.url)
      const host = probe.proxy.host
      return {
        sources: digests.map((d) => `${host}/${staging}@${d}`),
        target: `${host}/bench/mount-buildah-${i}:v1`,
        probes: [probe],
        // Without --all, buildah picks the host's platform from each source index (and fails
        // for the others); --all adds every manifest of the index, attestations included.
        addArgs: ['--all']
      }
    },
    check(s) {
      if (!s.kinds.get('POST mount')) throw new Error('the mount scenario mounted no blob')
    }
  }
}

function crossRegistry(a: TestRegistry, b: TestRegistry): Scenario {
  const repo = 'bench/big'
  let digests: string[] = []
  return {
    id: 'cross-registry',
    title: `5 sources, one ${LAYER_MB} MiB layer each, registry A → registry B`,
    async setup() {
      digests = []
      for (const [k, p] of platforms(5).entries()) {
        progress(`  pushing ${LAYER_MB} MiB image ${k + 1}/5`)
        digests.push(await pushBig(a, repo, p, LAYER_MB))
      }
    },
    async ours(i) {
      const [pa, pb] = await Promise.all([startProbe(a.url), startProbe(b.url)])
      return {
        inputs: {
          // Run 0 (the warm-up) leaves every blob in B's blob store, so every measured run,
          // ours and buildah's, finds the same state: blobs in B but not linked in the repository.
          tags: `${pb.proxy.host}/bench/xreg-${i}:v1`,
          sources: digests.join('\n'),
          'source-repository': `${pa.proxy.host}/${repo}`
        },
        probes: [pa, pb]
      }
    },
    async buildah(i) {
      const [pa, pb] = await Promise.all([startProbe(a.url), startProbe(b.url)])
      return {
        sources: digests.map((d) => `${pa.proxy.host}/${repo}@${d}`),
        target: `${pb.proxy.host}/bench/xreg-buildah-${i}:v1`,
        probes: [pa, pb]
      }
    },
    check(s) {
      if ((s.kinds.get('PUT upload') ?? 0) < 5) throw new Error('cross-registry: blobs not copied')
    }
  }
}

function skipScenario(reg: TestRegistry): Scenario {
  let digests: string[] = []
  const tags = (host: string): string =>
    ['a', 'b', 'c'].map((r) => `${host}/bench/skip-${r}:current`).join('\n')
  return {
    id: 'skip',
    title: '3 tags in 3 repositories, all already current (rerun)',
    async setup() {
      digests = []
      for (const p of platforms(2))
        digests.push((await pushSmall(reg, 'bench/skip-src', p, 1, 'skip')).digest)
    },
    async ours() {
      // Run 0 pushes the tags; every later run finds them current.
      const probe = await startProbe(reg.url)
      const host = probe.proxy.host
      return {
        inputs: {
          tags: tags(host),
          sources: digests.join('\n'),
          'source-repository': `${host}/bench/skip-src`
        },
        probes: [probe]
      }
    },
    check(s) {
      const writes = [...s.kinds].filter(([k]) => /^(PUT|POST|PATCH)/.test(k))
      if (writes.length) throw new Error(`skip path wrote: ${JSON.stringify(writes)}`)
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Startup: spawn to the first request reaching the proxy.

interface Spawned {
  firstRequestMs: number
  /** From the last response leaving the proxy to the process's exit. */
  tailMs: number
  exitMs: number
}

async function spawnTimed(args: string[], env: NodeJS.ProcessEnv, probe: Probe): Promise<Spawned> {
  resetProbe(probe)
  const t0 = performance.now()
  const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] })
  let err = ''
  child.stdout.resume()
  child.stderr.on('data', (d: Buffer) => (err += d.toString()))
  const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)))
  const exited = performance.now()
  if (code !== 0) throw new Error(`${args.join(' ')} exited ${code}: ${err}`)
  if (probe.hits.length === 0) throw new Error(`${args.join(' ')} sent no request`)
  return {
    firstRequestMs: Math.min(...probe.hits.map((h) => h.arrived)) - t0,
    tailMs: exited - Math.max(...probe.hits.map((h) => h.done ?? h.arrived)),
    exitMs: exited - t0
  }
}

interface StartupResult {
  nodeExitMs: number
  nodeFirstRequestMs: number
  actionFirstRequestMs: number
  actionTailMs: number
  actionExitMs: number
}

async function measureStartup(skip: Scenario): Promise<StartupResult> {
  const nodeExit: number[] = []
  const nodeFirst: number[] = []
  const actionFirst: number[] = []
  const actionExit: number[] = []
  const actionTail: number[] = []
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mm-bench-startup-'))
  try {
    for (let i = 0; i < STARTUP_RUNS; i++) {
      const { inputs, probes } = await skip.ours(1000 + i)
      const probe = probes[0]
      // No delay: the first request's arrival is then exact, and the exit time is startup
      // plus the work at zero latency.
      probe.proxy.delayMs = 0
      try {
        const t0 = performance.now()
        execFileSync(process.execPath, ['-e', '0'], { env: { PATH: process.env.PATH } })
        nodeExit.push(performance.now() - t0)
        const get = `require('node:http').get(process.env.URL, (r) => r.resume())`
        const bare = await spawnTimed(
          ['-e', get],
          { PATH: process.env.PATH, URL: `${probe.proxy.url}/v2/` },
          probe
        )
        nodeFirst.push(bare.firstRequestMs)
        const out = path.join(dir, `out-${i}`)
        await writeFile(out, '')
        const env: NodeJS.ProcessEnv = {
          PATH: process.env.PATH,
          HOME: dir,
          GITHUB_OUTPUT: out,
          GITHUB_STEP_SUMMARY: path.join(dir, `summary-${i}`),
          GITHUB_ACTIONS: 'true',
          RUNNER_TEMP: dir
        }
        await writeFile(env.GITHUB_STEP_SUMMARY!, '')
        for (const [k, v] of Object.entries({ ...inputs, ...EXTRA_INPUTS }))
          env[`INPUT_${k.toUpperCase()}`] = v
        const action = await spawnTimed([DIST], env, probe)
        actionFirst.push(action.firstRequestMs)
        actionExit.push(action.exitMs)
        actionTail.push(action.tailMs)
      } finally {
        await probe.proxy.stop()
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
  return {
    nodeExitMs: median(nodeExit),
    nodeFirstRequestMs: median(nodeFirst),
    actionFirstRequestMs: median(actionFirst),
    actionTailMs: median(actionTail),
    actionExitMs: median(actionExit)
  }
}

// ---------------------------------------------------------------------------------------------
// Report

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}

interface Result {
  scenario: Scenario
  ours: Sample[]
  buildah: Array<Sample | Failed>
}

const isFailed = (s: Sample | Failed): s is Failed => 'failed' in s
const ms = (x: number): string => `${Math.round(x)}`
const mib = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MiB`
const rts = (x: number): string => (DELAY_MS > 0 ? (x / DELAY_MS).toFixed(1) : '—')

function medianSample(samples: Sample[]): Sample {
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

function report(
  results: Result[],
  startup: StartupResult | undefined,
  bundleBytes: number,
  load: [number, number]
) {
  const lines: string[] = []
  lines.push(
    `### multiarch-merge benchmark`,
    '',
    `${DELAY_MS} ms per request at the proxy, median of ${RUNS} run(s); node ${process.version}, ` +
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

  lines.push('', '#### Startup', '', '| measure | value |', '| --- | ---: |')
  lines.push(
    `| dist/index.js size | ${(bundleBytes / 1024).toFixed(0)} KiB (${bundleBytes} bytes) |`
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

function buildahVersion(): string {
  try {
    return execFileSync('buildah', ['--version'], { encoding: 'utf8' }).trim()
  } catch {
    return 'buildah (version unknown)'
  }
}

/** BENCH_TIMELINE=1: every request of the median run, in ms from the first arrival (stderr). */
function printTimeline(id: string, hits: Hit[]): void {
  const t0 = Math.min(...hits.map((h) => h.arrived))
  const rows = [...hits]
    .sort((x, y) => x.arrived - y.arrived)
    .map(
      (h) =>
        `  ${ms(h.arrived - t0).padStart(6)} → ${(h.done === undefined ? '?' : ms(h.done - t0)).padStart(6)}  ${kindOf(h.method, h.path).padEnd(14)} ${h.path.split('?')[0]}`
    )
  process.stderr.write(`[bench] ${id}: timeline of the median run\n${rows.join('\n')}\n`)
}

// ---------------------------------------------------------------------------------------------
// Main

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
  const bundleBytes = (await readFile(DIST)).length
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
    report(results, startup, bundleBytes, [loadBefore, os.loadavg()[0]])
  } finally {
    await Promise.all([a.stop(), b.stop()])
  }
  progress(`total ${((performance.now() - t0) / 1000).toFixed(1)} s`)
}

await main()
