// Cross-repository and cross-registry merges, many tags, idempotent reruns and dry runs,
// against real Distribution registries (a proxy in front only counts or refuses mounts).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { mergeWith } from '../helpers/merge.js'
import {
  blobExists,
  getManifest,
  pushAttestationWrapped,
  pushImage,
  type PushedImage
} from '../helpers/oci.js'
import { refuse, refuseMounts, startProxy, type TestProxy } from '../helpers/proxy.js'
import { startRegistry, snapshotStorage, type TestRegistry } from '../helpers/registry.js'
import { buildahImage } from '../helpers/tools.js'

let a: TestRegistry
let b: TestRegistry
let proxyA: TestProxy

beforeAll(async () => {
  ;[a, b] = await Promise.all([startRegistry(), startRegistry()])
  proxyA = await startProxy(a.url)
})
afterAll(async () => {
  await proxyA?.stop()
  await Promise.all([a?.stop(), b?.stop()])
})

/** Every manifest and blob of an image is present in `repo`. */
async function assertImageIn(reg: TestRegistry, repo: string, img: PushedImage): Promise<void> {
  expect((await getManifest(reg, repo, img.digest))?.digest).toBe(img.digest)
  for (const d of [img.configDigest, ...img.layerDigests])
    expect(await blobExists(reg, repo, d)).toBe(true)
}

describe('cross-repository sources', () => {
  it('mounts the blobs of a staging repository into the release repository', async () => {
    const amd = await pushAttestationWrapped(a, 'staging', { arch: 'amd64', seed: 'x1' })
    const arm = await pushImage(a, 'staging', {
      arch: 'arm64',
      variant: 'v8',
      seed: 'x1',
      layers: 3
    })
    expect(await blobExists(a, 'release', arm.layerDigests[0])).toBe(false)

    const r = await mergeWith({
      tags: `${a.host}/release:1.2.3`,
      sources: `${amd.indexDigest}\n${arm.digest}`,
      'source-repository': `${a.host}/staging`
    })

    expect((await getManifest(a, 'release', '1.2.3'))?.digest).toBe(r.index.digest)
    await assertImageIn(a, 'release', amd.image)
    await assertImageIn(a, 'release', arm)
    expect((await getManifest(a, 'release', amd.attestationDigest))?.digest).toBe(
      amd.attestationDigest
    )
    expect(r.log.join('\n')).toMatch(
      /release: 3 manifest\(s\) pushed, 8 blob\(s\) mounted, 0 streamed/
    )
  })

  it('falls back to a streamed upload when the registry answers a mount with 202', async () => {
    proxyA.rules.push(refuseMounts)
    try {
      const img = await pushImage(a, 'stage2', { arch: 'ppc64le', seed: 'x2', layers: 2 })
      const r = await mergeWith({
        tags: `${proxyA.host}/rel2:t`,
        sources: `${proxyA.host}/stage2@${img.digest}`
      })
      expect((await getManifest(a, 'rel2', 't'))?.digest).toBe(r.index.digest)
      await assertImageIn(a, 'rel2', img)
      expect(r.log.join('\n')).toMatch(
        /rel2: 1 manifest\(s\) pushed, 0 blob\(s\) mounted, 3 streamed/
      )
    } finally {
      proxyA.rules.length = 0
    }
  })

  it('streams children from one registry into another', async () => {
    const amd = await pushAttestationWrapped(a, 'ghcr/app', { arch: 'amd64', seed: 'x3' })
    const arm = await buildahImage(a, 'ghcr/app', 'arm64', {
      arch: 'arm64',
      variant: 'v8',
      format: 'oci'
    })
    const r = await mergeWith({
      tags: `${b.host}/hub/app:v1`,
      sources: `${a.host}/ghcr/app@${amd.indexDigest}\n${a.host}/ghcr/app:arm64`
    })
    expect((await getManifest(b, 'hub/app', 'v1'))?.digest).toBe(r.index.digest)
    await assertImageIn(b, 'hub/app', amd.image)
    expect((await getManifest(b, 'hub/app', arm))?.digest).toBe(arm)
    expect(r.log.join('\n')).toMatch(
      /hub\/app: 3 manifest\(s\) pushed, 0 blob\(s\) mounted, 6 streamed, 0 already present/
    )
  })
})

