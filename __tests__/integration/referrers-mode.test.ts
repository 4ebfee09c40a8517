// attestations: referrers, and per-platform descriptor annotations, against the real registry
// (Distribution 2.8: the tag-schema fallback) and a profile with the referrers API (Harbor).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { mergeWith } from '../helpers/merge.js'
import {
  getManifest,
  MT,
  pushAttestationWrapped,
  pushBlob,
  pushIndex,
  pushManifest,
  request,
  sha256,
  type Descriptor,
  type PushedAttestationWrapped
} from '../helpers/oci.js'
import { profileCredentials, withProfileClient } from '../helpers/profiles/client.js'
import { startProfiles, type Profiles } from '../helpers/profiles/index.js'
import { snapshotStorage, startRegistry, type TestRegistry } from '../helpers/registry.js'
import { buildahPullArch, skopeoInspectRaw } from '../helpers/tools.js'
import { parseInputs } from '../../src/inputs.js'

const ATTESTATION_TYPE = 'application/vnd.docker.attestation.manifest.v1+json'
const EMPTY = 'application/vnd.oci.empty.v1+json'
const PROV = 'https://slsa.dev/provenance/v0.2'
const SPDX = 'https://spdx.dev/Document'

interface Entry extends Descriptor {
  artifactType?: string
}
interface Manifest {
  artifactType?: string
  config: Entry
  layers: Entry[]
  subject?: Entry
  manifests?: Entry[]
}

let reg: TestRegistry
let amd: PushedAttestationWrapped
let arm: PushedAttestationWrapped
let sources: string

async function json(repo: string, ref: string): Promise<Manifest & { digest: string }> {
  const m = await getManifest(reg, repo, ref)
  if (!m) throw new Error(`${repo}:${ref} is missing`)
  return { digest: m.digest, ...(JSON.parse(m.body) as Manifest) }
}

const fallbackTag = (digest: string): string => `sha256-${digest.slice('sha256:'.length)}`

/** The referrers the fallback tag of `subject` lists in `repo`, with their manifests. */
async function referrersOf(
  repo: string,
  subject: string
): Promise<Array<{ descriptor: Entry; manifest: Manifest }>> {
  const index = await json(repo, fallbackTag(subject))
  return Promise.all(
    (index.manifests ?? []).map(async (d) => ({
      descriptor: d,
      manifest: await json(repo, d.digest)
    }))
  )
}

beforeAll(async () => {
  reg = await startRegistry()
  amd = await pushAttestationWrapped(reg, 'ref/src', {
    arch: 'amd64',
    predicates: [PROV, SPDX],
    seed: 'r'
  })
  arm = await pushAttestationWrapped(reg, 'ref/src', {
    arch: 'arm64',
    predicates: [PROV],
    seed: 'r'
  })
  sources = `${reg.host}/ref/src@${amd.indexDigest}\n${reg.host}/ref/src@${arm.indexDigest}`
})

afterAll(async () => {
  await reg?.stop()
})

