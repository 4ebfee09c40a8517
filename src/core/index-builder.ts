// Building the merged index: media type choice and deterministic bytes.
import { UserError } from '../errors.js'
import { sha256 } from './digest.js'
import { ATTESTATION_TYPE_KEY, type Descriptor, type RawManifest } from './manifest.js'
import { DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX } from './mediatypes.js'
import type { Platform } from './platform.js'

export type IndexFormat = 'auto' | 'oci' | 'docker'

export interface BuildOptions {
  format: IndexFormat
  annotations?: Record<string, string>
}

/** Picks the index media type: a Docker list only when every entry is a Docker v2 manifest. */
export function chooseIndexType(children: Descriptor[], opts: BuildOptions): string {
  const allDocker = children.every((d) => d.mediaType === DOCKER_MANIFEST)
  // Annotations on the index or on an entry exist only in an OCI index.
  const hasAnnotations =
    (!!opts.annotations && Object.keys(opts.annotations).length > 0) ||
    children.some((d) => d.annotations && Object.keys(d.annotations).length > 0)
  if (opts.format === 'docker') {
    // Attestation manifests are OCI manifests with in-toto layers, which a Docker list may not
    // hold (Quay refuses unknown layer types in Docker manifests: ko-build/ko#660).
    const attestation = children.find((d) => d.annotations?.[ATTESTATION_TYPE_KEY])
    if (attestation) {
      throw new FormatError(
        `input format: "docker", but ${attestation.digest} is an attestation (or other unknown/unknown entry), which only an OCI index can carry: set attestations: strip, or use format: auto or oci`
      )
    }
    const bad = children.find((d) => d.mediaType !== DOCKER_MANIFEST)
    if (bad) {
      throw new FormatError(
        `input format: "docker", but ${bad.digest} is ${bad.mediaType}; a Docker manifest list can only hold Docker v2 manifests (use format: auto or oci)`
      )
    }
    if (hasAnnotations)
      throw new FormatError(
        'input format: "docker", but annotations need an OCI index (use format: auto or oci)'
      )
    return DOCKER_LIST
  }
  if (opts.format === 'oci') return OCI_INDEX
  return allDocker && !hasAnnotations ? DOCKER_LIST : OCI_INDEX
}

function orderedPlatform(p: Platform): Platform {
  const out: Platform = { architecture: p.architecture, os: p.os }
  if (p['os.version']) out['os.version'] = p['os.version']
  if (p['os.features']?.length) out['os.features'] = [...p['os.features']]
  if (p.variant) out.variant = p.variant
  if (p.features?.length) out.features = [...p.features]
  return out
}

/** A descriptor with a fixed key order, so the same inputs always give the same bytes. */
function orderedDescriptor(d: Descriptor, docker: boolean): Descriptor {
  const out: Descriptor = { mediaType: d.mediaType, digest: d.digest, size: d.size }
  if (!docker && d.artifactType) out.artifactType = d.artifactType
  if (d.platform) out.platform = orderedPlatform(d.platform)
  if (!docker && d.annotations && Object.keys(d.annotations).length)
    out.annotations = sortKeys(d.annotations)
  return out
}

function sortKeys(o: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
}

/** Builds the index; `digest` is the sha256 of exactly `bytes`, which is what gets PUT. */
export function buildIndex(
  children: Descriptor[],
  opts: BuildOptions
): RawManifest & { json: string } {
  if (children.length === 0) throw new FormatError('no images left to put in the index')
  const mediaType = chooseIndexType(children, opts)
  const docker = mediaType === DOCKER_LIST
  const doc: Record<string, unknown> = {
    schemaVersion: 2,
    mediaType,
    manifests: children.map((d) => orderedDescriptor(d, docker))
  }
  if (!docker && opts.annotations && Object.keys(opts.annotations).length)
    doc.annotations = sortKeys(opts.annotations)
  const json = JSON.stringify(doc, null, 2)
  const bytes = Buffer.from(json, 'utf8')
  return { bytes, mediaType, digest: sha256(bytes), json }
}

/** The sources cannot make the index the inputs ask for (format, or nothing left). */
export class FormatError extends UserError {}
