// preserve-digest: one source index promoted byte for byte to another registry (Distribution 2.8),
// with its children and, with copy-referrers, what is signed on its digest.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { createHash, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runAction } from '../helpers/action.js'
import { mergeWith } from '../helpers/merge.js'
import {
  blobExists,
  getBlob,
  getManifest,
  listTags,
  MT,
  pushAttestationWrapped,
  pushBlob,
  pushImage,
  pushManifest,
  sha256,
  type Descriptor,
  type PushedImage
} from '../helpers/oci.js'
import { pushBundleReferrer, SIGSTORE_BUNDLE } from '../helpers/profiles/fixtures.js'
import { profileCredentials, withProfileClient } from '../helpers/profiles/client.js'
import { startProfiles, type Profiles } from '../helpers/profiles/index.js'
import { snapshotStorage, startRegistry, type TestRegistry } from '../helpers/registry.js'
import { skopeoCopyAll } from '../helpers/tools.js'
import { parseInputs } from '../../src/inputs.js'
import { silentLogger } from '../../src/logger.js'
import { createClient } from '../../src/runner.js'
import { merge } from '../../src/merge.js'
import { StaticCredentials } from '../../src/registry/credentials.js'

/** a holds the staging images, b is where they are promoted to. */
let a: TestRegistry
let b: TestRegistry

beforeAll(async () => {
  ;[a, b] = await Promise.all([startRegistry(), startRegistry()])
})
afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()])
})

interface Source {
  digest: string
  body: string
  /** Every manifest the index reaches (nested indexes, images, attestations). */
  manifests: string[]
  /** Every blob those manifests reference. */
  blobs: string[]
  amd: string
  arm: string
  ref: string
}

/** A descriptor with its keys in an order no tool that builds indexes writes. */
function oddDescriptor(d: Descriptor): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  if (d.annotations) out.annotations = d.annotations
  if (d.platform) out.platform = d.platform
  return { ...out, size: d.size, digest: d.digest, mediaType: d.mediaType }
}

/** An index as no serialiser writes it: indented by 4, `manifests` first, a trailing newline. */
function oddIndex(manifests: Descriptor[], mediaType: string = MT.ociIndex): string {
  const doc: Record<string, unknown> = { manifests: manifests.map(oddDescriptor) }
  doc.schemaVersion = 2
  if (mediaType === MT.ociIndex)
    doc.annotations = { 'org.opencontainers.image.created': '2024-01-01T00:00:00Z' }
  doc.mediaType = mediaType
  return JSON.stringify(doc, null, 4) + '\n'
}

/**
 * Pushes an attested amd64 image (image + attestation manifest) and a plain arm64/v8 image into
 * `repo` on a, and a non-canonical index of the three under `tag`. With `nested`, the amd64
 * entries are the attestation-wrapped index itself, nested in the top one.
 */
async function stage(repo: string, tag: string, seed: string, nested = false): Promise<Source> {
  const amd = await pushAttestationWrapped(a, repo, { arch: 'amd64', seed })
  const arm = await pushImage(a, repo, { arch: 'arm64', variant: 'v8', seed, layers: 2 })
  const attestation = JSON.parse(amd.attestationBody) as {
    config: Descriptor
    layers: Descriptor[]
  }
  const amdEntries: Descriptor[] = nested
    ? [{ mediaType: MT.ociIndex, digest: amd.indexDigest, size: amd.indexSize }]
    : [
        { ...amd.image.descriptor },
        {
          mediaType: MT.ociManifest,
          digest: amd.attestationDigest,
          size: amd.attestationSize,
          platform: { architecture: 'unknown', os: 'unknown' },
          annotations: {
            'vnd.docker.reference.digest': amd.imageDigest,
            'vnd.docker.reference.type': 'attestation-manifest'
          }
        }
      ]
  const body = oddIndex([...amdEntries, arm.descriptor])
  const digest = await pushManifest(a, repo, tag, body, MT.ociIndex)
  return {
    digest,
    body,
    manifests: [
      ...(nested ? [amd.indexDigest] : []),
      amd.imageDigest,
      amd.attestationDigest,
      arm.digest
    ],
    blobs: [
      amd.image.configDigest,
      ...amd.image.layerDigests,
      attestation.config.digest,
      ...attestation.layers.map((l) => l.digest),
      arm.configDigest,
      ...arm.layerDigests
    ],
    amd: amd.imageDigest,
    arm: arm.digest,
    ref: `${a.host}/${repo}:${tag}`
  }
}

