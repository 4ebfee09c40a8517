// strip-provenance: rewriting a BuildKit attestation manifest without its SLSA provenance layers,
// keeping the other statements (SBOMs) and the config consistent with what remains.
import { sha256 } from './digest.js'
import type { ImageManifest, RawManifest } from './manifest.js'

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