describe('many tags, reruns and dry runs', () => {
  it('copies children once per repository, PUTs the index once per tag, and skips unchanged tags on rerun', async () => {
    const x = await pushImage(a, 'multi/src', { arch: 'amd64', seed: 'x4' })
    const y = await pushAttestationWrapped(a, 'multi/src', { arch: 'arm64', seed: 'x4' })
    const tags = [
      `${proxyA.host}/multi/one:a`,
      `${proxyA.host}/multi/one:b`,
      `${proxyA.host}/multi/two:c`,
      `${b.host}/multi/three:d`
    ]
    const inputs = {
      tags: tags.join('\n'),
      sources: `${proxyA.host}/multi/src@${x.digest},${proxyA.host}/multi/src@${y.indexDigest}`
    }
    proxyA.reset()
    const r = await mergeWith(inputs)
    for (const [reg, repo, tag] of [
      [a, 'multi/one', 'a'],
      [a, 'multi/one', 'b'],
      [a, 'multi/two', 'c'],
      [b, 'multi/three', 'd']
    ] as const) {
      expect((await getManifest(reg, repo, tag))?.digest).toBe(r.index.digest)
    }
    // 3 children (amd64, arm64, attestation) into each of the two proxied repositories.
    expect(proxyA.count('PUT', /^\/v2\/multi\/one\/manifests\/sha256:/)).toBe(3)
    expect(proxyA.count('PUT', /^\/v2\/multi\/two\/manifests\/sha256:/)).toBe(3)
    expect(proxyA.count('PUT', /\/manifests\/[ab]$/)).toBe(2)
    expect(proxyA.count('PUT', /\/manifests\/c$/)).toBe(1)
    // The two sources, and the two children of the wrapped one (to list their blobs): each once.
    const gets = proxyA.requests
      .filter((q) => q.method === 'GET' && q.path.includes('/manifests/'))
      .map((q) => q.path)
    expect(gets).toHaveLength(4)
    expect(new Set(gets).size).toBe(4)
    expect(r.tags.map((t) => t.outcome)).toEqual(['pushed', 'pushed', 'pushed', 'pushed'])

    proxyA.reset()
    const again = await mergeWith(inputs)
    expect(again.index.digest).toBe(r.index.digest)
    expect(again.tags.map((t) => t.outcome)).toEqual([
      'unchanged',
      'unchanged',
      'unchanged',
      'unchanged'
    ])
    expect(proxyA.count('PUT', /./)).toBe(0)
    expect(proxyA.count('POST', /./)).toBe(0)
    expect(again.log.join('\n')).toMatch(/multi\/one:a already points at sha256:/)
  })

  it('dry-run builds the index and writes nothing anywhere', async () => {
    const x = await pushImage(a, 'dry/src', { arch: 'amd64', seed: 'x5' })
    const y = await pushImage(a, 'dry/src', { arch: 'arm64', seed: 'x5' })
    const [beforeA, beforeB] = await Promise.all([
      snapshotStorage(a.storageDir),
      snapshotStorage(b.storageDir)
    ])
    const r = await mergeWith({
      tags: `${a.host}/dry/out:1\n${b.host}/dry/out:1`,
      sources: `${a.host}/dry/src@${x.digest}\n${a.host}/dry/src@${y.digest}`,
      'dry-run': 'true'
    })
    expect(r.index.digest).toMatch(/^sha256:[a-f0-9]{64}$/)
    expect(r.tags.map((t) => t.outcome)).toEqual(['dry-run', 'dry-run'])
    expect(await snapshotStorage(a.storageDir)).toEqual(beforeA)
    expect(await snapshotStorage(b.storageDir)).toEqual(beforeB)
  })

  it('moves no tag when copying into any target repository fails', async () => {
    const old = await pushImage(a, 'atomic/one', { arch: 'amd64', seed: 'old', tag: 'live' })
    const x = await pushImage(a, 'atomic/src', { arch: 'amd64', seed: 'x6' })
    // The second repository refuses child manifests.
    proxyA.rules.push(
      refuse('PUT', /^\/v2\/atomic\/two\/manifests\/sha256:/, 400, 'MANIFEST_INVALID')
    )
    try {
      await expect(
        mergeWith({
          tags: `${proxyA.host}/atomic/one:live\n${proxyA.host}/atomic/two:live`,
          sources: `${proxyA.host}/atomic/src@${x.digest}`
        })
      ).rejects.toThrow(
        /PUT manifest sha256:.* in 127\.0\.0\.1:\d+\/atomic\/two failed: HTTP 400 \(MANIFEST_INVALID: refused by test\)/
      )
    } finally {
      proxyA.rules.length = 0
    }
    expect((await getManifest(a, 'atomic/one', 'live'))?.digest).toBe(old.digest)
    expect(await getManifest(a, 'atomic/two', 'live')).toBeUndefined()
  })

  it('runs independent requests in parallel within max-concurrency', async () => {
    const imgs = await Promise.all(
      ['amd64', 'arm64', 'ppc64le', 's390x', '386', 'riscv64'].map((arch) =>
        pushImage(a, 'conc/src', { arch, seed: 'x7', layers: 2 })
      )
    )
    proxyA.delayMs = 30
    proxyA.reset()
    try {
      await mergeWith({
        tags: `${proxyA.host}/conc/out:1`,
        sources: imgs.map((i) => `${proxyA.host}/conc/src@${i.digest}`).join('\n'),
        'max-concurrency': '3'
      })
    } finally {
      proxyA.delayMs = 0
    }
    expect(proxyA.maxInFlight).toBe(3)
  })
})

