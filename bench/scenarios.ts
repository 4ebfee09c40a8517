// The scenarios: what each one pushes, and the inputs (ours) or sources and target (a peer's:
// buildah, docker manifest, podman) of each run, through a fresh proxy per run.
import type { TestRegistry } from '../__tests__/helpers/registry.js'
import { platforms, pushBigSources, pushSmall, pushWrapped } from './fixtures.js'
import type { Sample } from './measure.js'
import { verifyIndex, type PeerId, type PeerRun } from './peers.js'
import { startProbe, type Probe } from './probe.js'
import { DELAY_MS, LAYER_MB } from './settings.js'

export interface Scenario {
  id: string
  title: string
  /** The delay the scenario's proxies add to every request, in ms. */
  delayMs: number
  /** Pushes fixtures (directly to the registries, not through a proxy). */
  setup(): Promise<void>
  /**
   * Inputs of run `i` (0 is the unmeasured warm-up) and the proxies it talks through: a fresh
   * proxy per run, so no client-side cache (buildah's blob info cache is keyed by host:port)
   * carries over from one run to the next.
   */
  ours(i: number): Promise<{ inputs: Record<string, string>; probes: Probe[] }>
  /**
   * A peer's run `i` (1 and up: peers have no warm-up): its sources and target, through a fresh
   * proxy, and the check of what it pushed. Absent: no peer runs the scenario.
   */
  peer?(peer: PeerId, i: number): Promise<PeerRun>
  /**
   * Peers that cannot take the scenario's sources, and why: their failure is reported as
   * "cannot" (measured once), not as a failure.
   */
  cannot?: Partial<Record<PeerId, string>>
  /** Checks a measured run of ours did what the scenario means (e.g. wrote nothing). */
  check?(s: Sample): void
}

/**
 * `n` single-platform images merged into a new tag of their repository. With `delayMs` (other
 * than BENCH_DELAY_MS), a scenario of its own (`same-N-at-Dms`, its own repository).
 */
export function sameRepo(reg: TestRegistry, n: number, delayMs = DELAY_MS): Scenario {
  const id = delayMs === DELAY_MS ? `same-${n}` : `same-${n}-at-${delayMs}ms`
  const repo = `bench/${id}`
  const plats = platforms(n)
  let digests: string[] = []
  return {
    id,
    title:
      `${n} sources, same repository` + (delayMs === DELAY_MS ? '' : `, ${delayMs} ms per request`),
    delayMs,
    async setup() {
      digests = []
      for (const p of plats) digests.push((await pushSmall(reg, repo, p, 1, 'same')).digest)
    },
    async ours(i) {
      const probe = await startProbe(reg.url, delayMs)
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
    async peer(peer, i) {
      const probe = await startProbe(reg.url, delayMs)
      const host = probe.proxy.host
      const tag = `${peer}-${i}`
      return {
        sources: digests.map((d) => `${host}/${repo}@${d}`),
        target: `${host}/${repo}:${tag}`,
        probes: [probe],
        verify: () => verifyIndex(reg, repo, tag, plats)
      }
    },
    check(s) {
      const copies = (s.kinds.get('POST mount') ?? 0) + (s.kinds.get('POST upload') ?? 0)
      if (copies) throw new Error(`${repo}: a same-repository merge copied ${copies} blob(s)`)
    }
  }
}

export function mountScenario(reg: TestRegistry): Scenario {
  const staging = 'bench/staging'
  const plats = platforms(5)
  let digests: string[] = []
  return {
    id: 'mount',
    title: '5 attestation-wrapped sources, 10 layers each, staging → release repository',
    delayMs: DELAY_MS,
    async setup() {
      digests = []
      for (const p of plats) digests.push(await pushWrapped(reg, staging, p, 10, 'mount'))
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
    async peer(peer, i) {
      const probe = await startProbe(reg.url)
      const host = probe.proxy.host
      const repo = `bench/mount-${peer}-${i}`
      return {
        sources: digests.map((d) => `${host}/${staging}@${d}`),
        target: `${host}/${repo}:v1`,
        probes: [probe],
        // Without --all, buildah and podman pick the host's platform from each source index (and
        // fail for the others); --all adds every manifest of the index, attestations included.
        indexSources: true,
        verify: () => verifyIndex(reg, repo, 'v1', plats)
      }
    },
    cannot: { docker: 'takes no index (manifest list) as a source' },
    check(s) {
      if (!s.kinds.get('POST mount')) throw new Error('the mount scenario mounted no blob')
    }
  }
}

export function crossRegistry(a: TestRegistry, b: TestRegistry): Scenario {
  const repo = 'bench/big'
  const plats = platforms(5)
  let digests: string[] = []
  return {
    id: 'cross-registry',
    title: `5 sources, one ${LAYER_MB} MiB layer each, registry A → registry B`,
    delayMs: DELAY_MS,
    async setup() {
      digests = await pushBigSources(a, repo, plats)
    },
    async ours(i) {
      const [pa, pb] = await Promise.all([startProbe(a.url), startProbe(b.url)])
      return {
        inputs: {
          // Run 0 (the warm-up) leaves every blob in B's blob store, so every measured run,
          // ours and the peers', finds the same state: blobs in B but not linked in the repository.
          tags: `${pb.proxy.host}/bench/xreg-${i}:v1`,
          sources: digests.join('\n'),
          'source-repository': `${pa.proxy.host}/${repo}`
        },
        probes: [pa, pb]
      }
    },
    async peer(peer, i) {
      const [pa, pb] = await Promise.all([startProbe(a.url), startProbe(b.url)])
      const target = `bench/xreg-${peer}-${i}`
      return {
        sources: digests.map((d) => `${pa.proxy.host}/${repo}@${d}`),
        target: `${pb.proxy.host}/${target}:v1`,
        probes: [pa, pb],
        verify: () => verifyIndex(b, target, 'v1', plats)
      }
    },
    cannot: { docker: 'copies no blob from another registry' },
    check(s) {
      if ((s.kinds.get('PUT upload') ?? 0) < 5) throw new Error('cross-registry: blobs not copied')
    }
  }
}

export function skipScenario(reg: TestRegistry): Scenario {
  let digests: string[] = []
  const tags = (host: string): string =>
    ['a', 'b', 'c'].map((r) => `${host}/bench/skip-${r}:current`).join('\n')
  return {
    id: 'skip',
    title: '3 tags in 3 repositories, all already current (rerun)',
    delayMs: DELAY_MS,
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
