// Attestations (keep, strip, strip-provenance), platform filters and annotations, checked on
// what the real registry holds and with skopeo and buildah.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { mergeWith } from '../helpers/merge.js'
import {
  blobExists,
  getBlob,
  getManifest,
  MT,
  pushAttestationWrapped,
  pushBlob,
  pushImage,
  pushIndex,
  pushManifest,
  sha256,
  type PushedAttestationWrapped,
  type PushedImage
} from '../helpers/oci.js'
import { startRegistry, type TestRegistry } from '../helpers/registry.js'
import { buildahPullArch, skopeoInspectRaw } from '../helpers/tools.js'

const PROV02 = 'https://slsa.dev/provenance/v0.2'
const PROV1 = 'https://slsa.dev/provenance/v1'
const SPDX = 'https://spdx.dev/Document'

interface Entry {
  digest: string
  mediaType: string
  size: number
  platform?: Record<string, unknown>
  annotations?: Record<string, string>
  artifactType?: string
}
interface Manifest {
  config: Entry
  layers: Entry[]
}

let reg: TestRegistry
let both: PushedAttestationWrapped // linux/amd64: provenance + SBOM
let prov: PushedAttestationWrapped // linux/arm64: provenance only
let sbom: PushedAttestationWrapped // windows/amd64 with os.version: SBOM only
let plain: PushedImage // linux/s390x: no attestations
let sources: string

async function served(
  repo: string,
  ref: string
): Promise<{ digest: string; manifests: Entry[]; annotations?: Record<string, string> }> {
  const m = await getManifest(reg, repo, ref)
  if (!m) throw new Error(`${repo}:${ref} is missing`)
  return {
    digest: m.digest,
    ...(JSON.parse(m.body) as { manifests: Entry[]; annotations?: Record<string, string> })
  }
}

beforeAll(async () => {
  reg = await startRegistry()
  both = await pushAttestationWrapped(reg, 'att/src', {
    arch: 'amd64',
    seed: 'a',
    predicates: [PROV02, SPDX]
  })
  prov = await pushAttestationWrapped(reg, 'att/src', {
    arch: 'arm64',
    variant: 'v8',
    seed: 'a',
    predicates: [PROV1]
  })
  sbom = await pushAttestationWrapped(reg, 'att/src', {
    arch: 'amd64',
    os: 'windows',
    osVersion: '10.0.20348.2700',
    seed: 'a',
    predicates: [SPDX]
  })
  plain = await pushImage(reg, 'att/src', { arch: 's390x', seed: 'a' })
  sources = [both.indexDigest, prov.indexDigest, sbom.indexDigest, plain.digest].join('\n')
})
afterAll(async () => {
  await reg?.stop()
})

