// The HTTPS scenarios: the registries behind TLS fronts (tls-probe.ts) that offer h2, and each
// run made twice, with HTTP/2 (the default) and with MULTIARCH_MERGE_HTTP2=false (HTTP/1.1).
import { performance } from 'node:perf_hooks'
import type { TestRegistry } from '../__tests__/helpers/registry.js'
import { platforms, pushBigSources, pushWrapped } from './fixtures.js'
import { runOurs, type Sample } from './measure.js'
import { medianSample, mib, ms, printTimeline } from './report.js'
import { DELAY_MS, LAYER_MB, progress, RUNS, TIMELINE } from './settings.js'
import { startTlsProbe, type TlsCerts, type TlsProbe } from './tls-probe.js'

export type Protocol = 'h2' | 'h1'
export const PROTOCOLS: readonly Protocol[] = ['h2', 'h1']

/** What each protocol asks the client for, and what every TLS connection must then choose. */
const SETUP: Record<Protocol, { env: Record<string, string>; alpn: string }> = {
  h2: { env: {}, alpn: 'h2' },
  h1: { env: { MULTIARCH_MERGE_HTTP2: 'false' }, alpn: 'http/1.1' }
}

export interface TlsSample extends Sample {
  /** TLS connections opened at the fronts. */
  tls: number
  /** Plain-HTTP connections (the first tries of a loopback registry). */
  plain: number
}

export interface TlsScenario {
  id: string
  title: string
  delayMs: number
  /** Pushes fixtures (directly to the registries, not through a front). */
  setup(): Promise<void>
  /** Inputs of run `i` with protocol `p`, through fresh fronts (new ports). */
  ours(i: number, p: Protocol): Promise<{ inputs: Record<string, string>; probes: TlsProbe[] }>
  /** Checks a measured run did what the scenario means. */
  check(s: TlsSample): void
}

export interface TlsResult {
  scenario: Pick<TlsScenario, 'id' | 'title' | 'delayMs'>
  runs: Record<Protocol, TlsSample[]>
}

/** 16 attestation-wrapped sources, staging → a new repository: many mounts and manifest PUTs at once. */
export function tlsMount(reg: TestRegistry, certs: TlsCerts): TlsScenario {
  const staging = 'bench/tls-staging'
  const plats = platforms(16)
  let digests: string[] = []
  return {
    id: 'tls-mount-16',
    title: '16 attestation-wrapped sources, 10 layers each, staging → release repository',
    delayMs: DELAY_MS,
    async setup() {
      digests = []
      for (const p of plats) digests.push(await pushWrapped(reg, staging, p, 10, 'tls-mount'))
    },
    async ours(i, p) {
      const probe = await startTlsProbe(reg.url, certs)
      const host = probe.proxy.host
      return {
        inputs: {
          tags: `${host}/bench/tls-mount-${i}-${p}:v1`,
          sources: digests.join('\n'),
          'source-repository': `${host}/${staging}`
        },
        probes: [probe]
      }
    },
    check(s) {
      if (!s.kinds.get('POST mount')) throw new Error('tls-mount-16 mounted no blob')
    }
  }
}

/** 5 sources with one big layer each, registry A → registry B, each behind its own front. */
export function tlsCrossRegistry(a: TestRegistry, b: TestRegistry, certs: TlsCerts): TlsScenario {
  const repo = 'bench/tls-big'
  const plats = platforms(5)
  let digests: string[] = []
  return {
    id: 'tls-cross-registry',
    title: `5 sources, one ${LAYER_MB} MiB layer each, registry A → registry B`,
    delayMs: DELAY_MS,
    async setup() {
      digests = await pushBigSources(a, repo, plats)
    },
    async ours(i, p) {
      const [pa, pb] = await Promise.all([startTlsProbe(a.url, certs), startTlsProbe(b.url, certs)])
      return {
        inputs: {
          // As in cross-registry: the warm-up leaves the blobs in B's store, not in the repository.
          tags: `${pb.proxy.host}/bench/tls-xreg-${i}-${p}:v1`,
          sources: digests.join('\n'),
          'source-repository': `${pa.proxy.host}/${repo}`
        },
        probes: [pa, pb]
      }
    },
    check(s) {
      if ((s.kinds.get('PUT upload') ?? 0) < 5)
        throw new Error('tls-cross-registry: blobs not copied')
    }
  }
}

/** One run of ours with protocol `p`, checked: every TLS connection chose what `p` asks for. */
async function runTls(s: TlsScenario, certs: TlsCerts, i: number, p: Protocol): Promise<TlsSample> {
  const { inputs, probes } = await s.ours(i, p)
  try {
    const env = { NODE_EXTRA_CA_CERTS: certs.caFile, ...SETUP[p].env }
    const sample = await runOurs(inputs, probes, env)
    const fronts = probes.map((x) => x.proxy)
    for (const f of fronts) {
      const other = [...f.alpn.keys()].filter((k) => k !== SETUP[p].alpn)
      if (other.length) throw new Error(`${s.id} (${p}): TLS connections chose ${other.join(', ')}`)
    }
    return {
      ...sample,
      tls: fronts.reduce((n, f) => n + f.tls, 0),
      plain: fronts.reduce((n, f) => n + f.plain, 0)
    }
  } finally {
    await Promise.all(probes.map((x) => x.proxy.stop()))
  }
}

export async function runTlsScenario(s: TlsScenario, certs: TlsCerts): Promise<TlsResult> {
  const started = performance.now()
  progress(`${s.id}: fixtures`)
  await s.setup()
  // Run 0 warms up each protocol (unmeasured).
  for (const p of PROTOCOLS) await runTls(s, certs, 0, p)
  const result: TlsResult = { scenario: s, runs: { h2: [], h1: [] } }
  for (let i = 1; i <= RUNS; i++) {
    // The first of the pair alternates, so neither protocol always follows the other's writes.
    for (const p of i % 2 ? PROTOCOLS : [...PROTOCOLS].reverse()) {
      const sample = await runTls(s, certs, i, p)
      s.check(sample)
      result.runs[p].push(sample)
      progress(
        `${s.id} run ${i} ${p}: ${ms(sample.wallMs)} ms, ${sample.requests} requests, ` +
          `${sample.tls} TLS connection(s), ${sample.plain} plain-HTTP, ${sample.retries} retries, ` +
          `peak RSS ${mib(sample.peakRss ?? 0)}`
      )
    }
  }
  if (TIMELINE)
    for (const p of PROTOCOLS) printTimeline(`${s.id} (${p})`, medianSample(result.runs[p]).hits)
  progress(`${s.id}: done in ${((performance.now() - started) / 1000).toFixed(1)} s`)
  return result
}
