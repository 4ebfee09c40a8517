import { describe, expect, it } from '@jest/globals'
import { DuplicatePlatformError, type Child } from '../../src/core/children.js'
import { sha256 } from '../../src/core/digest.js'
import { FormatError } from '../../src/core/index-builder.js'
import { DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST } from '../../src/core/mediatypes.js'
import {
  describedAsFetched,
  MergeInputError,
  planIndex,
  planTags,
  reposToPush,
  selectEntries,
  type TagResult
} from '../../src/core/plan.js'
import { parseReference } from '../../src/core/reference.js'
import { UserError } from '../../src/errors.js'
import { att, dg, image } from '../helpers/children.js'

const digests = (cs: Child[]): string[] => cs.map((c) => c.descriptor.digest)
const base = { onDuplicate: 'error' as const, attestations: 'keep' as const }
const arm64 = { os: 'linux', architecture: 'arm64' }
const amd64 = { os: 'linux', architecture: 'amd64' }

describe('selectEntries', () => {
  it('keeps the chosen images with their attestations and says what it skipped', () => {
    const all = [image(1, 'linux/amd64'), att(11, 1), image(2, 'linux/arm64'), att(12, 2)]
    const e = selectEntries(all, { ...base, platforms: [arm64] }, ['a', 'b'])
    expect(digests(e.children)).toEqual([dg(2), dg(12)])
    expect(e.decisions).toEqual([
      `skip linux/amd64 ${dg(1)} from src1: not in platforms`,
      `drop attestation ${dg(11)}: its image ${dg(1)} is not in the index`
    ])
  })

  it('refuses a platforms filter that matches no image, listing what was found', () => {
    const all = [image(1, 'linux/amd64'), image(2, 'linux/arm/v7')]
    const run = (): unknown =>
      selectEntries(all, { ...base, platforms: [{ os: 'linux', architecture: 's390x' }] }, [])
    expect(run).toThrow(MergeInputError)
    expect(run).toThrow(
      'input platforms: linux/s390x matches none of the images found (linux/amd64, linux/arm/v7)'
    )
  })

  it('checks require-platforms against the chosen images, naming the sources', () => {
    const all = [image(1, 'linux/amd64')]
    const opts = { ...base, requirePlatforms: [amd64, arm64] }
    const run = (): unknown => selectEntries(all, opts, ['ghcr.io/a/b@x', 'y'])
    expect(run).toThrow(MergeInputError)
    expect(run).toThrow(
      /^input require-platforms: missing linux\/arm64\. .*sources: ghcr\.io\/a\/b@x, y$/
    )
    expect(() => selectEntries([...all, image(2, 'linux/arm64')], opts, ['a', 'b'])).not.toThrow()
  })

  it('refuses extra platforms unless allowed', () => {
    const all = [image(1, 'linux/amd64'), image(2, 'linux/arm64')]
    const opts = { ...base, requirePlatforms: [amd64] }
    expect(() => selectEntries(all, opts, [])).toThrow(/not listed: linux\/arm64/)
    expect(
      digests(selectEntries(all, { ...opts, allowExtraPlatforms: true }, []).children)
    ).toEqual([dg(1), dg(2)])
  })

  it('reports a duplicate platform as an error the user fixes', () => {
    const run = (): unknown =>
      selectEntries([image(1, 'linux/amd64'), image(2, 'linux/amd64')], base, [])
    expect(run).toThrow(DuplicatePlatformError)
    expect(run).toThrow(UserError)
  })
})

describe('planIndex', () => {
  it('adds manifest-descriptor[platform] annotations to the images of those platforms only', () => {
    const arm = { os: 'linux', architecture: 'arm64' }
    const attestation = att(12, 2)
    const p = planIndex([image(1, 'linux/amd64'), image(2, 'linux/arm64/v8'), attestation], {
      format: 'auto',
      descriptorAnnotations: { k: 'all' },
      platformDescriptorAnnotations: [
        { platforms: [arm], key: 'k', value: 'arm' },
        { platforms: [arm], key: 'only', value: 'arm' }
      ]
    })
    expect(p.children.map((c) => c.descriptor.annotations)).toEqual([
      { k: 'all' },
      { k: 'arm', only: 'arm' },
      attestation.descriptor.annotations
    ])
  })

  it('adds descriptor annotations to images only, and the index holds exactly its bytes', () => {
    const children = [image(1, 'linux/amd64'), att(11, 1)]
    const p = planIndex(children, {
      format: 'auto',
      annotations: { 'org.opencontainers.image.title': 't' },
      descriptorAnnotations: { 'org.opencontainers.image.description': 'd' }
    })
    expect(p.children[0].descriptor.annotations).toEqual({
      'org.opencontainers.image.description': 'd'
    })
    expect(p.children[1]).toBe(children[1])
    expect(children[0].descriptor.annotations).toBeUndefined()
    expect(p.index.mediaType).toBe(OCI_INDEX)
    expect(p.index.digest).toBe(sha256(p.index.bytes))
    const doc = JSON.parse(p.index.json) as {
      manifests: Array<{ digest: string; annotations?: Record<string, string> }>
      annotations?: Record<string, string>
    }
    expect(doc.manifests.map((m) => m.digest)).toEqual([dg(1), dg(11)])
    expect(doc.manifests[0].annotations).toEqual({ 'org.opencontainers.image.description': 'd' })
    expect(doc.annotations).toEqual({ 'org.opencontainers.image.title': 't' })
  })

  it('makes a Docker list of Docker manifests when nothing asks for OCI', () => {
    const children = [
      image(1, 'linux/amd64', DOCKER_MANIFEST),
      image(2, 'linux/arm64', DOCKER_MANIFEST)
    ]
    const p = planIndex(children, { format: 'auto', descriptorAnnotations: {} })
    expect(p.children).toBe(children)
    expect(p.index.mediaType).toBe(DOCKER_LIST)
  })

  it('refuses what the format cannot hold, or nothing at all, as errors the user fixes', () => {
    const docker = [image(1, 'linux/amd64', DOCKER_MANIFEST)]
    const annotated = (): unknown =>
      planIndex(docker, { format: 'docker', descriptorAnnotations: { a: 'b' } })
    expect(annotated).toThrow(FormatError)
    expect(annotated).toThrow(/annotations need an OCI index/)
    expect(() => planIndex([], { format: 'auto' })).toThrow('no images left to put in the index')
    expect(() => planIndex([], { format: 'auto' })).toThrow(UserError)
  })
})