describe('a tag push that fails after another tag moved', () => {
  it('puts the moved tags back on what they held', async () => {
    const old = await pushImage(a, 'roll/one', { arch: 'amd64', seed: 'old', tag: 'v1' })
    await pushImage(a, 'roll/two', { arch: 'amd64', seed: 'old', tag: 'v1' })
    const x = await pushImage(a, 'roll/src', { arch: 'amd64', seed: 'new' })
    // roll/two refuses the index PUT (not a conflict: a plain server error that outlasts the retries).
    proxyA.rules.push(refuse('PUT', /^\/v2\/roll\/two\/manifests\/v1$/, 400, 'MANIFEST_INVALID'))
    try {
      const err = await mergeWith({
        tags: `${proxyA.host}/roll/one:v1\n${proxyA.host}/roll/two:v1`,
        sources: `${proxyA.host}/roll/src@${x.digest}`
      }).catch((e: Error) => e)
      expect((err as Error).message).toMatch(/refused by test/)
    } finally {
      proxyA.rules.length = 0
    }
    expect((await getManifest(a, 'roll/one', 'v1'))?.digest).toBe(old.digest)
  })
})

describe('credentials and upload Locations', () => {
  it('never sends the Authorization header to an upload Location on another origin', async () => {
    const secured = await startRegistry({ htpasswd: { user: 'me', password: 's3cret' } })
    const px = await startProxy(secured.url)
    const offOrigin: Array<string | undefined> = []
    // The registry hands out upload sessions on another origin (localhost instead of 127.0.0.1).
    px.rules.push((req, res) => {
      if (req.headers.host?.startsWith('localhost')) offOrigin.push(req.headers.authorization)
      if (req.method === 'POST' && req.url?.includes('/blobs/uploads/')) {
        const writeHead = res.writeHead.bind(res) as (...a: unknown[]) => typeof res
        res.writeHead = ((status: number, headers?: Record<string, string | string[]>) => {
          const h = { ...headers }
          if (typeof h.location === 'string')
            h.location = h.location.replace(`//${px.host}`, `//localhost:${px.host.split(':')[1]}`)
          return writeHead(status, h)
        }) as typeof res.writeHead
      }
      return false
    })
    try {
      const img = await pushImage(secured, 'loc/src', { arch: 'amd64', seed: 'loc' })
      px.rules.unshift(refuseMounts)
      await mergeWith({
        tags: `${px.host}/loc/dst:1`,
        sources: `${px.host}/loc/src@${img.digest}`,
        username: 'me',
        password: 's3cret'
      }).catch(() => undefined)
      expect(offOrigin.length).toBeGreaterThan(0)
      expect(offOrigin.every((h) => h === undefined)).toBe(true)
    } finally {
      await px.stop()
      await secured.stop()
    }
  })
})
