// Flaky registries: the merge through fault-injecting proxies in front of two real registries.
// Sources live on A; tags go to A (mounts) and to B (streamed copies, Bearer tokens from the
// proxy). A watch proxy between each fault proxy and its registry checks that no index is PUT
// while a child is missing.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import {
  ALL_FAULTS,
  startFaultProxy,
  watchIndexPuts,
  type FaultProxy,
  type IndexPutWatch
} from '../helpers/faults.js'
import { mergeWith } from '../helpers/merge.js'
import { getBlob, getManifest, pushImage } from '../helpers/oci.js'
import { startProxy, type TestProxy } from '../helpers/proxy.js'
import { startRegistry, type TestRegistry } from '../helpers/registry.js'
import type { ClientOptions } from '../../src/registry/client.js'

let a: TestRegistry
let b: TestRegistry
let wa: TestProxy
let wb: TestProxy
let pa: FaultProxy
let pb: FaultProxy
let watchA: IndexPutWatch
let watchB: IndexPutWatch

// Short request timeouts so that stalls cost little (undici's timers tick about every 0.5 s).
const FAST: Partial<ClientOptions> = { requestTimeoutMs: 300, maxRetryDelayMs: 400 }

beforeAll(async () => {
  ;[a, b] = await Promise.all([startRegistry(), startRegistry()])
  ;[wa, wb] = await Promise.all([startProxy(a.url), startProxy(b.url)])
  watchA = watchIndexPuts(wa, a.url)
  watchB = watchIndexPuts(wb, b.url)
  ;[pa, pb] = await Promise.all([
    startFaultProxy(wa.url, { seed: 1 }),
    startFaultProxy(wb.url, { seed: 2, tokenAuth: true })
  ])
})
afterAll(async () => {
  await Promise.all([pa?.stop(), pb?.stop(), wa?.stop(), wb?.stop()])
  await Promise.all([a?.stop(), b?.stop()])
})

const tagDigest = async (
  reg: TestRegistry,
  repo: string,
  tag: string
): Promise<string | undefined> => (await getManifest(reg, repo, tag))?.digest

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