describe('planTags', () => {
  const tags = ['r.io/app:1', 'r.io/app:latest', 'r.io/other:1'].map(parseReference)
  const INDEX = dg(100)

  it('leaves tags on the index alone and pushes the others, recording what they held', () => {
    const results = planTags(tags, [INDEX, dg(7), undefined], INDEX, false)
    expect(results).toStrictEqual([
      { ref: 'r.io/app:1', outcome: 'unchanged', previous: INDEX },
      { ref: 'r.io/app:latest', outcome: 'pushed', previous: dg(7) },
      { ref: 'r.io/other:1', outcome: 'pushed' }
    ])
  })

  it('plans a dry run without pushing, still telling current tags apart', () => {
    const results = planTags(tags, [undefined, INDEX, dg(7)], INDEX, true)
    expect(results.map((r) => r.outcome)).toEqual(['dry-run', 'unchanged', 'dry-run'])
    expect(results[0]).not.toHaveProperty('previous')
    expect(results[2].previous).toBe(dg(7))
  })
})

describe('reposToPush', () => {
  const tags = ['r.io/a:1', 'r.io/a:2', 'r.io/b:1', 'q.io/c:1'].map(parseReference)
  const targets = [
    { registry: 'r.io', repository: 'a' },
    { registry: 'r.io', repository: 'b' },
    { registry: 'q.io', repository: 'c' }
  ]
  const result = (outcome: TagResult['outcome']): TagResult => ({ ref: '', outcome })

  it('keeps the repositories with at least one tag to push, in order', () => {
    const results = ['unchanged', 'pushed', 'unchanged', 'pushed'].map((o) =>
      result(o as TagResult['outcome'])
    )
    expect(reposToPush(targets, tags, results)).toEqual([targets[0], targets[2]])
  })

  it('pushes to none when every tag is current, or in a dry run', () => {
    expect(
      reposToPush(
        targets,
        tags,
        tags.map(() => result('unchanged'))
      )
    ).toEqual([])
    expect(
      reposToPush(
        targets,
        tags,
        tags.map(() => result('dry-run'))
      )
    ).toEqual([])
  })
})

describe('describedAsFetched', () => {
  it('gives entries the size and media type of the manifests fetched, saying so', () => {
    const bytes = Buffer.from('{"schemaVersion":2}')
    const fetched = new Map([
      [dg(1), { bytes, mediaType: DOCKER_MANIFEST, digest: dg(1) }],
      [dg(2), { bytes: Buffer.alloc(102), mediaType: OCI_MANIFEST, digest: dg(2) }],
      [dg(3), { bytes, mediaType: 'application/json', digest: dg(3) }]
    ])
    const decisions: string[] = []
    const out = describedAsFetched(
      [
        image(1, 'linux/amd64'),
        image(2, 'linux/arm64'),
        image(3, 'linux/s390x'),
        image(4, 'linux/386')
      ],
      fetched,
      decisions
    )
    expect(out.map((c) => [c.descriptor.mediaType, c.descriptor.size])).toEqual([
      [DOCKER_MANIFEST, bytes.length],
      [OCI_MANIFEST, 102],
      // A header's type that is no manifest type is not taken; the size is.
      [OCI_MANIFEST, bytes.length],
      [OCI_MANIFEST, 104]
    ])
    expect(decisions).toHaveLength(2)
    expect(decisions[0]).toContain(
      `entry ${dg(1)} of src1: its index says ${OCI_MANIFEST}, 101 bytes`
    )
  })
})
