// The scenarios: what each one pushes, and the inputs (ours) or sources and target (buildah's)
// of each run, through a fresh proxy per run.
import type { TestRegistry } from '../__tests__/helpers/registry.js'
import { platforms, pushBig, pushSmall, pushWrapped } from './fixtures.js'
import type { Sample } from './measure.js'
import { startProbe, type Probe } from './probe.js'
import { LAYER_MB, progress } from './settings.js'

export interface Scenario {
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

export function sameRepo(reg: TestRegistry, n: number): Scenario {
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

export function mountScenario(reg: TestRegistry): Scenario {
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

export function crossRegistry(a: TestRegistry, b: TestRegistry): Scenario {
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

export function skipScenario(reg: TestRegistry): Scenario {
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