describe('attestations: referrers, where the registry has no referrers API', () => {
  let run: Awaited<ReturnType<typeof mergeWith>>

  beforeAll(async () => {
    run = await mergeWith({ tags: `${reg.host}/ref/rel:1`, sources, attestations: 'referrers' })
  })

  it('leaves the attestations out of the index', async () => {
    const index = await json('ref/rel', '1')
    expect(index.manifests?.map((m) => m.digest)).toEqual([amd.imageDigest, arm.imageDigest])
    expect(run.attestations).toEqual({
      [amd.imageDigest]: 'attached as referrers (1)',
      [arm.imageDigest]: 'attached as referrers (1)'
    })
  })

  it.each([
    ['amd64', () => amd],
    ['arm64', () => arm]
  ])(
    'lists, under the fallback tag of the %s image, an attestation with that subject and the original layers',
    async (_, source) => {
      const src = source()
      const original = JSON.parse(src.attestationBody) as Manifest
      const [r, ...more] = await referrersOf('ref/rel', src.imageDigest)
      expect(more).toEqual([])
      expect(r.descriptor).toEqual({
        mediaType: MT.ociManifest,
        digest: expect.stringMatching(/^sha256:/),
        size: expect.any(Number),
        artifactType: ATTESTATION_TYPE
      })
      expect(r.manifest.artifactType).toBe(ATTESTATION_TYPE)
      expect(r.manifest.subject).toEqual({
        mediaType: MT.ociManifest,
        digest: src.imageDigest,
        size: src.image.size
      })
      expect(r.manifest.config).toEqual({
        mediaType: EMPTY,
        digest: 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a',
        size: 2,
        data: 'e30='
      })
      expect(r.manifest.layers).toEqual(original.layers)
      // Every blob it names is in the target repository.
      for (const b of [r.manifest.config, ...r.manifest.layers]) {
        const head = await request(reg, 'HEAD', `/v2/ref/rel/blobs/${b.digest}`)
        expect(head.status).toBe(200)
      }
    }
  )

  it('is still read by skopeo and buildah', async () => {
    const raw = JSON.parse(await skopeoInspectRaw(`${reg.host}/ref/rel:1`)) as Manifest
    expect(raw.manifests).toHaveLength(2)
    const pulled = await buildahPullArch(`${reg.host}/ref/rel:1`, 'arm64')
    expect(pulled.digest).toBe(arm.imageDigest)
  })

  it('the referrers follow a later promotion with copy-referrers', async () => {
    await mergeWith({
      tags: `${reg.host}/ref/prod:1`,
      sources: `${reg.host}/ref/rel:1`,
      'copy-referrers': 'true'
    })
    const before = await referrersOf('ref/rel', amd.imageDigest)
    const after = await referrersOf('ref/prod', amd.imageDigest)
    expect(after.map((r) => r.descriptor.digest)).toEqual(before.map((r) => r.descriptor.digest))
    expect(after[0].manifest.subject?.digest).toBe(amd.imageDigest)
  })

  it('a rerun pushes nothing and adds nothing to the fallback tag', async () => {
    const before = await snapshotStorage(reg.storageDir)
    const again = await mergeWith({
      tags: `${reg.host}/ref/rel:1`,
      sources,
      attestations: 'referrers'
    })
    expect(again.tags.map((t) => t.outcome)).toEqual(['unchanged'])
    expect(await snapshotStorage(reg.storageDir)).toEqual(before)
    expect(await referrersOf('ref/rel', amd.imageDigest)).toHaveLength(1)
  })

  it('attaches them where the tag is current but was made with strip (the same index)', async () => {
    await mergeWith({ tags: `${reg.host}/ref/was-strip:1`, sources, attestations: 'strip' })
    expect(await getManifest(reg, 'ref/was-strip', fallbackTag(amd.imageDigest))).toBeUndefined()
    const r = await mergeWith({
      tags: `${reg.host}/ref/was-strip:1`,
      sources,
      attestations: 'referrers'
    })
    expect(r.tags.map((t) => t.outcome)).toEqual(['unchanged'])
    for (const src of [amd, arm]) {
      const listed = await referrersOf('ref/was-strip', src.imageDigest)
      expect(listed.map((l) => l.manifest.subject?.digest)).toEqual([src.imageDigest])
    }
  })

  it('adds to a fallback tag that already lists others, keeping them and its other fields', async () => {
    // A cosign v3 bundle already attached to the amd64 image in the target repository.
    await mergeWith({
      tags: `${reg.host}/ref/signed:base`,
      sources: `${reg.host}/ref/src@${amd.imageDigest}`
    })
    const cfg = await pushBlob(reg, 'ref/signed', '{}')
    const bundle = await pushBlob(
      reg,
      'ref/signed',
      '{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}'
    )
    const sig = JSON.stringify({
      schemaVersion: 2,
      mediaType: MT.ociManifest,
      artifactType: 'application/vnd.dev.sigstore.bundle.v0.3+json',
      config: { mediaType: EMPTY, digest: cfg.digest, size: cfg.size },
      layers: [{ mediaType: 'application/vnd.dev.sigstore.bundle.v0.3+json', ...bundle }],
      subject: { mediaType: MT.ociManifest, digest: amd.imageDigest, size: amd.image.size }
    })
    const sigDigest = await pushManifest(reg, 'ref/signed', sha256(sig), sig, MT.ociManifest)
    const listing = {
      mediaType: MT.ociManifest,
      digest: sigDigest,
      size: Buffer.byteLength(sig),
      artifactType: 'application/vnd.dev.sigstore.bundle.v0.3+json'
    }
    await pushIndex(reg, 'ref/signed', fallbackTag(amd.imageDigest), [listing], {
      annotations: { 'org.example.kept': 'yes' }
    })
    await mergeWith({ tags: `${reg.host}/ref/signed:1`, sources, attestations: 'referrers' })
    const index = await json('ref/signed', fallbackTag(amd.imageDigest))
    expect(index.manifests?.map((m) => m.artifactType)).toEqual([
      'application/vnd.dev.sigstore.bundle.v0.3+json',
      ATTESTATION_TYPE
    ])
    expect((index as { annotations?: Record<string, string> }).annotations).toEqual({
      'org.example.kept': 'yes'
    })
  })

  it('refuses to replace a fallback tag that holds something other than an index, naming it', async () => {
    await mergeWith({
      tags: `${reg.host}/ref/taken:base`,
      sources: `${reg.host}/ref/src@${arm.imageDigest}`
    })
    // Someone tagged an image sha256-<hex> in the target repository.
    await pushManifest(
      reg,
      'ref/taken',
      fallbackTag(arm.imageDigest),
      arm.image.body,
      arm.image.mediaType
    )
    await expect(
      mergeWith({ tags: `${reg.host}/ref/taken:1`, sources, attestations: 'referrers' })
    ).rejects.toThrow(
      `the tag ${fallbackTag(arm.imageDigest)} holds a manifest of type "${MT.ociManifest}", not an index of referrers`
    )
    expect((await getManifest(reg, 'ref/taken', fallbackTag(arm.imageDigest)))?.digest).toBe(
      arm.imageDigest
    )
    expect(await getManifest(reg, 'ref/taken', '1')).toBeUndefined()
  })

  it('with referrers-strip-provenance, attaches only what is not provenance', async () => {
    const r = await mergeWith({
      tags: `${reg.host}/ref/sbom:1`,
      sources,
      attestations: 'referrers-strip-provenance'
    })
    const listed = await referrersOf('ref/sbom', amd.imageDigest)
    expect(listed).toHaveLength(1)
    expect(
      listed[0].manifest.layers.map((l) => l.annotations?.['in-toto.io/predicate-type'])
    ).toEqual([SPDX])
    // arm64's attestation held only provenance: nothing is attached to it.
    expect(await getManifest(reg, 'ref/sbom', fallbackTag(arm.imageDigest))).toBeUndefined()
    expect(r.log.join('\n')).toMatch(/drop attestation .* it held only provenance/)
  })

  it('a dry run pushes nothing', async () => {
    await mergeWith({
      tags: `${reg.host}/ref/dry:1`,
      sources,
      attestations: 'referrers',
      'dry-run': 'true'
    })
    expect(await getManifest(reg, 'ref/dry', '1')).toBeUndefined()
    expect(await getManifest(reg, 'ref/dry', fallbackTag(amd.imageDigest))).toBeUndefined()
  })
})

