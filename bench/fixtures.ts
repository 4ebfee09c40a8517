// Fixtures: distinct platforms, and the images the scenarios push (small, attestation-wrapped,
// big random layer), pushed directly to a registry.
import {
  MT,
  pushBlob,
  pushImage,
  pushIndex,
  pushManifest,
  pushRandomImage,
  sha256,
  type Platform,
  type PushedImage
} from '../__tests__/helpers/oci.js'
import type { TestRegistry } from '../__tests__/helpers/registry.js'
import { LAYER_MB, progress } from './settings.js'

/** Go's GOOS x GOARCH, in an order that starts with the common ones: 88 distinct platforms. */
export function platforms(n: number): Platform[] {
  const oses = ['linux', 'freebsd', 'netbsd', 'openbsd', 'windows', 'darwin', 'illumos']
  const arches: Array<[string, string?]> = [
    ['amd64'],
    ['arm64'],
    ['arm', 'v7'],
    ['arm', 'v6'],
    ['386'],
    ['ppc64le'],
    ['s390x'],
    ['riscv64'],
    ['mips64le'],
    ['loong64'],
    ['ppc64']
  ]
  const out: Platform[] = []
  for (const o of oses)
    for (const [architecture, variant] of arches) {
      const p: Platform = { os: o, architecture }
      if (variant) p.variant = variant
      out.push(p)
    }
  if (n > out.length) throw new Error(`at most ${out.length} distinct platforms`)
  return out.slice(0, n)
}

/** A small single-platform image (`layers` tiny gzip'd tar layers), pushed by digest. */
export function pushSmall(
  reg: TestRegistry,
  repo: string,
  p: Platform,
  layers: number,
  seed: string
): Promise<PushedImage> {
  return pushImage(reg, repo, { arch: p.architecture, os: p.os, variant: p.variant, layers, seed })
}

/**
 * What `docker buildx build --push` pushes for one platform (an OCI index holding the image and a
 * provenance attestation manifest), with an image of `layers` layers. Returns the index digest.
 */
export async function pushWrapped(
  reg: TestRegistry,
  repo: string,
  p: Platform,
  layers: number,
  seed: string
): Promise<string> {
  const image = await pushSmall(reg, repo, p, layers, seed)
  const predicateType = 'https://slsa.dev/provenance/v0.2'
  const platformStr = [p.os, p.architecture, p.variant].filter(Boolean).join('/')
  const statement = JSON.stringify({
    _type: 'https://in-toto.io/Statement/v0.1',
    predicateType,
    subject: [
      {
        name: `pkg:docker/${repo}@latest?platform=${encodeURIComponent(platformStr)}`,
        digest: { sha256: image.digest.slice('sha256:'.length) }
      }
    ],
    predicate: {
      builder: { id: '' },
      buildType: 'https://mobyproject.org/buildkit@v1',
      metadata: { buildInvocationID: seed }
    }
  })
  const att = await pushBlob(reg, repo, statement)
  const cfg = await pushBlob(
    reg,
    repo,
    JSON.stringify({
      architecture: 'unknown',
      os: 'unknown',
      config: {},
      rootfs: { type: 'layers', diff_ids: [att.digest] }
    })
  )
  const attBody = JSON.stringify({
    schemaVersion: 2,
    mediaType: MT.ociManifest,
    config: { mediaType: MT.ociConfig, digest: cfg.digest, size: cfg.size },
    layers: [
      {
        mediaType: MT.inToto,
        digest: att.digest,
        size: att.size,
        annotations: { 'in-toto.io/predicate-type': predicateType }
      }
    ]
  })
  const attDigest = await pushManifest(reg, repo, sha256(attBody), attBody, MT.ociManifest)
  const index = await pushIndex(reg, repo, undefined, [
    { mediaType: MT.ociManifest, digest: image.digest, size: image.size, platform: p },
    {
      mediaType: MT.ociManifest,
      digest: attDigest,
      size: Buffer.byteLength(attBody),
      annotations: {
        'vnd.docker.reference.digest': image.digest,
        'vnd.docker.reference.type': 'attestation-manifest'
      },
      platform: { architecture: 'unknown', os: 'unknown' }
    }
  ])
  return index.digest
}

/** The big sources of the cross-registry scenarios: one random `LAYER_MB` MiB layer each. */
export async function pushBigSources(
  reg: TestRegistry,
  repo: string,
  plats: Platform[]
): Promise<string[]> {
  const digests: string[] = []
  for (const [k, p] of plats.entries()) {
    progress(`  pushing ${LAYER_MB} MiB image ${k + 1}/${plats.length}`)
    digests.push((await pushRandomImage(reg, repo, p, LAYER_MB)).digest)
  }
  return digests
}
