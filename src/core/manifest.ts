// Parsing and classifying what a registry returns for a manifest request.
import { UserError } from '../errors.js'
import {
  isIndexType,
  isImageManifestType,
  isSchema1Type,
  OCI_INDEX,
  OCI_MANIFEST,
  DOCKER_LIST,
  DOCKER_MANIFEST
} from './mediatypes.js'
import { digestProblem } from './digest.js'
import { platformProblem, type Platform } from './platform.js'

export interface Descriptor {
  mediaType: string
  digest: string
  size: number
  artifactType?: string
  platform?: Platform
  annotations?: Record<string, string>
  urls?: string[]
  data?: string
}

export interface ImageManifest {
  schemaVersion: 2
  mediaType?: string
  artifactType?: string
  config: Descriptor
  layers: Descriptor[]
  subject?: Descriptor
  annotations?: Record<string, string>
}

export interface IndexManifest {
  schemaVersion: 2
  mediaType?: string
  artifactType?: string
  manifests: Descriptor[]
  subject?: Descriptor
  annotations?: Record<string, string>
}

/** A manifest exactly as fetched: `bytes` are what was hashed and what gets pushed elsewhere. */
export interface RawManifest {
  bytes: Uint8Array
  mediaType: string
  digest: string
}

export type ParsedManifest =
  | { kind: 'index'; mediaType: string; index: IndexManifest }
  | { kind: 'image'; mediaType: string; manifest: ImageManifest }

export const ATTESTATION_TYPE_KEY = 'vnd.docker.reference.type'
export const ATTESTATION_DIGEST_KEY = 'vnd.docker.reference.digest'
export const ATTESTATION_MANIFEST = 'attestation-manifest'

const MANIFEST_TYPES = new Set([OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST])

/** Maximum manifest size we accept (the limit Distribution and containerd use). */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024

/**
 * A source holds something that cannot go into an index (a build cache, schema 1, a malformed
 * manifest): the user passes another source.
 */
export class ManifestError extends UserError {}

/** A Docker schema 1 manifest, refused wherever it is met; `where` may be left to the caller. */
export function schema1Error(where?: string): ManifestError {
  return new ManifestError(
    `${where ? `${where}: ` : ''}this is a Docker schema 1 manifest, which cannot be part of a multi-arch index; rebuild and push the image with a current Docker or buildah`
  )
}

/**
 * Parses manifest bytes. `where` names the ref and registry for error messages.
 * The media type comes from the document when present, else from the Content-Type header.
 */
export function parseManifest(raw: RawManifest, where: string): ParsedManifest {
  let doc: unknown
  try {
    doc = JSON.parse(Buffer.from(raw.bytes).toString('utf8'))
  } catch (e) {
    throw new ManifestError(
      `${where}: the registry returned a manifest that is not valid JSON (${(e as Error).message})`,
      { cause: e }
    )
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw new ManifestError(`${where}: the registry returned a manifest that is not a JSON object`)
  }
  const m = doc as Record<string, unknown>
  if (m.schemaVersion === 1 || isSchema1Type(raw.mediaType)) throw schema1Error(where)
  if (m.schemaVersion !== 2) {
    throw new ManifestError(
      `${where}: unsupported manifest schemaVersion ${JSON.stringify(m.schemaVersion)}`
    )
  }
  const declared = typeof m.mediaType === 'string' ? m.mediaType : undefined
  let mediaType = declared ?? raw.mediaType
  // An OCI document without mediaType is told apart by its shape.
  if (!MANIFEST_TYPES.has(mediaType)) {
    if (Array.isArray(m.manifests)) mediaType = OCI_INDEX
    else if (m.config && Array.isArray(m.layers)) mediaType = OCI_MANIFEST
  }
  if (isIndexType(mediaType)) {
    if (!Array.isArray(m.manifests)) {
      throw new ManifestError(`${where}: index has no "manifests" list`)
    }
    ;(m.manifests as unknown[]).forEach((d, i) => checkDescriptor(d, `${where}: entry ${i}`))
    if (m.subject !== undefined) checkDescriptor(m.subject, `${where}: subject`)
    return { kind: 'index', mediaType, index: m as unknown as IndexManifest }
  }
  if (isImageManifestType(mediaType)) {
    if (!m.config || !Array.isArray(m.layers)) {
      throw new ManifestError(`${where}: image manifest lacks "config" or "layers"`)
    }
    checkDescriptor(m.config, `${where}: config`)
    ;(m.layers as unknown[]).forEach((d, i) => checkDescriptor(d, `${where}: layer ${i}`))
    if (m.subject !== undefined) checkDescriptor(m.subject, `${where}: subject`)
    return { kind: 'image', mediaType, manifest: m as unknown as ImageManifest }
  }
  throw new ManifestError(`${where}: unsupported manifest media type "${mediaType}"`)
}

/**
 * Throws unless `d` is a descriptor this action can use: a registry chose every field, and its
 * digest becomes part of a URL, so the digest must match the OCI grammar (sha256 or sha512).
 * `where` names the source and the entry.
 */
export function checkDescriptor(d: unknown, where: string): asserts d is Descriptor {
  const x = d as Partial<Descriptor> | null
  if (
    !x ||
    typeof x !== 'object' ||
    typeof x.mediaType !== 'string' ||
    typeof x.digest !== 'string' ||
    typeof x.size !== 'number' ||
    !Number.isSafeInteger(x.size) ||
    x.size < 0
  ) {
    throw new ManifestError(`${where}: malformed descriptor ${JSON.stringify(d).slice(0, 300)}`)
  }
  const problem = digestProblem(x.digest)
  if (problem) {
    throw new ManifestError(
      `${where} has the digest ${JSON.stringify(x.digest)}, which is refused: ${problem}`
    )
  }
  const platform = x.platform === undefined ? undefined : platformProblem(x.platform)
  if (platform) throw new ManifestError(`${where} (${x.digest}) is not usable: ${platform}`)
}

export function isAttestationDescriptor(d: Descriptor): boolean {
  return d.annotations?.[ATTESTATION_TYPE_KEY] === ATTESTATION_MANIFEST
}

/** True when a descriptor inside an index names a manifest (image or index), not a blob. */
export function isManifestDescriptor(d: Descriptor): boolean {
  return MANIFEST_TYPES.has(d.mediaType)
}

/** BuildKit's `--cache-to type=registry` writes an "index" whose entries are layers and a cache config. */
export function looksLikeBuildCache(index: IndexManifest): boolean {
  return (
    index.manifests.length > 0 &&
    index.manifests.some((d) => !isManifestDescriptor(d)) &&
    index.manifests.every((d) => !isAttestationDescriptor(d))
  )
}

/** Every blob an image manifest references: config first, then layers, without duplicates. */
export function blobsOf(m: ImageManifest): Descriptor[] {
  const seen = new Set<string>()
  const out: Descriptor[] = []
  for (const d of [m.config, ...m.layers]) {
    // Foreign layers (Windows base layers with urls) are not stored in registries: never copy them.
    if (d.urls && d.urls.length > 0 && /foreign|nondistributable/.test(d.mediaType)) continue
    if (seen.has(d.digest)) continue
    seen.add(d.digest)
    out.push(d)
  }
  return out
}