describe('attestations', () => {
  it('keep: every attestation follows its image with its annotations intact, and real clients read the index', async () => {
    const r = await mergeWith({
      tags: `${reg.host}/att/keep:1`,
      sources,
      'source-repository': `${reg.host}/att/src`
    })
    const idx = await served('att/keep', '1')
    expect(idx.digest).toBe(r.index.digest)
    expect(idx.manifests.map((m) => m.digest)).toEqual([
      both.imageDigest,
      both.attestationDigest,
      prov.imageDigest,
      prov.attestationDigest,
      sbom.imageDigest,
      sbom.attestationDigest,
      plain.digest
    ])
    expect(idx.manifests[1].annotations).toEqual({
      'vnd.docker.reference.digest': both.imageDigest,
      'vnd.docker.reference.type': 'attestation-manifest'
    })
    expect(idx.manifests[4].platform).toEqual({
      architecture: 'amd64',
      os: 'windows',
      'os.version': '10.0.20348.2700'
    })
    expect(r.platformDigests).toEqual({
      'linux/amd64': both.imageDigest,
      'linux/arm64/v8': prov.imageDigest,
      'windows/amd64:10.0.20348.2700': sbom.imageDigest,
      'linux/s390x': plain.digest
    })
    expect(JSON.parse(await skopeoInspectRaw(`${reg.host}/att/keep:1`))).toEqual(
      JSON.parse(r.index.json)
    )
    const pulled = await buildahPullArch(`${reg.host}/att/keep:1`, 'arm64')
    expect(pulled.architecture).toBe('arm64')
  })

  it('strip: no attestation is left', async () => {
    await mergeWith({
      tags: `${reg.host}/att/strip:1`,
      sources,
      'source-repository': `${reg.host}/att/src`,
      attestations: 'strip'
    })
    const idx = await served('att/strip', '1')
    expect(idx.manifests.map((m) => m.digest)).toEqual([
      both.imageDigest,
      prov.imageDigest,
      sbom.imageDigest,
      plain.digest
    ])
  })

  it('strip-provenance: rewrites mixed attestations, drops provenance-only ones, keeps SBOM-only ones', async () => {
    const r = await mergeWith({
      tags: `${reg.host}/att/noprov:1`,
      sources,
      'source-repository': `${reg.host}/att/src`,
      attestations: 'strip-provenance'
    })
    const idx = await served('att/noprov', '1')
    expect(idx.digest).toBe(r.index.digest)
    const digests = idx.manifests.map((m) => m.digest)
    expect(digests).toHaveLength(6)
    expect(digests.slice(2)).toEqual([
      prov.imageDigest,
      sbom.imageDigest,
      sbom.attestationDigest,
      plain.digest
    ])
    expect(digests[0]).toBe(both.imageDigest)
    const rewritten = idx.manifests[1]
    expect(rewritten.digest).not.toBe(both.attestationDigest)
    expect(rewritten.annotations).toEqual({
      'vnd.docker.reference.digest': both.imageDigest,
      'vnd.docker.reference.type': 'attestation-manifest'
    })
    expect(rewritten.platform).toEqual({ architecture: 'unknown', os: 'unknown' })

    // The rewritten attestation is in the target repository, with only the SBOM statement and a config to match.
    const att = await getManifest(reg, 'att/noprov', rewritten.digest)
    expect(att?.digest).toBe(rewritten.digest)
    const m = JSON.parse(att!.body) as Manifest
    expect(m.layers.map((l) => l.annotations?.['in-toto.io/predicate-type'])).toEqual([SPDX])
    expect(await blobExists(reg, 'att/noprov', m.layers[0].digest)).toBe(true)
    const cfg = JSON.parse((await getBlob(reg, 'att/noprov', m.config.digest)).toString()) as {
      rootfs: { diff_ids: string[] }
    }
    expect(cfg.rootfs.diff_ids).toEqual([m.layers[0].digest])
    expect(r.log.join('\n')).toMatch(/drop attestation .* it held only provenance/)

    // Deterministic: the same merge again changes nothing.
    const again = await mergeWith({
      tags: `${reg.host}/att/noprov:1`,
      sources,
      'source-repository': `${reg.host}/att/src`,
      attestations: 'strip-provenance'
    })
    expect(again.index.digest).toBe(r.index.digest)
    expect(again.tags[0].outcome).toBe('unchanged')
  })

  it('a platforms filter keeps matching images with their attestations only', async () => {
    const r = await mergeWith({
      tags: `${reg.host}/att/arm:1`,
      sources,
      'source-repository': `${reg.host}/att/src`,
      platforms: 'linux/arm64, windows/amd64'
    })
    const idx = await served('att/arm', '1')
    expect(idx.manifests.map((m) => m.digest)).toEqual([
      prov.imageDigest,
      prov.attestationDigest,
      sbom.imageDigest,
      sbom.attestationDigest
    ])
    expect(r.platforms).toEqual(['linux/arm64/v8', 'windows/amd64'])
  })
})

describe('annotations and multi-platform sources', () => {
  it('adds index and descriptor annotations, preserving child annotations and artifactType', async () => {
    const a = await pushImage(reg, 'ann/src', { arch: 'amd64', seed: 'ann' })
    const b = await pushImage(reg, 'ann/src', { arch: 'arm64', seed: 'ann' })
    const multi = await pushIndex(reg, 'ann/src', 'multi', [
      { ...a.descriptor, annotations: { 'org.example.kept': 'yes' } },
      { ...b.descriptor, artifactType: 'application/vnd.example.thing' } as typeof b.descriptor
    ])
    const c = await pushAttestationWrapped(reg, 'ann/src', { arch: 'ppc64le', seed: 'ann' })
    const annotations = [
      'org.opencontainers.image.description=merged',
      'index:org.opencontainers.image.title=app',
      'manifest-descriptor:org.opencontainers.image.vendor=acme',
      'manifest:org.opencontainers.image.licenses=MIT'
    ].join('\n')
    const r = await mergeWith({
      tags: `${reg.host}/ann/out:1`,
      sources: `${reg.host}/ann/src@${multi.digest}\n${reg.host}/ann/src@${c.indexDigest}`,
      annotations
    })
    const idx = await served('ann/out', '1')
    expect(idx.digest).toBe(r.index.digest)
    expect(idx.annotations).toEqual({
      'org.opencontainers.image.description': 'merged',
      'org.opencontainers.image.title': 'app'
    })
    expect(idx.manifests[0].annotations).toEqual({
      'org.example.kept': 'yes',
      'org.opencontainers.image.vendor': 'acme'
    })
    expect(idx.manifests[1].artifactType).toBe('application/vnd.example.thing')
    expect(idx.manifests[1].annotations).toEqual({ 'org.opencontainers.image.vendor': 'acme' })
    // Attestation descriptors are left as BuildKit wrote them.
    expect(idx.manifests[3].annotations).toEqual({
      'vnd.docker.reference.digest': c.imageDigest,
      'vnd.docker.reference.type': 'attestation-manifest'
    })
    expect(idx.manifests.map((m) => m.mediaType)).toEqual([
      MT.ociManifest,
      MT.ociManifest,
      MT.ociManifest,
      MT.ociManifest
    ])
  })
})

