import { describe, expect, it } from '@jest/globals'
import {
  mediaTypeName,
  referenceTypeOf,
  selectChildren,
  unwrapIndex,
  type Child
} from '../../src/core/children.js'
import { buildIndex, chooseIndexType } from '../../src/core/index-builder.js'
import { sha256 } from '../../src/core/digest.js'
import { parseManifest, type Descriptor, type IndexManifest } from '../../src/core/manifest.js'
import { DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST } from '../../src/core/mediatypes.js'
import { att, dg, image } from '../helpers/children.js'

describe('unwrapIndex', () => {
  it('classifies entries in order', () => {
    const idx: IndexManifest = {
      schemaVersion: 2,
      manifests: [
        image(1, 'linux/amd64').descriptor,
        att(2, 1).descriptor,
        { mediaType: OCI_INDEX, digest: dg(3), size: 1 },
        { mediaType: OCI_MANIFEST, digest: dg(4), size: 1 }
      ]
    }
    expect(unwrapIndex(idx, 'w').map((e) => e.role)).toEqual([
      'image',
      'attestation',
      'nested-index',
      'unplatformed'
    ])
  })

  it('names a build cache for what it is', () => {
    const idx: IndexManifest = {
      schemaVersion: 2,
      manifests: [
        { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: dg(1), size: 1 },
        { mediaType: 'application/vnd.buildkit.cacheconfig.v0', digest: dg(2), size: 1 }
      ]
    }
    expect(() => unwrapIndex(idx, 'source x')).toThrow(/source x.*build cache, not an image/)
  })
})

describe('entries that are not images', () => {
  const entry = (annotations: Record<string, unknown>): Descriptor =>
    ({
      mediaType: OCI_MANIFEST,
      digest: dg(5),
      size: 5,
      platform: { os: 'unknown', architecture: 'unknown' },
      annotations
    }) as Descriptor

  it("take regctl's builder type as a companion, and only a short name as a type", () => {
    const roles = (a: Record<string, unknown>): string =>
      unwrapIndex({ schemaVersion: 2, manifests: [entry(a)] }, 'src')[0].role
    expect(roles({ 'vnd.docker.reference.type': 'builder' })).toBe('companion')
    expect(roles({ 'vnd.docker.reference.type': 'attestation-manifest' })).toBe('attestation')
    expect(roles({ 'vnd.docker.reference.type': { x: 1 } })).toBe('unplatformed')
    expect(roles({ 'vnd.docker.reference.type': 'a b\n::error::x' })).toBe('unplatformed')
    expect(referenceTypeOf(entry({ 'vnd.docker.reference.type': 'x'.repeat(65) }))).toBeUndefined()
  })

  it('print an artifactType only when it is a media type', () => {
    expect(mediaTypeName('application/vnd.dev.sigstore.bundle.v0.3+json')).toBe(
      'application/vnd.dev.sigstore.bundle.v0.3+json'
    )
    expect(mediaTypeName('text/plain\n::warning::x')).toBeUndefined()
    expect(mediaTypeName(42)).toBeUndefined()
  })
})

