// The entries of the index being built, and the pure decisions over them: unwrapping,
// platform filtering, duplicate handling and which attestations follow which image.
import { UserError } from '../errors.js'
import {
  ATTESTATION_DIGEST_KEY,
  ATTESTATION_MANIFEST,
  ATTESTATION_TYPE_KEY,
  isAttestationDescriptor,
  isManifestDescriptor,
  looksLikeBuildCache,
  ManifestError,
  type Descriptor,
  type IndexManifest,
  type RawManifest
} from './manifest.js'
import { isDigest } from './digest.js'
import { isIndexType } from './mediatypes.js'
import {
  formatPlatformFull,
  isUnknownPlatform,
  platformKey,
  platformMatches,
  type Platform
} from './platform.js'
import type { Repository } from './reference.js'

export interface Child {
  kind: 'image' | 'attestation'
  /** The descriptor as it goes into the index (platform, annotations and artifactType kept). */
  descriptor: Descriptor
  /** Where the manifest lives now, for copying it into target repositories. */
  source: Repository
  /** The source as the user wrote it, for messages and the summary. */
  sourceInput: string
  /** For attestations: the digest of the image they describe. */
  subject?: string
  /**
   * For an entry of kind attestation that is not one: what else refers to an image this way
   * (`vnd.docker.reference.type: builder`, as regctl writes, or an artifact's type). It follows
   * its image like an attestation, but is never read as one.
   */
  referenceType?: string
  /** A manifest made by this run (strip-provenance); pushed from these bytes, not copied. */
  rewritten?: RawManifest
  /** Blobs made by this run that the rewritten manifest references (its new config). */
  newBlobs?: Array<{ digest: string; bytes: Uint8Array }>
  /** Set for entries taken from what the first tag already held (append). */
  existing?: boolean
}

export type EntryRole = 'image' | 'attestation' | 'companion' | 'nested-index' | 'unplatformed'

/** Classifies an index's entries in order; throws for a build cache "index" whose entries are blobs. */
export function unwrapIndex(
  index: IndexManifest,
  where: string
): Array<{ role: EntryRole; descriptor: Descriptor }> {
  if (looksLikeBuildCache(index)) {
    throw new ManifestError(
      `${where}: this is a build cache, not an image (its entries are layer blobs, as written by --cache-to type=registry); pass the image's digest instead`
    )
  }
  return index.manifests.map((d) => {
    if (!isManifestDescriptor(d)) {
      throw new ManifestError(
        `${where}: entry ${d.digest} has media type ${d.mediaType}, which is not a manifest`
      )
    }
    const unknown = isUnknownPlatform(d.platform)
    const role: EntryRole = isAttestationDescriptor(d)
      ? 'attestation'
      : isIndexType(d.mediaType)
        ? 'nested-index'
        : unknown && referenceTypeOf(d)
          ? 'companion'
          : unknown
            ? 'unplatformed'
            : 'image'
    return { role, descriptor: d }
  })
}

/** The `vnd.docker.reference.type` of an entry that is not an attestation ("builder"), if any. */
export function referenceTypeOf(d: Descriptor): string | undefined {
  const type: unknown = d.annotations?.[ATTESTATION_TYPE_KEY]
  // A registry chose it, and it is printed: a short name, or it names nothing.
  if (typeof type !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(type)) return undefined
  return type !== ATTESTATION_MANIFEST ? type : undefined
}

/** An artifactType as it may be printed: a media type (RFC 6838 grammar), else undefined. */
export function mediaTypeName(t: unknown): string | undefined {
  const part = '[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}'
  return typeof t === 'string' && new RegExp(`^${part}/${part}$`).test(t) ? t : undefined
}

/** "attestation", or what else a companion entry is ("builder manifest"), for decision lines. */
export function entryName(c: Child): string {
  return c.kind === 'image'
    ? 'image'
    : c.referenceType
      ? `${c.referenceType} manifest`
      : 'attestation'
}

export function attestationSubject(d: Descriptor): string | undefined {
  const subject = d.annotations?.[ATTESTATION_DIGEST_KEY]
  // Anything but a digest names no image: the attestation is then dropped, with a line saying so.
  return subject !== undefined && isDigest(subject) ? subject : undefined
}

export type OnDuplicate = 'error' | 'first' | 'last'
export type AttestationMode =
  'keep' | 'strip' | 'strip-provenance' | 'referrers' | 'referrers-strip-provenance'

/** Attestations leave the index and are attached to their images as OCI referrers. */
export function asReferrers(mode: AttestationMode): boolean {
  return mode === 'referrers' || mode === 'referrers-strip-provenance'
}

/** Provenance statements are taken out of attestations (rewritten, or dropped when empty). */
export function stripsProvenance(mode: AttestationMode): boolean {
  return mode === 'strip-provenance' || mode === 'referrers-strip-provenance'
}

export interface SelectOptions {
  platforms?: Platform[]
  onDuplicate: OnDuplicate
  attestations: AttestationMode
}

export interface Selection {
  children: Child[]
  /** One line per decision, for the grouped log. */
  decisions: string[]
}

/**
 * Chooses the index's entries: images filtered by platform and de-duplicated, each followed by
 * its attestations; attestations whose image is not kept are dropped, never left dangling.
 */
