// Rewriting BuildKit attestation manifests: without their SLSA provenance layers (keeping the
// other statements and a config consistent with them), or as OCI referrers of their image.
import { sha256 } from './digest.js'
import type { Descriptor, ImageManifest, RawManifest } from './manifest.js'
import { OCI_MANIFEST } from './mediatypes.js'

export const PREDICATE_TYPE_KEY = 'in-toto.io/predicate-type'

export function isProvenance(predicateType: string | undefined): boolean {
  return !!predicateType && predicateType.startsWith('https://slsa.dev/provenance/')
}

export interface RewrittenAttestation {
  manifest: RawManifest
  /** The new config blob, which the target repositories do not have yet. */
  config: { digest: string; bytes: Uint8Array; mediaType: string }
  removed: string[]
}

/**
 * Returns the rewritten manifest, 'unchanged' when it holds no provenance, or 'empty' when
 * provenance was all it held (the attestation is then dropped).
 */
export function stripProvenance(
  manifest: ImageManifest,
  mediaType: string,
  config: Uint8Array
): RewrittenAttestation | 'unchanged' | 'empty' {
  const kept = manifest.layers.filter((l) => !isProvenance(l.annotations?.[PREDICATE_TYPE_KEY]))
  if (kept.length === manifest.layers.length) return 'unchanged'
  if (kept.length === 0) return 'empty'
  const removed = manifest.layers
    .filter((l) => !kept.includes(l))
    .map((l) => l.annotations?.[PREDICATE_TYPE_KEY] ?? l.digest)

  // in-toto layers are stored uncompressed, so their diff_ids are their digests.
  const cfg = JSON.parse(Buffer.from(config).toString('utf8')) as Record<string, unknown>
  const rootfs = cfg.rootfs as { diff_ids?: string[] } | undefined
  if (rootfs && Array.isArray(rootfs.diff_ids)) {
    const keptDigests = new Set(kept.map((l) => l.digest))
    rootfs.diff_ids = rootfs.diff_ids.filter((d) => keptDigests.has(d))
  }
  const configBytes = Buffer.from(JSON.stringify(cfg), 'utf8')
  const configDigest = sha256(configBytes)

  const doc = {
    ...manifest,
    config: { ...manifest.config, digest: configDigest, size: configBytes.length },
    layers: kept
  }
  const bytes = Buffer.from(JSON.stringify(doc), 'utf8')
  return {
    manifest: { bytes, mediaType, digest: sha256(bytes) },
    config: { digest: configDigest, bytes: configBytes, mediaType: manifest.config.mediaType },
    removed
  }
}

/**
 * The artifactType BuildKit gives an attestation manifest it attaches as an OCI referrer
 * (moby/buildkit attestation storage; docker/buildx imagetools tests check for it).
 */
export const ATTESTATION_ARTIFACT_TYPE = 'application/vnd.docker.attestation.manifest.v1+json'

/** The OCI empty JSON blob `{}`, the config of artifacts without one (image-spec manifest.md). */
export const EMPTY_CONFIG = {
  mediaType: 'application/vnd.oci.empty.v1+json',
  digest: 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a',
  size: 2,
  data: 'e30='
}
export const EMPTY_CONFIG_BYTES = Buffer.from('{}', 'utf8')

/**
 * An attestation manifest in the form BuildKit attaches as a referrer: an OCI manifest with
 * BuildKit's artifactType, the empty config, the same in-toto layers (their media types and
 * predicate-type annotations kept), and a `subject` naming the image it describes. Its digest
 * differs from the original's; the bytes have a fixed key order.
 */
export function asReferrerManifest(
  manifest: ImageManifest,
  subject: Pick<Descriptor, 'mediaType' | 'digest' | 'size'>
): RawManifest {
  const doc: Record<string, unknown> = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    artifactType: ATTESTATION_ARTIFACT_TYPE,
    config: EMPTY_CONFIG,
    layers: manifest.layers,
    subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size }
  }
  if (manifest.annotations && Object.keys(manifest.annotations).length)
    doc.annotations = manifest.annotations
  const bytes = Buffer.from(JSON.stringify(doc), 'utf8')
  return { bytes, mediaType: OCI_MANIFEST, digest: sha256(bytes) }
}
