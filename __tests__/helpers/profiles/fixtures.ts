// Sources for the registry matrix, built to the structure of what real tools push, straight into
// the upstream Distribution registry (behind the profiles' backs, as a build job would have).
import {
  MT,
  pushBlob,
  pushImage,
  pushIndex,
  pushManifest,
  sha256,
  type Descriptor,
  type PushedImage,
  type RegistryRef
} from '../oci.js'

export const EMPTY_CONFIG = 'application/vnd.oci.empty.v1+json'
/** BuildKit 0.32's attestation manifests as OCI artifacts (moby/buildkit#6914, #5561). */
export const ATTESTATION_ARTIFACT = 'application/vnd.docker.attestation.manifest.v1+json'
/**
 * cosign v3 attaches a Sigstore bundle as an OCI 1.1 referrer of this artifact type (sigstore/cosign
 * specs/BUNDLE_SPEC.md; sigstore/cosign#4422 on the type its referrers index lists).
 */
export const SIGSTORE_BUNDLE = 'application/vnd.dev.sigstore.bundle.v0.3+json'

const unknown = { architecture: 'unknown', os: 'unknown' }

export interface Pushed {
  digest: string
  size: number
  body: string
}

async function manifest(
  reg: RegistryRef,
  repo: string,
  doc: unknown,
  tag?: string
): Promise<Pushed> {
  const body = JSON.stringify(doc)
  const digest = await pushManifest(reg, repo, tag ?? sha256(body), body, MT.ociManifest)
  return { digest, size: Buffer.byteLength(body), body }
}

/**
 * What BuildKit 0.32+ pushes for one platform: an index holding the image and its attestation
 * manifest, an OCI artifact (empty config) whose `subject` is the image.
 */
export async function pushAttestedWithSubject(
  reg: RegistryRef,
  repo: string,
  opts: { arch: string; seed: string }
): Promise<{ index: string; image: PushedImage; attestation: Pushed }> {
  const image = await pushImage(reg, repo, { arch: opts.arch, seed: opts.seed, format: 'oci' })
  const empty = await pushBlob(reg, repo, '{}')
  const statement = await pushBlob(
    reg,
    repo,
    JSON.stringify({
      _type: 'https://in-toto.io/Statement/v1',
      subject: [{ name: `pkg:docker/${repo}`, digest: { sha256: image.digest.slice(7) } }],
      predicateType: 'https://slsa.dev/provenance/v1',
      predicate: { buildDefinition: { buildType: 'https://mobyproject.org/buildkit@v1' } }
    })
  )
  const attestation = await manifest(reg, repo, {
    schemaVersion: 2,
    mediaType: MT.ociManifest,
    artifactType: ATTESTATION_ARTIFACT,
    config: { mediaType: EMPTY_CONFIG, digest: empty.digest, size: empty.size },
    layers: [
      {
        mediaType: MT.inToto,
        digest: statement.digest,
        size: statement.size,
        annotations: { 'in-toto.io/predicate-type': 'https://slsa.dev/provenance/v1' }
      }
    ],
    subject: { mediaType: image.mediaType, digest: image.digest, size: image.size }
  })
  const index = await pushIndex(reg, repo, undefined, [
    {
      mediaType: image.mediaType,
      digest: image.digest,
      size: image.size,
      platform: image.platform
    },
    {
      mediaType: MT.ociManifest,
      digest: attestation.digest,
      size: attestation.size,
      platform: unknown,
      annotations: {
        'vnd.docker.reference.digest': image.digest,
        'vnd.docker.reference.type': 'attestation-manifest'
      }
    }
  ])
  return { index: index.digest, image, attestation }
}

/**
 * A cosign v3 signature: a Sigstore bundle attached to `subject` as an OCI 1.1 referrer. Where
 * the registry has no referrers API, cosign also keeps the tag-schema fallback index
 * `sha256-<hex>` current (`fallbackTag`).
 */
