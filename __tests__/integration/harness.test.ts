// Proves the integration-test helpers work on this machine: registry (plain, htpasswd, TLS),
// raw OCI fixtures, buildah/skopeo wrappers.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {
  MT,
  blobExists,
  getManifest,
  listTags,
  pushAttestationWrapped,
  pushImage,
  request,
  sha256
} from '../helpers/oci.js'
import { snapshotStorage, startRegistry, type TestRegistry } from '../helpers/registry.js'
import {
  buildahImage,
  buildahPullArch,
  skopeoCopyAll,
  skopeoInspectConfig,
  skopeoInspectRaw
} from '../helpers/tools.js'

interface IndexJson {
  mediaType: string
  manifests: {
    mediaType: string
    digest: string
    size: number
    platform?: Record<string, unknown>
    annotations?: Record<string, string>
  }[]
}

describe('test harness', () => {
  const registries: TestRegistry[] = []
  afterAll(async () => {
    await Promise.all(registries.map((r) => r.stop()))
  })

  describe('plain registry', () => {
    let reg: TestRegistry
    beforeAll(async () => {
      reg = await startRegistry()
      registries.push(reg)
    })

    it('answers /v2/ and lists no tags for unknown repos', async () => {
      expect(reg.host).toMatch(/^127\.0\.0\.1:\d+$/)
      expect(reg.url).toBe(`http://${reg.host}`)
      const res = await request(reg, 'GET', '/v2/')
      expect(res.status).toBe(200)
      expect(await listTags(reg, 'nope/nothing')).toEqual([])
      expect(await getManifest(reg, 'nope/nothing', 'latest')).toBeUndefined()
    })

    it('pushes deterministic OCI and Docker images', async () => {
      const a = await pushImage(reg, 'fx/app', { arch: 'arm64', variant: 'v8', tag: 'arm64' })
      const b = await pushImage(reg, 'fx/app', {
        arch: 'amd64',
        format: 'docker',
        tag: 'amd64',
        layers: 2
      })
      const again = await pushImage(reg, 'fx/app', { arch: 'arm64', variant: 'v8' })
      const other = await pushImage(reg, 'fx/app', { arch: 'arm64', variant: 'v8', seed: 'x' })
      expect(again.digest).toBe(a.digest)
      expect(other.digest).not.toBe(a.digest)
      expect(a.digest).not.toBe(b.digest)

      const ma = await getManifest(reg, 'fx/app', 'arm64')
      expect(ma).toEqual({ body: a.body, mediaType: MT.ociManifest, digest: a.digest })
      const mb = await getManifest(reg, 'fx/app', b.digest)
      expect(mb?.mediaType).toBe(MT.dockerManifest)
      expect(JSON.parse(mb!.body).layers).toHaveLength(2)
      for (const d of [a.configDigest, ...a.layerDigests, ...b.layerDigests]) {
        expect(await blobExists(reg, 'fx/app', d)).toBe(true)
      }
      expect(await blobExists(reg, 'fx/app', sha256('missing'))).toBe(false)
      expect((await listTags(reg, 'fx/app')).sort()).toEqual(['amd64', 'arm64'])

      expect(await skopeoInspectRaw(`${reg.host}/fx/app:arm64`)).toBe(a.body)
      const cfg = JSON.parse(await skopeoInspectConfig(`${reg.host}/fx/app:amd64`))
      expect(cfg).toMatchObject({ architecture: 'amd64', os: 'linux' })
      expect(cfg.rootfs.diff_ids).toHaveLength(2)
    })

    it('pushes windows images with os.version / os.features', async () => {
      const w = await pushImage(reg, 'fx/win', {
        arch: 'amd64',
        os: 'windows',
        osVersion: '10.0.20348.2227',
        osFeatures: ['win32k'],
        tag: 'ltsc2022'
      })
      expect(w.descriptor.platform).toEqual({
        architecture: 'amd64',
        os: 'windows',
        'os.version': '10.0.20348.2227',
        'os.features': ['win32k']
      })
      const cfg = JSON.parse(await skopeoInspectConfig(`${reg.host}/fx/win:ltsc2022`))
      expect(cfg['os.version']).toBe('10.0.20348.2227')
    })

    it('pushes a buildx-style attestation-wrapped index', async () => {
      const att = await pushAttestationWrapped(reg, 'fx/att', {
        arch: 'arm64',
        variant: 'v8',
        tag: 'arm64',
        predicates: ['https://slsa.dev/provenance/v1', 'https://spdx.dev/Document']
      })
      const m = await getManifest(reg, 'fx/att', 'arm64')
      expect(m).toEqual({ body: att.indexBody, mediaType: MT.ociIndex, digest: att.indexDigest })
      const index = JSON.parse(m!.body) as IndexJson
      expect(index.manifests).toHaveLength(2)
      expect(index.manifests[0]).toMatchObject({
        digest: att.imageDigest,
        platform: { architecture: 'arm64', os: 'linux', variant: 'v8' }
      })
      expect(index.manifests[1]).toMatchObject({
        digest: att.attestationDigest,
        platform: { architecture: 'unknown', os: 'unknown' },
        annotations: {
          'vnd.docker.reference.type': 'attestation-manifest',
          'vnd.docker.reference.digest': att.imageDigest
        }
      })
      const am = await getManifest(reg, 'fx/att', att.attestationDigest)
      const attManifest = JSON.parse(am!.body) as IndexJson & {
        layers: { mediaType: string; annotations: Record<string, string> }[]
      }
      expect(attManifest.layers.map((l) => l.mediaType)).toEqual([MT.inToto, MT.inToto])
      expect(attManifest.layers.map((l) => l.annotations['in-toto.io/predicate-type'])).toEqual([
        'https://slsa.dev/provenance/v1',
        'https://spdx.dev/Document'
      ])

      expect(await skopeoInspectRaw(`${reg.host}/fx/att:arm64`)).toBe(att.indexBody)
      const dest = await mkdtemp(path.join(os.tmpdir(), 'mam-oci-'))
      try {
        await skopeoCopyAll(`${reg.host}/fx/att:arm64`, dest, { preserveDigests: true })
        const layoutIndex = JSON.parse(await readFile(path.join(dest, 'index.json'), 'utf8'))
        expect(layoutIndex.manifests[0].digest).toBe(att.indexDigest)
      } finally {
        await rm(dest, { recursive: true, force: true })
      }
    })

    it('builds and pushes real images with buildah (docker and oci, arm64 and amd64)', async () => {
      const dArm = await buildahImage(reg, 'fx/buildah', 'docker-arm64', {
        arch: 'arm64',
        variant: 'v8',
        format: 'docker'
      })
      const oAmd = await buildahImage(reg, 'fx/buildah', 'oci-amd64', {
        arch: 'amd64',
        format: 'oci',
        content: 'hello'
      })
      const m1 = await getManifest(reg, 'fx/buildah', 'docker-arm64')
      expect(m1?.digest).toBe(dArm)
      expect(m1?.mediaType).toBe(MT.dockerManifest)
      const m2 = await getManifest(reg, 'fx/buildah', 'oci-amd64')
      expect(m2?.digest).toBe(oAmd)
      expect(m2?.mediaType).toBe(MT.ociManifest)
      expect(sha256(await skopeoInspectRaw(`${reg.host}/fx/buildah:docker-arm64`))).toBe(dArm)
      const cfg = JSON.parse(await skopeoInspectConfig(`${reg.host}/fx/buildah:docker-arm64`))
      expect(cfg).toMatchObject({ architecture: 'arm64', variant: 'v8', os: 'linux' })

      const pulled = await buildahPullArch(`${reg.host}/fx/buildah:oci-amd64`, 'amd64')
      expect(pulled.architecture).toBe('amd64')
      expect(pulled.os).toBe('linux')
      expect(pulled.digest).toBe(oAmd)
    })

    it('buildah pulls the right platform out of an attestation-wrapped index', async () => {
      const att = await pushAttestationWrapped(reg, 'fx/pull', { arch: 'arm64', tag: 'multi' })
      const pulled = await buildahPullArch(`${reg.host}/fx/pull:multi`, 'arm64')
      expect(pulled.architecture).toBe('arm64')
      expect(pulled.digest).toBe(att.imageDigest)
    })

    it('snapshotStorage is unchanged by read-only operations', async () => {
      await pushImage(reg, 'fx/ro', { arch: 'amd64', tag: 'v1' })
      const before = await snapshotStorage(reg.storageDir)
      expect(before.size).toBeGreaterThan(0)
      expect([...before.keys()].some((k) => k.includes('fx/ro/_manifests/tags/v1'))).toBe(true)
      await getManifest(reg, 'fx/ro', 'v1')
      await listTags(reg, 'fx/ro')
      await skopeoInspectRaw(`${reg.host}/fx/ro:v1`)
      await skopeoInspectConfig(`${reg.host}/fx/ro:v1`)
      const after = await snapshotStorage(reg.storageDir)
      expect(after).toEqual(before)
      await pushImage(reg, 'fx/ro', { arch: 'amd64', tag: 'v2' })
      expect(await snapshotStorage(reg.storageDir)).not.toEqual(before)
    })
  })

  describe('htpasswd registry', () => {
    let reg: TestRegistry
    beforeAll(async () => {
      reg = await startRegistry({ htpasswd: { user: 'alice', password: 's3cret' } })
      registries.push(reg)
    })

    it('requires credentials and accepts the right ones', async () => {
      const anon = await request({ url: reg.url }, 'GET', '/v2/')
      expect(anon.status).toBe(401)
      expect(anon.headers['www-authenticate']).toMatch(/^Basic realm=/)
      const bad = await request(
        { url: reg.url, auth: { user: 'alice', password: 'x' } },
        'GET',
        '/v2/'
      )
      expect(bad.status).toBe(401)
      const img = await pushImage(reg, 'fx/auth', { arch: 'arm64', tag: 'v1' })
      expect((await getManifest(reg, 'fx/auth', 'v1'))?.digest).toBe(img.digest)
      const digest = await buildahImage(reg, 'fx/auth', 'b', { arch: 'amd64', format: 'oci' })
      expect(
        sha256(await skopeoInspectRaw(`${reg.host}/fx/auth:b`, { creds: 'alice:s3cret' }))
      ).toBe(digest)
      await expect(skopeoInspectRaw(`${reg.host}/fx/auth:b`)).rejects.toThrow(
        /unauthorized|authentication/i
      )
    })
  })

  describe('TLS registry', () => {
    let reg: TestRegistry
    beforeAll(async () => {
      reg = await startRegistry({ tls: true })
      registries.push(reg)
    })

    it('serves https with a CA the helpers and tools trust', async () => {
      expect(reg.url).toBe(`https://${reg.host}`)
      expect(reg.caFile).toBeDefined()
      expect(reg.caDir).toBeDefined()
      const img = await pushAttestationWrapped(reg, 'fx/tls', { arch: 'amd64', tag: 'v1' })
      expect((await getManifest(reg, 'fx/tls', 'v1'))?.digest).toBe(img.indexDigest)
      await expect(request({ url: reg.url }, 'GET', '/v2/')).rejects.toThrow(/certificate/i)
      expect(await skopeoInspectRaw(`${reg.host}/fx/tls:v1`, { caDir: reg.caDir })).toBe(
        img.indexBody
      )
      const digest = await buildahImage(reg, 'fx/tls', 'b', { arch: 'arm64', format: 'docker' })
      expect((await getManifest(reg, 'fx/tls', 'b'))?.digest).toBe(digest)
      // localhost is in the SAN too
      expect(
        await skopeoInspectRaw(`${reg.host.replace('127.0.0.1', 'localhost')}/fx/tls:b`, {
          caDir: reg.caDir
        })
      ).toBeTruthy()
    })
  })

  it('stop() kills the registry and removes its storage', async () => {
    const reg = await startRegistry()
    await pushImage(reg, 'fx/x', { arch: 'amd64', tag: 'v1' })
    await reg.stop()
    await expect(request(reg, 'GET', '/v2/')).rejects.toThrow()
    await expect(readFile(reg.logFile)).rejects.toThrow()
    await reg.stop() // idempotent
  })
})