describe('attestations: referrers, where the registry has the referrers API (Harbor profile)', () => {
  let profiles: Profiles

  beforeAll(async () => {
    profiles = await startProfiles(reg, ['harbor'])
  })
  afterAll(async () => {
    await profiles?.stop()
  })

  it('the API lists them, and no fallback tag is written', async () => {
    const p = profiles.byName.harbor
    await mergeWith(
      {
        tags: `${p.host}/ref/harbor:1`,
        sources: `${p.host}/ref/src@${amd.indexDigest}\n${p.host}/ref/src@${arm.indexDigest}`,
        attestations: 'referrers'
      },
      profileCredentials(p)
    )
    const listed = await withProfileClient(p, (client) =>
      client.listReferrers({ registry: p.host, repository: 'ref/harbor' }, amd.imageDigest)
    )
    expect(listed.via).toBe('api')
    expect(listed.descriptors).toEqual([
      expect.objectContaining({ artifactType: ATTESTATION_TYPE })
    ])
    expect(await getManifest(reg, 'ref/harbor', fallbackTag(amd.imageDigest))).toBeUndefined()
    expect((await json('ref/harbor', '1')).manifests).toHaveLength(2)
  })
})

describe('manifest-descriptor[platform] annotations', () => {
  it('land on the descriptors of that platform alone', async () => {
    await mergeWith({
      tags: `${reg.host}/ref/annotated:1`,
      sources,
      annotations: [
        'manifest-descriptor:org.opencontainers.image.title=app',
        'manifest-descriptor[linux/arm64]:org.opencontainers.image.description=the arm64 build',
        'manifest-descriptor[linux/amd64,linux/arm64]:org.example.both=yes'
      ].join('\n')
    })
    const index = await json('ref/annotated', '1')
    const byPlatform = Object.fromEntries(
      (index.manifests ?? [])
        .filter((m) => m.platform?.os === 'linux')
        .map((m) => [m.platform?.architecture, m.annotations])
    )
    expect(byPlatform.amd64).toEqual({
      'org.opencontainers.image.title': 'app',
      'org.example.both': 'yes'
    })
    expect(byPlatform.arm64).toEqual({
      'org.opencontainers.image.title': 'app',
      'org.opencontainers.image.description': 'the arm64 build',
      'org.example.both': 'yes'
    })
    // Attestation entries get none of them.
    const attestations = (index.manifests ?? []).filter((m) => m.platform?.os === 'unknown')
    expect(attestations.map((m) => Object.keys(m.annotations ?? {}).sort())).toEqual([
      ['vnd.docker.reference.digest', 'vnd.docker.reference.type'],
      ['vnd.docker.reference.digest', 'vnd.docker.reference.type']
    ])
  })

  it('an invalid platform is an error naming the input and the line', () => {
    expect(() =>
      parseInputs(
        (n) =>
          ({
            tags: 'r.io/a:1',
            sources: 'r.io/a:2',
            annotations: 'manifest-descriptor[linux/]:a=b'
          })[n] ?? ''
      )
    ).toThrow(
      /input annotations: "manifest-descriptor\[linux\/\]:a=b" names the platform "linux\/"/
    )
  })
})