describe('transient faults', () => {
  it('retries a token request that stalls', async () => {
    const img = await pushImage(a, 'tok/src', { arch: 'amd64', seed: 'tok' })
    pb.inject({ kind: 'stall', method: 'GET', path: /^\/token/ })
    pb.reset()
    const r = await mergeWith(
      { tags: `${pb.host}/tok/out:1`, sources: `${pa.host}/tok/src@${img.digest}` },
      FAST
    )
    expect(r.log).toContain('retry 1 UND_ERR_HEADERS_TIMEOUT (Headers Timeout Error)')
    expect(pb.count('GET', /^\/token/)).toBeGreaterThanOrEqual(2)
    expect(await tagDigest(b, 'tok/out', '1')).toBe(r.index.digest)
  })

  it('restarts a streamed blob copy reset mid-body with a new upload session', async () => {
    const img = await pushImage(a, 'mid/src', { arch: 'amd64', seed: 'mid' })
    const layer = img.layerDigests[0]
    pa.inject({ kind: 'reset-body', method: 'GET', path: new RegExp(`/mid/src/blobs/${layer}$`) })
    pb.reset()
    const r = await mergeWith(
      { tags: `${pb.host}/mid/out:1`, sources: `${pa.host}/mid/src@${img.digest}` },
      FAST
    )
    expect(r.log).toContain(
      'retry 1 ECONNRESET (the connection closed before the end of the answer)'
    )
    // Config, layer, and the layer again in a new session; the broken session is cancelled.
    expect(pb.count('POST', /^\/v2\/mid\/out\/blobs\/uploads\/$/)).toBe(3)
    expect(pb.count('DELETE', /^\/v2\/mid\/out\/blobs\/uploads\/.+/)).toBe(1)
    expect(await getBlob(b, 'mid/out', layer)).toEqual(await getBlob(a, 'mid/src', layer))
    expect(await tagDigest(b, 'mid/out', '1')).toBe(r.index.digest)
  })

  it('restarts uploads whose PUT was reset or whose answer was lost', async () => {
    const img = await pushImage(a, 'put/src', { arch: 'amd64', seed: 'put' })
    const upload = /^\/v2\/put\/out\/blobs\/uploads\/.+digest=/
    pb.inject({ kind: 'reset', method: 'PUT', path: upload })
    pb.inject({ kind: 'reset-body', method: 'PUT', path: upload })
    const r = await mergeWith(
      { tags: `${pb.host}/put/out:1`, sources: `${pa.host}/put/src@${img.digest}` },
      FAST
    )
    expect(r.retries).toBe(2)
    expect(await tagDigest(b, 'put/out', '1')).toBe(r.index.digest)
  })

  it('waits as long as Retry-After asks', async () => {
    const img = await pushImage(a, 'ra/src', { arch: 'amd64', seed: 'ra' })
    pa.options.retryAfter = '1'
    pa.inject({ kind: '429', method: 'GET', path: /^\/v2\/ra\/src\/manifests\// })
    const delays: number[] = []
    try {
      await mergeWith(
        { tags: `${pa.host}/ra/out:1`, sources: `${pa.host}/ra/src@${img.digest}` },
        { ...FAST, maxRetryDelayMs: 5000, onRetry: (x) => delays.push(x.delayMs) }
      )
    } finally {
      pa.options.retryAfter = undefined
    }
    expect(delays).toEqual([1000])
  })
})

describe('permanent faults', () => {
  it('fail within the budget, move no tag, PUT no index; a rerun completes and is idempotent', async () => {
    const oldA = await pushImage(a, 'perm/out', { arch: 'amd64', seed: 'old', tag: 'live' })
    const oldB = await pushImage(b, 'perm/out', { arch: 'amd64', seed: 'old', tag: 'live' })
    const x = await pushImage(a, 'perm/src', { arch: 'amd64', seed: 'p' })
    const y = await pushImage(a, 'perm/src', { arch: 'arm64', seed: 'p' })
    const values = {
      tags: `${pa.host}/perm/out:live\n${pb.host}/perm/out:live`,
      sources: `${pa.host}/perm/src@${x.digest}\n${pa.host}/perm/src@${y.digest}`,
      retries: '20'
    }
    const putsBefore = watchA.puts + watchB.puts
    const stop = pb.inject({
      kind: '503',
      method: 'PUT',
      path: new RegExp(`^/v2/perm/out/manifests/${y.digest}$`),
      times: Infinity
    })
    const t0 = Date.now()
    const err = (await mergeWith(values, { ...FAST, deadline: t0 + 2000 }).catch(
      (e: unknown) => e
    )) as Error
    stop()
    // The budget is a wall-clock deadline: no retry is scheduled past it, and a request still in
    // flight when it comes is stopped. Either way the message names the request.
    expect(Date.now() - t0).toBeLessThan(2000 + 1000)
    expect(err.message).toMatch(
      new RegExp(
        `^PUT /v2/perm/out/manifests/${y.digest} on ${escape(pb.host)} failed after \\d+ attempt\\(s\\): the time budget \\(input timeout\\) is exhausted \\(\\d+ ms left, the next retry would wait \\d+ ms\\); last error: HTTP 503 \\(UNAVAILABLE: injected by the fault proxy\\)$|` +
          `^PUT manifest ${y.digest} in ${escape(pb.host)}/perm/out: the step's time budget \\(input timeout\\) ran out while waiting for registry ${escape(pb.host)}$`
      )
    )
    expect(await tagDigest(a, 'perm/out', 'live')).toBe(oldA.digest)
    expect(await tagDigest(b, 'perm/out', 'live')).toBe(oldB.digest)
    expect(watchA.puts + watchB.puts).toBe(putsBefore)

    const ok = await mergeWith(values, FAST)
    expect(ok.tags.map((t) => [t.outcome, t.previous])).toEqual([
      ['pushed', oldA.digest],
      ['pushed', oldB.digest]
    ])
    expect(await tagDigest(a, 'perm/out', 'live')).toBe(ok.index.digest)
    expect(await tagDigest(b, 'perm/out', 'live')).toBe(ok.index.digest)
    pa.reset()
    pb.reset()
    const again = await mergeWith(values, FAST)
    expect(again.index.digest).toBe(ok.index.digest)
    expect(again.tags.map((t) => t.outcome)).toEqual(['unchanged', 'unchanged'])
    expect(pa.count('PUT', /./) + pb.count('PUT', /./) + pa.count('POST', /./)).toBe(0)
  })

  it('a registry that stalls for good fails soon after the budget, naming the source', async () => {
    const x = await pushImage(a, 'hang/src', { arch: 'amd64', seed: 'h' })
    const old = await pushImage(b, 'hang/out', { arch: 'amd64', seed: 'old', tag: 'live' })
    const stop = pa.inject({
      kind: 'stall',
      path: /^\/v2\/hang\/src\/manifests\//,
      times: Infinity
    })
    const t0 = Date.now()
    const err = (await mergeWith(
      {
        tags: `${pb.host}/hang/out:live`,
        sources: `${pa.host}/hang/src@${x.digest}`,
        retries: '20'
      },
      { ...FAST, deadline: t0 + 2000 }
    ).catch((e: unknown) => e)) as Error
    stop()
    // The last retry waits for headers no longer than the budget leaves (undici's timers are coarse).
    expect(Date.now() - t0).toBeLessThan(2000 + 1500)
    // The deadline stops the request in flight, the last retry's own timeout comes first, or the
    // registry has let enough attempts time out to be called silent: each names the request.
    expect(err.message).toMatch(
      new RegExp(
        `GET /v2/hang/src/manifests/${x.digest} on ${escape(pa.host)} failed after \\d+ attempt\\(s\\): the time budget \\(input timeout\\) is exhausted .*; last error: UND_ERR_HEADERS_TIMEOUT|` +
          `GET manifest ${escape(pa.host)}/hang/src@${x.digest} in ${escape(pa.host)}/hang/src: the step's time budget \\(input timeout\\) ran out while waiting for registry ${escape(pa.host)}|` +
          `GET manifest ${escape(pa.host)}/hang/src@${x.digest} in ${escape(pa.host)}/hang/src: registry ${escape(pa.host)} did not answer in time, 5 times \\(300 ms each\\); last error: UND_ERR_HEADERS_TIMEOUT`
      )
    )
    expect(await tagDigest(b, 'hang/out', 'live')).toBe(old.digest)
  })
})

describe('soak', () => {
  /** One merge of two fresh images into tag `tag` of A and B; checks the tags either way. */
  async function soakMerge(
    i: number,
    tag: string,
    onRetry: () => void
  ): Promise<string | undefined> {
    const seed = `soak${i}`
    const [x, y] = await Promise.all([
      pushImage(a, 'soak/src', { arch: 'amd64', seed }),
      pushImage(a, 'soak/src', { arch: 'arm64', seed })
    ])
    const tags = (): Promise<Array<string | undefined>> =>
      Promise.all([tagDigest(a, 'soak/out', tag), tagDigest(b, 'soak/out', tag)])
    const before = await tags()
    const values = {
      tags: `${pa.host}/soak/out:${tag}\n${pb.host}/soak/out:${tag}`,
      // The action's default inputs: retries and timeout as a user gets them.
      sources: `${pa.host}/soak/src@${x.digest}\n${pa.host}/soak/src@${y.digest}`
    }
    const r = await mergeWith(values, { ...FAST, deadline: Date.now() + 30_000, onRetry }).catch(
      (e: unknown) => e as Error
    )
    if (r instanceof Error) {
      expect(await tags()).toEqual(before)
      return `merge ${i}: ${r.message}`
    }
    expect(await tags()).toEqual([r.index.digest, r.index.digest])
    return undefined
  }

  it('100 merges through proxies that fault 20 % of requests all succeed, with default inputs', async () => {
    const merges = 100
    const batch = 5
    const kindsBefore = { ...pa.injected }
    const kindsBeforeB = { ...pb.injected }
    const faultsBefore = pa.totalInjected() + pb.totalInjected()
    const putsBefore = watchA.puts + watchB.puts
    let retries = 0
    const failures: string[] = []
    pa.options.rate = pb.options.rate = 0.2
    try {
      // Merges run five at a time, each batch on five distinct tags, most of which already
      // point at an earlier merge's index.
      for (let i = 0; i < merges; i += batch) {
        const results = await Promise.all(
          Array.from({ length: batch }, (_, j) => soakMerge(i + j, `t${j}`, () => retries++))
        )
        failures.push(...results.filter((r): r is string => r !== undefined))
      }
    } finally {
      pa.options.rate = pb.options.rate = 0
    }
    const faults = pa.totalInjected() + pb.totalInjected() - faultsBefore
    console.log(
      `soak: ${merges} merges, ${faults} faults injected (${ALL_FAULTS.map((k) => `${k}: ${pa.injected[k] + pb.injected[k] - kindsBefore[k] - kindsBeforeB[k]}`).join(', ')}), ${retries} retries, ${failures.length} failures, ${watchA.puts + watchB.puts - putsBefore} index PUTs checked`
    )
    expect(failures).toEqual([])
    expect([...watchA.violations, ...watchB.violations]).toEqual([])
    expect(faults).toBeGreaterThan(100)
  })
})