describe('selectChildren', () => {
  const base = { onDuplicate: 'error' as const, attestations: 'keep' as const }

  it('puts each attestation right after its image and drops dangling ones', () => {
    const all = [
      att(11, 1),
      image(1, 'linux/amd64'),
      image(2, 'linux/arm64'),
      att(12, 2),
      att(13, 99)
    ]
    const s = selectChildren(all, base)
    expect(s.children.map((c) => c.descriptor.digest)).toEqual([dg(1), dg(11), dg(2), dg(12)])
    expect(s.decisions.join('\n')).toMatch(
      new RegExp(`drop attestation ${dg(13)}: its image ${dg(99)} is not in the index`)
    )
  })

  it('strips attestations', () => {
    const s = selectChildren([image(1, 'linux/amd64'), att(11, 1)], {
      ...base,
      attestations: 'strip'
    })
    expect(s.children.map((c) => c.descriptor.digest)).toEqual([dg(1)])
  })

  it('filters platforms and drops the attestations of filtered images', () => {
    const all = [
      image(1, 'linux/amd64'),
      att(11, 1),
      image(2, 'linux/arm64/v8'),
      att(12, 2),
      image(3, 'linux/arm/v7')
    ]
    const s = selectChildren(all, {
      ...base,
      platforms: [
        { os: 'linux', architecture: 'arm64' },
        { os: 'linux', architecture: 'arm' }
      ]
    })
    expect(s.children.map((c) => c.descriptor.digest)).toEqual([dg(2), dg(12), dg(3)])
  })

  it('reports duplicate platforms naming both sources, or resolves them on request', () => {
    const all = [
      image(1, 'linux/arm64', OCI_MANIFEST, 'a'),
      image(2, 'linux/arm64/v8', OCI_MANIFEST, 'b'),
      att(12, 2)
    ]
    expect(() => selectChildren(all, base)).toThrow(/linux\/arm64.*a \(.*b \(/)
    expect(
      selectChildren(all, { ...base, onDuplicate: 'first' }).children.map(
        (c) => c.descriptor.digest
      )
    ).toEqual([dg(1)])
    expect(
      selectChildren(all, { ...base, onDuplicate: 'last' }).children.map((c) => c.descriptor.digest)
    ).toEqual([dg(2), dg(12)])
  })

  it('treats the same digest from two sources as one image', () => {
    const s = selectChildren(
      [image(1, 'linux/amd64', OCI_MANIFEST, 'a'), image(1, 'linux/amd64', OCI_MANIFEST, 'b')],
      base
    )
    expect(s.children).toHaveLength(1)
  })
})

describe('append', () => {
  const base = { onDuplicate: 'error' as const, attestations: 'keep' as const }
  const existing = (c: Child): Child => ({ ...c, existing: true, sourceInput: 'tag (current)' })

  it('a source re-supplying an image the tag holds brings its own attestation, not the old one', () => {
    const all = [
      existing(image(1, 'linux/amd64')),
      existing(att(11, 1)),
      image(1, 'linux/amd64'),
      att(12, 1)
    ]
    const s = selectChildren(all, base)
    expect(s.children.map((c) => c.descriptor.digest)).toEqual([dg(1), dg(12)])
    expect(s.children[0].existing).toBeUndefined()
  })

  it('replaces the platform a source provides and keeps the others', () => {
    const all = [
      existing(image(1, 'linux/amd64')),
      existing(att(11, 1)),
      existing(image(2, 'linux/arm64')),
      existing(att(12, 2)),
      image(3, 'linux/arm64/v8')
    ]
    const s = selectChildren(all, base)
    expect(s.children.map((c) => c.descriptor.digest)).toEqual([dg(1), dg(11), dg(3)])
    expect(s.decisions.join('\n')).toMatch(/replace linux\/arm64/)
  })
})

describe('buildIndex', () => {
  const amd: Descriptor = {
    mediaType: DOCKER_MANIFEST,
    digest: dg(1),
    size: 10,
    platform: { os: 'linux', architecture: 'amd64' }
  }
  const arm: Descriptor = {
    size: 11,
    digest: dg(2),
    mediaType: DOCKER_MANIFEST,
    platform: { variant: 'v8', os: 'linux', architecture: 'arm64' }
  }

  it('chooses a Docker list only when every entry is a Docker manifest', () => {
    expect(chooseIndexType([amd, arm], { format: 'auto' })).toBe(DOCKER_LIST)
    expect(chooseIndexType([amd, { ...arm, mediaType: OCI_MANIFEST }], { format: 'auto' })).toBe(
      OCI_INDEX
    )
    expect(chooseIndexType([amd], { format: 'oci' })).toBe(OCI_INDEX)
    // An annotation on an entry exists only in an OCI index.
    expect(chooseIndexType([amd, { ...arm, annotations: { a: 'b' } }], { format: 'auto' })).toBe(
      OCI_INDEX
    )
    expect(() =>
      chooseIndexType([{ ...amd, annotations: { a: 'b' } }], { format: 'docker' })
    ).toThrow(/annotations need an OCI index/)
    expect(chooseIndexType([amd], { format: 'auto', annotations: { a: 'b' } })).toBe(OCI_INDEX)
    expect(() =>
      chooseIndexType([{ ...amd, mediaType: OCI_MANIFEST }], { format: 'docker' })
    ).toThrow(/Docker manifest list can only hold/)
  })

  it('is deterministic and hashes exactly the bytes it returns', () => {
    const a = buildIndex([amd, arm], { format: 'auto' })
    const b = buildIndex([{ ...amd }, { ...arm }], { format: 'auto' })
    expect(Buffer.from(a.bytes).equals(Buffer.from(b.bytes))).toBe(true)
    expect(a.digest).toBe(sha256(a.bytes))
    const parsed = parseManifest({ bytes: a.bytes, mediaType: a.mediaType, digest: a.digest }, 'x')
    expect(parsed.kind).toBe('index')
    // Key order is fixed whatever order the input had.
    expect(a.json.indexOf('"mediaType"')).toBeLessThan(a.json.indexOf('"digest"'))
    expect(JSON.parse(a.json).manifests[1].platform).toEqual({
      architecture: 'arm64',
      os: 'linux',
      variant: 'v8'
    })
  })

  it('keeps annotations and artifactType in an OCI index and sorts annotation keys', () => {
    const d: Descriptor = {
      ...amd,
      mediaType: OCI_MANIFEST,
      artifactType: 'x/y',
      annotations: { z: '1', a: '2' }
    }
    const idx = buildIndex([d], { format: 'auto', annotations: { 'org.b': '1', 'org.a': '2' } })
    const doc = JSON.parse(idx.json)
    expect(doc.mediaType).toBe(OCI_INDEX)
    expect(Object.keys(doc.annotations)).toEqual(['org.a', 'org.b'])
    expect(doc.manifests[0].artifactType).toBe('x/y')
    expect(Object.keys(doc.manifests[0].annotations)).toEqual(['a', 'z'])
  })

  it('refuses an empty index', () => {
    expect(() => buildIndex([], { format: 'auto' })).toThrow(/no images/)
  })
})

describe('parseManifest', () => {
  const raw = (
    o: unknown,
    mediaType = ''
  ): { bytes: Uint8Array; mediaType: string; digest: string } => {
    const bytes = Buffer.from(typeof o === 'string' ? o : JSON.stringify(o))
    return { bytes, mediaType, digest: sha256(bytes) }
  }
  it('rejects schema 1, invalid JSON and unknown types with the source named', () => {
    expect(() => parseManifest(raw({ schemaVersion: 1, name: 'x' }), 'src a')).toThrow(
      /src a: .*schema 1/
    )
    expect(() => parseManifest(raw('{nope'), 'src a')).toThrow(/src a: .*not valid JSON/)
    expect(() => parseManifest(raw({ schemaVersion: 2, mediaType: 'x/y' }), 'src a')).toThrow(
      /unsupported manifest media type/
    )
  })
  it('tells an OCI document without mediaType by its shape', () => {
    expect(parseManifest(raw({ schemaVersion: 2, manifests: [] }), 'x').mediaType).toBe(OCI_INDEX)
    expect(
      parseManifest(
        raw({ schemaVersion: 2, config: { mediaType: 'a', digest: dg(1), size: 1 }, layers: [] }),
        'x'
      ).kind
    ).toBe('image')
  })
})