describe('copy-referrers', () => {
  /** Pushes an artifact whose subject is `digest`, as an OCI 1.1 client does against a registry without the referrers API. */
  async function attach(
    repo: string,
    digest: string,
    size: number,
    kind: string
  ): Promise<{ digest: string; artifactType: string }> {
    const cfg = await pushBlob(reg, repo, '{}')
    const payload = await pushBlob(reg, repo, JSON.stringify({ kind, subject: digest }))
    const artifactType = `application/vnd.example.${kind}`
    const body = JSON.stringify({
      schemaVersion: 2,
      mediaType: MT.ociManifest,
      artifactType,
      config: {
        mediaType: 'application/vnd.oci.empty.v1+json',
        digest: cfg.digest,
        size: cfg.size
      },
      layers: [
        { mediaType: 'application/octet-stream', digest: payload.digest, size: payload.size }
      ],
      subject: { mediaType: MT.ociManifest, digest, size }
    })
    const d = await pushManifest(reg, repo, sha256(body), body, MT.ociManifest)
    const tag = digest.replace(':', '-')
    const existing = await getManifest(reg, repo, tag)
    const manifests = existing
      ? (JSON.parse(existing.body) as { manifests: unknown[] }).manifests
      : []
    manifests.push({
      mediaType: MT.ociManifest,
      digest: d,
      size: Buffer.byteLength(body),
      artifactType
    })
    await pushIndex(reg, repo, tag, manifests as never)
    return { digest: d, artifactType }
  }

  it('copies referrers (fallback tag kept current) and cosign tags, also when the index is already current', async () => {
    const img = await pushImage(reg, 'ref/src', { arch: 'amd64', seed: 'ref' })
    const sig = await attach('ref/src', img.digest, img.size, 'signature')
    const cosign = await pushImage(reg, 'ref/src', {
      arch: 'amd64',
      seed: 'cosign-sig',
      tag: `${img.digest.replace(':', '-')}.sig`
    })
    const inputs = {
      tags: `${reg.host}/ref/dst:1`,
      sources: `${reg.host}/ref/src@${img.digest}`,
      'copy-referrers': 'true'
    }
    const r = await mergeWith(inputs)
    expect(r.log.join('\n')).toMatch(/1 referrer\(s\) and 1 cosign tag\(s\) of sha256:/)
    expect((await getManifest(reg, 'ref/dst', sig.digest))?.digest).toBe(sig.digest)
    expect((await getManifest(reg, 'ref/dst', `${img.digest.replace(':', '-')}.sig`))?.digest).toBe(
      cosign.digest
    )
    const fallback = JSON.parse(
      (await getManifest(reg, 'ref/dst', img.digest.replace(':', '-')))!.body
    ) as { manifests: Entry[] }
    expect(fallback.manifests.map((m) => [m.digest, m.artifactType])).toEqual([
      [sig.digest, sig.artifactType]
    ])

    // Signed after the merge: a rerun with the same index copies the new referrer too.
    const sbomRef = await attach('ref/src', img.digest, img.size, 'sbom')
    const again = await mergeWith(inputs)
    expect(again.tags[0].outcome).toBe('unchanged')
    const after = JSON.parse(
      (await getManifest(reg, 'ref/dst', img.digest.replace(':', '-')))!.body
    ) as { manifests: Entry[] }
    expect(after.manifests.map((m) => m.digest)).toEqual([sig.digest, sbomRef.digest])
  })
})
