import { describe, expect, it } from '@jest/globals'
import { asReferrerManifest, EMPTY_CONFIG, stripProvenance } from '../../src/core/attestations.js'
import { checkRequiredPlatforms, type Child } from '../../src/core/children.js'
import { sha256 } from '../../src/core/digest.js'
import type { ImageManifest } from '../../src/core/manifest.js'
import { OCI_MANIFEST } from '../../src/core/mediatypes.js'
import type { Platform } from '../../src/core/platform.js'

const dg = (n: number): string => 'sha256:' + n.toString(16).padStart(64, '0')
const layer = (n: number, type: string): ImageManifest['layers'][number] => ({
  mediaType: 'application/vnd.in-toto+json',
  digest: dg(n),
  size: 10,
  annotations: { 'in-toto.io/predicate-type': type }
})

describe('stripProvenance', () => {
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'unknown',
      os: 'unknown',
      config: {},
      rootfs: { type: 'layers', diff_ids: [dg(1), dg(2)] }
    })
  )
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: {
      mediaType: 'application/vnd.oci.image.config.v1+json',
      digest: sha256(config),
      size: config.length
    },
    layers: [layer(1, 'https://slsa.dev/provenance/v0.2'), layer(2, 'https://spdx.dev/Document')]
  }

  it('removes provenance layers and their diff_ids, hashing exactly the new bytes', () => {
    const r = stripProvenance(manifest, OCI_MANIFEST, config)
    if (typeof r === 'string') throw new Error(r)
    const doc = JSON.parse(Buffer.from(r.manifest.bytes).toString()) as ImageManifest
    expect(doc.layers.map((l) => l.digest)).toEqual([dg(2)])
    expect(r.manifest.digest).toBe(sha256(r.manifest.bytes))
    expect(doc.config.digest).toBe(r.config.digest)
    expect(r.config.digest).toBe(sha256(r.config.bytes))
    expect(
      (JSON.parse(Buffer.from(r.config.bytes).toString()) as { rootfs: { diff_ids: string[] } })
        .rootfs.diff_ids
    ).toEqual([dg(2)])
    expect(r.removed).toEqual(['https://slsa.dev/provenance/v0.2'])
    // Deterministic.
    expect((stripProvenance(manifest, OCI_MANIFEST, config) as typeof r).manifest.digest).toBe(
      r.manifest.digest
    )
  })

  it('says when nothing or everything is provenance', () => {
    expect(
      stripProvenance(
        { ...manifest, layers: [layer(2, 'https://spdx.dev/Document')] },
        OCI_MANIFEST,
        config
      )
    ).toBe('unchanged')
    expect(
      stripProvenance(
        { ...manifest, layers: [layer(1, 'https://slsa.dev/provenance/v1')] },
        OCI_MANIFEST,
        config
      )
    ).toBe('empty')
  })
})

describe('checkRequiredPlatforms', () => {
  const img = (p: Platform): Child => ({
    kind: 'image',
    descriptor: { mediaType: OCI_MANIFEST, digest: dg(1), size: 1, platform: p },
    source: { registry: 'r', repository: 'x' },
    sourceInput: 'x'
  })
  const have = [
    img({ os: 'linux', architecture: 'amd64' }),
    img({ os: 'linux', architecture: 'arm64', variant: 'v8' })
  ]
  it('accepts the exact set with normalised variants', () => {
    expect(
      checkRequiredPlatforms(
        have,
        [
          { os: 'linux', architecture: 'arm64' },
          { os: 'linux', architecture: 'amd64' }
        ],
        false,
        []
      )
    ).toBeUndefined()
  })
  it('names what is missing and what is extra', () => {
    expect(
      checkRequiredPlatforms(
        have,
        [
          { os: 'linux', architecture: 'amd64' },
          { os: 'linux', architecture: 'arm', variant: 'v7' }
        ],
        false,
        ['a', 'b']
      )
    ).toBe(
      'input require-platforms: missing linux/arm/v7; not listed: linux/arm64/v8 (set allow-extra-platforms: true to permit extras). The merge would hold linux/amd64, linux/arm64/v8, from sources: a, b'
    )
    expect(
      checkRequiredPlatforms(have, [{ os: 'linux', architecture: 'amd64' }], true, [])
    ).toBeUndefined()
  })
})

describe('asReferrerManifest', () => {
  it("is BuildKit's referrer form, byte for byte: empty config, the same layers, the image as subject", () => {
    const layer = {
      mediaType: 'application/vnd.in-toto+json',
      digest: `sha256:${'a'.repeat(64)}`,
      size: 1,
      annotations: { 'in-toto.io/predicate-type': 'https://spdx.dev/Document' }
    }
    const manifest: ImageManifest = {
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: {
        mediaType: 'application/vnd.oci.image.config.v1+json',
        digest: layer.digest,
        size: 1
      },
      layers: [layer]
    }
    const subject = {
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      digest: `sha256:${'b'.repeat(64)}`,
      size: 7
    }
    const raw = asReferrerManifest(manifest, subject)
    expect(Buffer.from(raw.bytes).toString('utf8')).toBe(
      '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",' +
        '"artifactType":"application/vnd.docker.attestation.manifest.v1+json",' +
        '"config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2,"data":"e30="},' +
        `"layers":[{"mediaType":"application/vnd.in-toto+json","digest":"sha256:${'a'.repeat(64)}","size":1,"annotations":{"in-toto.io/predicate-type":"https://spdx.dev/Document"}}],` +
        `"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:${'b'.repeat(64)}","size":7}}`
    )
    expect(raw.digest).toBe(sha256(raw.bytes))
    expect(sha256(Buffer.from('{}'))).toBe(EMPTY_CONFIG.digest)
  })
})
