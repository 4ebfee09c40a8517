// The merge against the real Distribution registry, checked with real clients (skopeo, buildah).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { mergeWith } from '../helpers/merge.js'
import {
  getManifest,
  MT,
  pushAttestationWrapped,
  pushImage,
  pushIndex,
  sha256
} from '../helpers/oci.js'
import { startRegistry, snapshotStorage, type TestRegistry } from '../helpers/registry.js'
import { buildahImage, buildahPullArch, skopeoCopyAll, skopeoInspectRaw } from '../helpers/tools.js'

let reg: TestRegistry

const digests = (index: { manifests: Array<{ digest: string }> }): string[] =>
  index.manifests.map((m) => m.digest)

beforeAll(async () => {
  reg = await startRegistry()
})
afterAll(async () => {
  await reg?.stop()
})

describe('merge into one repository', () => {
  it('merges an attestation-wrapped amd64 source with a plain arm64 source', async () => {
    const amd = await pushAttestationWrapped(reg, 'app', { arch: 'amd64', seed: 'm1' })
    const arm = await buildahImage(reg, 'app', 'arm64', {
      arch: 'arm64',
      variant: 'v8',
      format: 'docker'
    })

    const r = await mergeWith({
      tags: `${reg.host}/app:1.0`,
      sources: `${reg.host}/app@${amd.indexDigest}\n${reg.host}/app:arm64`
    })

    const served = await getManifest(reg, 'app', '1.0')
    expect(served?.digest).toBe(r.index.digest)
    expect(served?.body).toBe(r.index.json)
    expect(served?.mediaType).toBe(MT.ociIndex)
    const doc = JSON.parse(served!.body) as {
      manifests: Array<Record<string, unknown> & { digest: string }>
    }
    expect(digests(doc)).toEqual([amd.imageDigest, amd.attestationDigest, arm])
    expect(doc.manifests[0].platform).toEqual({ architecture: 'amd64', os: 'linux' })
    expect(doc.manifests[1].annotations).toEqual({
      'vnd.docker.reference.digest': amd.imageDigest,
      'vnd.docker.reference.type': 'attestation-manifest'
    })
    expect(doc.manifests[2]).toMatchObject({
      mediaType: MT.dockerManifest,
      platform: { architecture: 'arm64', os: 'linux', variant: 'v8' }
    })
    expect(r.platforms).toEqual(['linux/amd64', 'linux/arm64/v8'])
    expect(r.images).toEqual([`${reg.host}/app@${r.index.digest}`])

    // Real clients read what was pushed.
    const raw = await skopeoInspectRaw(`${reg.host}/app:1.0`)
    expect(sha256(raw)).toBe(r.index.digest)
    const dir = await mkdtemp(join(tmpdir(), 'mm-oci-'))
    try {
      await skopeoCopyAll(`${reg.host}/app:1.0`, join(dir, 'layout'))
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
    const pulled = await buildahPullArch(`${reg.host}/app:1.0`, 'arm64')
    expect(pulled.architecture).toBe('arm64')
  })

  it('makes a Docker manifest list from Docker v2 images and an OCI index on request', async () => {
    const amd = await buildahImage(reg, 'plain', 'amd64', { arch: 'amd64', format: 'docker' })
    const arm = await buildahImage(reg, 'plain', 'armv7', {
      arch: 'arm',
      variant: 'v7',
      format: 'docker'
    })
    const sources = `${reg.host}/plain@${amd}, ${reg.host}/plain@${arm}`
    const r = await mergeWith({ tags: `${reg.host}/plain:list`, sources })
    expect(r.index.mediaType).toBe(MT.dockerList)
    expect((await getManifest(reg, 'plain', 'list'))?.digest).toBe(r.index.digest)
    expect(r.platforms).toEqual(['linux/amd64', 'linux/arm/v7'])

    const o = await mergeWith({ tags: `${reg.host}/plain:oci`, sources, format: 'oci' })
    expect(o.index.mediaType).toBe(MT.ociIndex)
    expect((await getManifest(reg, 'plain', 'oci'))?.mediaType).toBe(MT.ociIndex)
  })

  it('flattens multi-platform and nested index sources and merges them with single images', async () => {
    const a = await pushImage(reg, 'nest', { arch: 'amd64', seed: 'n' })
    const b = await pushImage(reg, 'nest', { arch: 'arm64', variant: 'v8', seed: 'n' })
    const inner = await pushIndex(reg, 'nest', undefined, [a.descriptor])
    const outer = await pushIndex(reg, 'nest', 'multi', [
      { mediaType: MT.ociIndex, digest: inner.digest, size: inner.size },
      b.descriptor
    ])
    const s390 = await pushAttestationWrapped(reg, 'nest', {
      arch: 's390x',
      seed: 'n',
      predicates: ['https://spdx.dev/Document']
    })
    const r = await mergeWith({
      tags: `${reg.host}/nest:all`,
      sources: `${reg.host}/nest:multi\n${s390.indexDigest}`
    })
    expect(outer.digest).toBeTruthy()
    const doc = JSON.parse((await getManifest(reg, 'nest', 'all'))!.body) as {
      manifests: Array<{ digest: string }>
    }
    expect(digests(doc)).toEqual([a.digest, b.digest, s390.imageDigest, s390.attestationDigest])
    expect(r.platforms).toEqual(['linux/amd64', 'linux/arm64/v8', 'linux/s390x'])
  })

  it('strips attestations when asked', async () => {
    const amd = await pushAttestationWrapped(reg, 'strip', { arch: 'amd64', seed: 's' })
    const arm = await pushAttestationWrapped(reg, 'strip', { arch: 'arm64', seed: 's' })
    const r = await mergeWith({
      tags: `${reg.host}/strip:1`,
      sources: `${amd.indexDigest},${arm.indexDigest}`,
      attestations: 'strip'
    })
    const doc = JSON.parse((await getManifest(reg, 'strip', '1'))!.body) as {
      manifests: Array<{ digest: string }>
    }
    expect(digests(doc)).toEqual([amd.imageDigest, arm.imageDigest])
    expect(r.index.mediaType).toBe(MT.ociIndex)
  })

  it('fails without touching the registry when the sources cannot form the index asked for', async () => {
    const a = await pushImage(reg, 'bad', { arch: 'amd64', seed: 'b', format: 'oci' })
    const before = await snapshotStorage(reg.storageDir)
    await expect(
      mergeWith({ tags: `${reg.host}/bad:x`, sources: a.digest, format: 'docker' })
    ).rejects.toThrow(/Docker manifest list can only hold Docker v2 manifests/)
    await expect(
      mergeWith({ tags: `${reg.host}/bad:x`, sources: `${reg.host}/bad@sha256:${'0'.repeat(64)}` })
    ).rejects.toThrow(
      new RegExp(`manifest ${reg.host}/bad@sha256:0{64} not found on registry ${reg.host}`)
    )
    expect(await snapshotStorage(reg.storageDir)).toEqual(before)
    expect(await getManifest(reg, 'bad', 'x')).toBeUndefined()
  })
})