export async function pushBundleReferrer(
  reg: RegistryRef,
  repo: string,
  subject: PushedImage,
  fallbackTag: boolean
): Promise<Pushed> {
  const empty = await pushBlob(reg, repo, '{}')
  const bundle = await pushBlob(
    reg,
    repo,
    JSON.stringify({
      mediaType: SIGSTORE_BUNDLE,
      verificationMaterial: { publicKey: { hint: subject.digest } },
      messageSignature: { messageDigest: { algorithm: 'SHA2_256' }, signature: 'c2ln' }
    })
  )
  const annotations = { 'org.opencontainers.image.created': '2024-01-01T00:00:00Z' }
  const referrer = await manifest(reg, repo, {
    schemaVersion: 2,
    mediaType: MT.ociManifest,
    artifactType: SIGSTORE_BUNDLE,
    config: { mediaType: EMPTY_CONFIG, digest: empty.digest, size: empty.size },
    layers: [{ mediaType: SIGSTORE_BUNDLE, digest: bundle.digest, size: bundle.size }],
    subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
    annotations
  })
  if (fallbackTag) {
    await pushIndex(reg, repo, subject.digest.replace(':', '-'), [
      {
        mediaType: MT.ociManifest,
        digest: referrer.digest,
        size: referrer.size,
        artifactType: SIGSTORE_BUNDLE,
        annotations
      } as Descriptor
    ])
  }
  return referrer
}

/** A cosign (before v3) signature under its tag `sha256-<hex>.sig`. */
export async function pushCosignSignature(
  reg: RegistryRef,
  repo: string,
  subject: PushedImage
): Promise<Pushed> {
  const payload = await pushBlob(
    reg,
    repo,
    JSON.stringify({
      critical: {
        identity: { 'docker-reference': repo },
        image: { 'docker-manifest-digest': subject.digest },
        type: 'cosign container image signature'
      },
      optional: null
    })
  )
  const config = await pushBlob(
    reg,
    repo,
    JSON.stringify({
      architecture: '',
      os: '',
      config: {},
      rootfs: { type: 'layers', diff_ids: [payload.digest] }
    })
  )
  return manifest(
    reg,
    repo,
    {
      schemaVersion: 2,
      mediaType: MT.ociManifest,
      config: { mediaType: MT.ociConfig, digest: config.digest, size: config.size },
      layers: [
        {
          mediaType: 'application/vnd.dev.cosign.simplesigning.v1+json',
          digest: payload.digest,
          size: payload.size,
          annotations: { 'dev.cosignproject.cosign/signature': 'MEUCIQ==' }
        }
      ]
    },
    `${subject.digest.replace(':', '-')}.sig`
  )
}

/** regctl's builder artifacts' layer type (as __tests__/integration/real-tools.test.ts pushes them). */
export const BUILDER_LAYER = 'application/vnd.regclient.builder+json'

/**
 * A source index whose companion entry has no `platform` at all: the OCI image spec makes it
 * optional in an index (opencontainers/image-spec image-index.md, as
 * https://issues.redhat.com/browse/PROJQUAY-4803 quotes it), and Quay refuses an index that
 * lacks it (selfhosted.ts). The companion is a builder artifact (empty config, one layer) that
 * names its image `by` the `vnd.docker.reference.type: builder` annotation with
 * `vnd.docker.reference.digest`, or by an OCI `subject` in its manifest (then the entry carries
 * the type annotation only).
 */
export async function pushUnplatformedCompanion(
  reg: RegistryRef,
  repo: string,
  opts: { arch: string; seed: string; by: 'annotation' | 'subject' }
): Promise<{ index: string; image: PushedImage; companion: Pushed }> {
  const image = await pushImage(reg, repo, { arch: opts.arch, seed: opts.seed, format: 'oci' })
  const empty = await pushBlob(reg, repo, '{}')
  const layer = await pushBlob(reg, repo, JSON.stringify({ builder: opts.seed, arch: opts.arch }))
  const doc: Record<string, unknown> = {
    schemaVersion: 2,
    mediaType: MT.ociManifest,
    config: { mediaType: EMPTY_CONFIG, digest: empty.digest, size: empty.size },
    layers: [{ mediaType: BUILDER_LAYER, digest: layer.digest, size: layer.size }]
  }
  if (opts.by === 'subject')
    doc.subject = { mediaType: image.mediaType, digest: image.digest, size: image.size }
  const companion = await manifest(reg, repo, doc)
  const annotations: Record<string, string> = { 'vnd.docker.reference.type': 'builder' }
  if (opts.by === 'annotation') annotations['vnd.docker.reference.digest'] = image.digest
  const index = await pushIndex(reg, repo, undefined, [
    image.descriptor,
    // No platform field: not unknown/unknown, none at all.
    { mediaType: MT.ociManifest, digest: companion.digest, size: companion.size, annotations }
  ])
  return { index: index.digest, image, companion }
}