export function selectChildren(all: Child[], opts: SelectOptions): Selection {
  const decisions: string[] = []
  const images = all.filter((c) => c.kind === 'image')
  const fromSources = new Set(
    all.filter((c) => c.kind === 'image' && !c.existing).map((c) => c.descriptor.digest)
  )
  const attestations = all.filter(
    (c) => c.kind === 'attestation' && !(c.existing && c.subject && fromSources.has(c.subject))
  )

  const filtered = images.filter((c) => {
    const p = c.descriptor.platform as Platform
    const keep = !opts.platforms || opts.platforms.some((f) => platformMatches(f, p))
    if (!keep)
      decisions.push(
        `skip ${formatPlatformFull(p)} ${c.descriptor.digest} from ${c.sourceInput}: not in platforms`
      )
    return keep
  })

  // The same digest from two sources is one image, not a conflict.
  const byDigest = new Map<string, Child>()
  for (const c of filtered) {
    const seen = byDigest.get(c.descriptor.digest)
    // append: a source that re-supplies an image the tag holds wins, with its own attestations.
    if (!seen || (seen.existing && !c.existing)) byDigest.set(c.descriptor.digest, c)
  }
  // append: a new source replaces what the tag held for the same platform.
  const newKeys = new Set(
    [...byDigest.values()]
      .filter((c) => !c.existing)
      .map((c) => platformKey(c.descriptor.platform as Platform))
  )
  const unique = [...byDigest.values()].filter((c) => {
    const key = platformKey(c.descriptor.platform as Platform)
    if (!c.existing || !newKeys.has(key)) return true
    decisions.push(
      `replace ${key} ${c.descriptor.digest} (held by ${c.sourceInput}): a source provides ${key}`
    )
    return false
  })

  const byPlatform = new Map<string, Child[]>()
  for (const c of unique) {
    const key = platformKey(c.descriptor.platform as Platform)
    byPlatform.set(key, [...(byPlatform.get(key) ?? []), c])
  }
  const kept = new Set<Child>()
  for (const [key, group] of byPlatform) {
    if (group.length === 1) {
      kept.add(group[0])
      continue
    }
    if (opts.onDuplicate === 'error') {
      throw new DuplicatePlatformError(
        `platform ${key} is provided by more than one source: ${group.map(describeSource).join(', ')}; remove one, narrow with platforms, or set on-duplicate to first or last`
      )
    }
    const winner = opts.onDuplicate === 'first' ? group[0] : group[group.length - 1]
    kept.add(winner)
    for (const c of group) {
      if (c !== winner)
        decisions.push(
          `drop ${key} ${c.descriptor.digest} from ${c.sourceInput}: duplicate platform (on-duplicate: ${opts.onDuplicate})`
        )
    }
  }

  const out: Child[] = []
  const placed = new Set<string>()
  for (const img of unique) {
    if (!kept.has(img)) continue
    out.push(img)
    for (const a of attestations) {
      if (a.subject !== img.descriptor.digest || placed.has(a.descriptor.digest)) continue
      if (opts.attestations === 'strip') {
        decisions.push(`strip ${entryName(a)} ${a.descriptor.digest} of ${img.descriptor.digest}`)
        placed.add(a.descriptor.digest)
        continue
      }
      placed.add(a.descriptor.digest)
      out.push(a)
    }
  }
  for (const a of attestations) {
    if (!placed.has(a.descriptor.digest)) {
      placed.add(a.descriptor.digest)
      decisions.push(
        `drop ${entryName(a)} ${a.descriptor.digest}: ${a.subject ? `its image ${a.subject} is not in the index` : `it names no image it belongs to, and is not an image itself (from ${a.sourceInput})`}`
      )
    }
  }
  return { children: out, decisions }
}

/** Two sources give the same platform and on-duplicate is error. */
export class DuplicatePlatformError extends UserError {}

/** `input (digest)`, without repeating a digest the input already shows. */
function describeSource(c: Child): string {
  return c.sourceInput.includes(c.descriptor.digest)
    ? c.sourceInput
    : `${c.sourceInput} (${c.descriptor.digest})`
}

/**
 * The guard against a silently skipped matrix leg: every required platform is present, and no
 * other one unless extras are allowed. Returns an error message, or undefined when satisfied.
 */
export function checkRequiredPlatforms(
  children: Child[],
  required: Platform[],
  allowExtra: boolean,
  sourceInputs: string[]
): string | undefined {
  const have = children
    .filter((c) => c.kind === 'image')
    .map((c) => c.descriptor.platform as Platform)
  const missing = required.filter((r) => !have.some((p) => platformMatches(r, p)))
  const extra = allowExtra ? [] : have.filter((p) => !required.some((r) => platformMatches(r, p)))
  if (missing.length === 0 && extra.length === 0) return undefined
  const parts: string[] = []
  if (missing.length) parts.push(`missing ${missing.map(formatPlatformFull).join(', ')}`)
  if (extra.length) {
    parts.push(
      `not listed: ${extra.map(formatPlatformFull).join(', ')} (set allow-extra-platforms: true to permit extras)`
    )
  }
  return (
    `input require-platforms: ${parts.join('; ')}. ` +
    `The merge would hold ${have.map(formatPlatformFull).join(', ') || 'no image'}, from sources: ${sourceInputs.join(', ')}`
  )
}

/** One line of the "Resolve sources" log for an entry found. */
export function describeEntry(c: Child): string {
  const p = c.descriptor.platform
  const what =
    c.kind === 'image' && p ? formatPlatformFull(p) : `${entryName(c)} for ${c.subject ?? '?'}`
  return `${c.sourceInput}: ${what} ${c.descriptor.digest} (${c.descriptor.mediaType})`
}