const fallbackTag = (digest: string): string => digest.replace(':', '-')

/** Every manifest and blob of `src` is in `repo` on b. */
async function expectChildrenIn(repo: string, src: Source): Promise<void> {
  for (const d of src.manifests) expect((await getManifest(b, repo, d))?.digest).toBe(d)
  for (const d of src.blobs) expect(await blobExists(b, repo, d)).toBe(true)
}

describe('preserve-digest', () => {
  let src: Source

  beforeAll(async () => {
    src = await stage('pd/app', 'staging', 'pd')
  })

  it('promotes a non-canonical index to another registry byte for byte, with every child', async () => {
    const r = await mergeWith({
      sources: src.ref,
      tags: `${b.host}/pd/app:1.0.0\n${b.host}/pd/app:latest\n${b.host}/pd/mirror:1.0.0`,
      'preserve-digest': 'true',
      'require-platforms': 'linux/amd64,linux/arm64'
    })
    expect(r.index.digest).toBe(src.digest)
    expect(r.index.json).toBe(src.body)
    expect(r.index.mediaType).toBe(MT.ociIndex)
    for (const [repo, tag] of [
      ['pd/app', '1.0.0'],
      ['pd/app', 'latest'],
      ['pd/mirror', '1.0.0']
    ]) {
      const served = await getManifest(b, repo, tag)
      expect(served?.body).toBe(src.body)
      expect(served?.digest).toBe(src.digest)
    }
    await expectChildrenIn('pd/app', src)
    await expectChildrenIn('pd/mirror', src)
    expect(r.tags.map((t) => t.outcome)).toEqual(['pushed', 'pushed', 'pushed'])
    expect(r.platforms).toEqual(['linux/amd64', 'linux/arm64/v8'])
    expect(r.platformDigests).toEqual({ 'linux/amd64': src.amd, 'linux/arm64/v8': src.arm })
    expect(r.attestations).toEqual({ [src.amd]: 'kept (1)', [src.arm]: 'none' })
    expect(r.images).toEqual([
      `${b.host}/pd/app@${src.digest}`,
      `${b.host}/pd/mirror@${src.digest}`
    ])
    const log = r.log.join('\n')
    expect(log).toContain(
      `index ${src.digest} (${MT.ociIndex}, 3 entries) promoted unchanged (preserve-digest)`
    )
    expect(r.log.filter((l) => l.startsWith('group: '))).toEqual([
      'group: Resolve sources',
      'group: Copy children into target repositories',
      'group: Push tags'
    ])

    // skopeo copies it as it is: the layout's index names the same digest, with the same bytes.
    const dir = await mkdtemp(join(tmpdir(), 'pd-skopeo-'))
    try {
      await skopeoCopyAll(`${b.host}/pd/app:1.0.0`, dir, { preserveDigests: true })
      const layout = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as {
        manifests: Descriptor[]
      }
      expect(layout.manifests.map((m) => m.digest)).toEqual([src.digest])
      const stored = await readFile(join(dir, 'blobs', 'sha256', src.digest.slice(7)), 'utf8')
      expect(stored).toBe(src.body)
      for (const d of [src.amd, src.arm])
        expect(sha256(await readFile(join(dir, 'blobs', 'sha256', d.slice(7))))).toBe(d)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('a rerun pushes no tag and copies nothing', async () => {
    const before = await snapshotStorage(b.storageDir)
    const r = await mergeWith({
      sources: src.ref,
      tags: `${b.host}/pd/app:1.0.0\n${b.host}/pd/app:latest`,
      'preserve-digest': 'true'
    })
    expect(r.tags.map((t) => t.outcome)).toEqual(['unchanged', 'unchanged'])
    expect(r.index.digest).toBe(src.digest)
    expect(r.log).toContain('every tag is already current: nothing to copy')
    expect(r.log.filter((l) => l.startsWith('pushed '))).toEqual([])
    expect(await snapshotStorage(b.storageDir)).toEqual(before)
  })

  it('a dry run pushes nothing and gives the same result', async () => {
    const before = await snapshotStorage(b.storageDir)
    const r = await mergeWith({
      sources: src.ref,
      tags: `${b.host}/pd/dry:1`,
      'preserve-digest': 'true',
      'dry-run': 'true'
    })
    expect(r.index.digest).toBe(src.digest)
    expect(r.index.json).toBe(src.body)
    expect(r.tags).toEqual([{ ref: `${b.host}/pd/dry:1`, outcome: 'dry-run' }])
    expect(r.log).toContain(`dry-run: would push ${b.host}/pd/dry:1 (now absent)`)
    expect(await snapshotStorage(b.storageDir)).toEqual(before)
  })

  it('within one registry: the children are mounted, the tag gets the same bytes', async () => {
    const r = await mergeWith({
      sources: `${a.host}/pd/app@${src.digest}`,
      tags: `${a.host}/pd/release:1`,
      'preserve-digest': 'true'
    })
    expect((await getManifest(a, 'pd/release', '1'))?.body).toBe(src.body)
    expect(r.log.join('\n')).toMatch(
      /pd\/release: 4 manifest\(s\) pushed, \d+ blob\(s\) mounted, 0 streamed/
    )
  })

  it('an index nested in it is copied after its own children, by digest', async () => {
    const nested = await stage('pd/nested', 'staging', 'nested', true)
    const r = await mergeWith({
      sources: nested.ref,
      tags: `${b.host}/pd/nested:1`,
      'preserve-digest': 'true'
    })
    expect((await getManifest(b, 'pd/nested', '1'))?.body).toBe(nested.body)
    await expectChildrenIn('pd/nested', nested)
    expect(r.platformDigests).toEqual({ 'linux/amd64': nested.amd, 'linux/arm64/v8': nested.arm })
    expect(r.log.join('\n')).toContain('3 entries in 2 indexes) promoted unchanged')
  })

  it('a Docker manifest list keeps its type; format must be its own', async () => {
    const repo = 'pd/docker'
    const imgs = await Promise.all(
      ['amd64', 'arm64'].map((arch) => pushImage(a, repo, { arch, seed: 'dl', format: 'docker' }))
    )
    const body = oddIndex(
      imgs.map((i) => i.descriptor),
      MT.dockerList
    )
    const digest = await pushManifest(a, repo, 'staging', body, MT.dockerList)
    const sources = `${a.host}/${repo}:staging`
    const r = await mergeWith({
      sources,
      tags: `${b.host}/${repo}:1`,
      format: 'docker',
      'preserve-digest': 'true'
    })
    expect(r.index.digest).toBe(digest)
    const served = await getManifest(b, repo, '1')
    expect(served?.body).toBe(body)
    expect(served?.mediaType).toBe(MT.dockerList)

    const before = await snapshotStorage(b.storageDir)
    await expect(
      mergeWith({
        sources,
        tags: `${b.host}/${repo}:2`,
        format: 'oci',
        'preserve-digest': 'true'
      })
    ).rejects.toThrow(
      /^input preserve-digest: .* is application\/vnd\.docker\.distribution\.manifest\.list\.v2\+json, but input format: oci /
    )
    expect(await snapshotStorage(b.storageDir)).toEqual(before)
  })
})

describe('preserve-digest, with copy-referrers', () => {
  /** A cosign (before v3) key-pair signature of `digest` under `sha256-<hex>.sig`, really signed. */
  async function cosignSign(
    repo: string,
    digest: string,
    key: KeyObject
  ): Promise<{ digest: string }> {
    const payload = JSON.stringify({
      critical: {
        identity: { 'docker-reference': `${a.host}/${repo}` },
        image: { 'docker-manifest-digest': digest },
        type: 'cosign container image signature'
      },
      optional: null
    })
    const layer = await pushBlob(a, repo, payload)
    const config = await pushBlob(
      a,
      repo,
      JSON.stringify({
        architecture: '',
        os: '',
        config: {},
        rootfs: { type: 'layers', diff_ids: [layer.digest] }
      })
    )
    const signature = sign('sha256', Buffer.from(payload), key).toString('base64')
    const body = JSON.stringify({
      schemaVersion: 2,
      mediaType: MT.ociManifest,
      config: { mediaType: MT.ociConfig, digest: config.digest, size: config.size },
      layers: [
        {
          mediaType: 'application/vnd.dev.cosign.simplesigning.v1+json',
          digest: layer.digest,
          size: layer.size,
          annotations: { 'dev.cosignproject.cosign/signature': signature }
        }
      ]
    })
    return {
      digest: await pushManifest(a, repo, `${fallbackTag(digest)}.sig`, body, MT.ociManifest)
    }
  }

  /**
   * What `cosign verify --key` checks, against b: the signature tag of the digest `tag` holds
   * there, a payload that names that digest, and a signature of the payload by the key.
   */
  async function cosignVerify(repo: string, tag: string, key: KeyObject): Promise<boolean> {
    const digest = (await getManifest(b, repo, tag))?.digest
    if (!digest) return false
    const sig = await getManifest(b, repo, `${fallbackTag(digest)}.sig`)
    if (!sig) return false
    const [layer] = (JSON.parse(sig.body) as { layers: Descriptor[] }).layers
    const payload = await getBlob(b, repo, layer.digest)
    const claims = JSON.parse(payload.toString('utf8')) as {
      critical: { image: { 'docker-manifest-digest': string } }
    }
    const signature = Buffer.from(
      layer.annotations?.['dev.cosignproject.cosign/signature'] ?? '',
      'base64'
    )
    return (
      claims.critical.image['docker-manifest-digest'] === digest &&
      verify('sha256', payload, key, signature)
    )
  }

  it('signatures made on the index digest (a cosign .sig tag, an OCI referrer) still verify after promotion', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    const src = await stage('pd/signed', 'staging', 'signed')
    const signed = await cosignSign('pd/signed', src.digest, privateKey)
    const armSigned = await cosignSign('pd/signed', src.arm, privateKey)
    const asSubject = {
      digest: src.digest,
      mediaType: MT.ociIndex,
      size: Buffer.byteLength(src.body)
    } as PushedImage
    const bundle = await pushBundleReferrer(a, 'pd/signed', asSubject, true)

    const r = await mergeWith({
      sources: src.ref,
      tags: `${b.host}/pd/signed:1.0.0`,
      'preserve-digest': 'true',
      'copy-referrers': 'true'
    })
    expect(r.index.digest).toBe(src.digest)
    expect(await cosignVerify('pd/signed', '1.0.0', publicKey)).toBe(true)
    expect((await getManifest(b, 'pd/signed', `${fallbackTag(src.digest)}.sig`))?.digest).toBe(
      signed.digest
    )
    // The children's own signatures follow too.
    expect((await getManifest(b, 'pd/signed', `${fallbackTag(src.arm)}.sig`))?.digest).toBe(
      armSigned.digest
    )
    // The referrer, and the fallback tag that lists it where the registry has no referrers API.
    expect((await getManifest(b, 'pd/signed', bundle.digest))?.body).toBe(bundle.body)
    const listed = JSON.parse(
      (await getManifest(b, 'pd/signed', fallbackTag(src.digest)))?.body ?? '{}'
    ) as { manifests?: Array<Descriptor & { artifactType?: string }> }
    expect(listed.manifests).toEqual([
      expect.objectContaining({ digest: bundle.digest, artifactType: SIGSTORE_BUNDLE })
    ])
    expect(r.log.join('\n')).toContain(
      `pd/signed: 1 referrer(s) and 1 cosign tag(s) of ${src.digest} copied`
    )

    // A key that did not sign does not verify: the check above is a real one.
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey
    expect(await cosignVerify('pd/signed', '1.0.0', other)).toBe(false)

    // Without preserve-digest the index is made anew: its digest, and so the signature, differ.
    const merged = await mergeWith({ sources: src.ref, tags: `${b.host}/pd/signed:merged` })
    expect(merged.index.digest).not.toBe(src.digest)
    expect(await cosignVerify('pd/signed', 'merged', publicKey)).toBe(false)
  })

  it('a signature made after the promotion follows on a rerun, which pushes no tag', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    const src = await stage('pd/later', 'staging', 'later')
    const inputs = {
      sources: src.ref,
      tags: `${b.host}/pd/later:1`,
      'preserve-digest': 'true',
      'copy-referrers': 'true'
    }
    await mergeWith(inputs)
    expect(await cosignVerify('pd/later', '1', publicKey)).toBe(false)
    await cosignSign('pd/later', src.digest, privateKey)
    const again = await mergeWith(inputs)
    expect(again.tags.map((t) => t.outcome)).toEqual(['unchanged'])
    expect(await cosignVerify('pd/later', '1', publicKey)).toBe(true)
  })

  describe('where the registry has the referrers API (Harbor profile)', () => {
    let profiles: Profiles

    beforeAll(async () => {
      profiles = await startProfiles(a, ['harbor'])
    })
    afterAll(async () => {
      await profiles?.stop()
    })

    it('the referrer of the index is found and listed through the API', async () => {
      const p = profiles.byName.harbor
      const src = await stage('pd/harbor', 'staging', 'harbor')
      const asSubject = {
        digest: src.digest,
        mediaType: MT.ociIndex,
        size: Buffer.byteLength(src.body)
      } as PushedImage
      // cosign v3 against a registry with the API writes no fallback tag.
      const bundle = await pushBundleReferrer(a, 'pd/harbor', asSubject, false)
      const r = await mergeWith(
        {
          sources: `${p.host}/pd/harbor:staging`,
          tags: `${p.host}/pd/harbor-rel:1`,
          'preserve-digest': 'true',
          'copy-referrers': 'true'
        },
        profileCredentials(p)
      )
      expect(r.index.digest).toBe(src.digest)
      const listed = await withProfileClient(p, (client) =>
        client.listReferrers({ registry: p.host, repository: 'pd/harbor-rel' }, src.digest)
      )
      expect(listed.via).toBe('api')
      expect(listed.descriptors.map((d) => d.digest)).toEqual([bundle.digest])
      expect((await getManifest(a, 'pd/harbor-rel', '1'))?.body).toBe(src.body)
      expect(await getManifest(a, 'pd/harbor-rel', fallbackTag(src.digest))).toBeUndefined()
    })
  })
})

describe('preserve-digest where the registry refuses the index as it is (Gitea profile)', () => {
  let profiles: Profiles

  beforeAll(async () => {
    profiles = await startProfiles(a, ['gitea'])
  })
  afterAll(async () => {
    await profiles?.stop()
  })

  it('says the index cannot change, and that promoting without preserve-digest can', async () => {
    const p = profiles.byName.gitea
    // Some OCI index PUTs answer 404 on Gitea (go-gitea/gitea#31861).
    p.configure('pd/gitea-rel', { refuseOciIndex: true })
    await stage('pd/gitea', 'staging', 'gitea')
    await expect(
      mergeWith(
        {
          sources: `${p.host}/pd/gitea:staging`,
          tags: `${p.host}/pd/gitea-rel:1`,
          'preserve-digest': 'true'
        },
        profileCredentials(p)
      )
    ).rejects.toThrow(
      /refused the index sha256:[0-9a-f]{64} \(application\/vnd\.oci\.image\.index\.v1\+json\) as it is: .*404.*promote without preserve-digest/
    )
    expect(await getManifest(a, 'pd/gitea-rel', '1')).toBeUndefined()
  })
})

describe('preserve-digest refuses what would change the index, before any write', () => {
  let src: Source

  beforeAll(async () => {
    src = await stage('pd/refused', 'staging', 'refused')
  })

  const cases: Array<[string, Record<string, string>, RegExp]> = [
    [
      'platforms',
      { platforms: 'linux/amd64' },
      /input platforms \(linux\/amd64\) would leave entries out/
    ],
    ['attestations: strip', { attestations: 'strip' }, /input attestations: strip would take out/],
    [
      'attestations: referrers',
      { attestations: 'referrers' },
      /input attestations: referrers would/
    ],
    [
      'index annotations',
      { annotations: 'org.example.release=1' },
      /input annotations .* would set the index annotation\(s\) org\.example\.release/
    ],
    [
      'descriptor annotations',
      {
        annotations:
          'manifest-descriptor:org.example.a=1\nmanifest-descriptor[linux/arm64]:org.example.b=2'
      },
      /input annotations would set the descriptor annotation\(s\) manifest-descriptor:org\.example\.a, manifest-descriptor\[linux\/arm64\]:org\.example\.b/
    ],
    ['append', { append: 'true' }, /input append would merge it with what/],
    [
      'format: docker (the index is OCI)',
      { format: 'docker' },
      /input format: docker asks for application\/vnd\.docker\.distribution\.manifest\.list\.v2\+json/
    ],
    [
      'two sources',
      { sources: 'TWO' },
      /the sources must be exactly one index to promote, but 2 are given/
    ],
    ['an image source', { sources: 'IMAGE' }, /is an image manifest .*, not an index/],
    [
      'require-platforms not met',
      { 'require-platforms': 'linux/amd64,linux/s390x' },
      /input require-platforms: missing linux\/s390x/
    ]
  ]
  it.each(cases)(
    '%s: fails naming preserve-digest and the input, and pushes nothing',
    async (_, extra, message) => {
      const sources =
        extra.sources === 'TWO'
          ? `${src.ref}\n${a.host}/pd/refused@${src.arm}`
          : extra.sources === 'IMAGE'
            ? `${a.host}/pd/refused@${src.arm}`
            : src.ref
      const before = await snapshotStorage(b.storageDir)
      const error = await mergeWith({
        tags: `${b.host}/pd/refused:1`,
        'preserve-digest': 'true',
        ...extra,
        sources
      }).then(
        () => undefined,
        (e: unknown) => e as Error
      )
      expect(error?.message).toMatch(message)
      if (!('require-platforms' in extra))
        expect(error?.message).toMatch(/^input preserve-digest: /)
      expect(await snapshotStorage(b.storageDir)).toEqual(before)
      expect(await listTags(b, 'pd/refused')).toEqual([])
    }
  )

  it('github-annotations: fails naming preserve-digest and the input, and pushes nothing', async () => {
    const before = await snapshotStorage(b.storageDir)
    const values: Record<string, string> = {
      sources: src.ref,
      tags: `${b.host}/pd/refused:1`,
      'preserve-digest': 'true',
      'github-annotations': 'true'
    }
    const inputs = parseInputs(
      (n) => values[n] ?? '',
      undefined,
      {},
      {
        serverUrl: 'https://github.com',
        repository: 'acme/app',
        sha: '0123456789abcdef0123456789abcdef01234567'
      }
    )
    const client = createClient(inputs, { credentials: new StaticCredentials({}) })
    try {
      await expect(merge(client, inputs, silentLogger)).rejects.toThrow(
        /^input preserve-digest: .*github-annotations.* would set the index annotation\(s\) org\.opencontainers\.image\.source, org\.opencontainers\.image\.revision/
      )
      expect(client.stats.requests).toBe(0)
    } finally {
      await client.close()
    }
    expect(await snapshotStorage(b.storageDir)).toEqual(before)
  })

  it('the source repository, too, is left as it was', async () => {
    const before = await snapshotStorage(a.storageDir)
    await expect(
      mergeWith({
        sources: src.ref,
        tags: `${a.host}/pd/refused:release`,
        'preserve-digest': 'true',
        platforms: 'linux/arm64'
      })
    ).rejects.toThrow(/preserve-digest/)
    expect(await snapshotStorage(a.storageDir)).toEqual(before)
  })
})

describe('node dist/index.js with preserve-digest', () => {
  it('sets the digest output to the source index digest, and exits 1 on a platforms filter', async () => {
    const src = await stage('pd/e2e', 'staging', 'e2e')
    const run = await runAction({
      sources: src.ref,
      tags: `${b.host}/pd/e2e:1.0.0`,
      'preserve-digest': 'true',
      'copy-referrers': 'true'
    })
    expect(run.stdout).not.toMatch(/::error::/)
    expect(run.code).toBe(0)
    expect(run.outputs.digest).toBe(src.digest)
    expect(createHash('sha256').update(run.outputs.manifest).digest('hex')).toBe(
      src.digest.slice(7)
    )
    expect(run.outputs['media-type']).toBe(MT.ociIndex)
    expect(run.outputs.platforms).toBe('linux/amd64,linux/arm64/v8')
    expect(run.outputs.images).toBe(`${b.host}/pd/e2e@${src.digest}`)
    expect(run.outputs.tags).toBe(`${b.host}/pd/e2e:1.0.0`)
    expect(run.stdout).toContain(
      `index ${src.digest} (${MT.ociIndex}, 3 entries) promoted unchanged`
    )
    expect((await getManifest(b, 'pd/e2e', '1.0.0'))?.body).toBe(src.body)

    const refused = await runAction({
      sources: src.ref,
      tags: `${b.host}/pd/e2e:2.0.0`,
      'preserve-digest': 'true',
      platforms: 'linux/amd64'
    })
    expect(refused.code).toBe(1)
    expect(refused.stdout).toMatch(/::error::input preserve-digest: .*input platforms/)
    expect(await getManifest(b, 'pd/e2e', '2.0.0')).toBeUndefined()
  })
})
