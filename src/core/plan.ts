// The merge's plan, decided without I/O from what was resolved: which entries go into the index,
// the index itself, and what each tag will do given what it holds now.
import { UserError } from '../errors.js'
import {
  checkRequiredPlatforms,
  selectChildren,
  type Child,
  type SelectOptions
} from './children.js'
import { buildIndex, type BuildOptions } from './index-builder.js'
import type { RawManifest } from './manifest.js'
import { DOCKER_MANIFEST, isImageManifestType, isIndexType, OCI_INDEX } from './mediatypes.js'
import { formatPlatformFull, platformMatches, type Platform } from './platform.js'
import { formatReference, repoName, type Reference, type Repository } from './reference.js'

/** A failure the user can fix by changing an input; reported without "merge failed". */
export class MergeInputError extends UserError {}

export interface EntryOptions extends SelectOptions {
  requirePlatforms?: Platform[]
  allowExtraPlatforms?: boolean
}

export interface Entries {
  children: Child[]
  /** One line per decision, for the grouped log; later steps (strip-provenance) add theirs. */
  decisions: string[]
}

/**
 * Chooses the index's entries from everything resolved and checks them against the platform
 * inputs. `sourceInputs` are the sources as written, for the require-platforms message.
 */
export function selectEntries(all: Child[], opts: EntryOptions, sourceInputs: string[]): Entries {
  const { children, decisions } = selectChildren(all, opts)
  if (opts.platforms && !children.some((c) => c.kind === 'image')) {
    const found = all
      .filter((c) => c.kind === 'image')
      .map((c) => formatPlatformFull(c.descriptor.platform as Platform))
    throw new MergeInputError(
      `input platforms: ${opts.platforms.map(formatPlatformFull).join(', ')} matches none of the images found (${found.join(', ')})`
    )
  }
  if (opts.requirePlatforms) {
    const problem = checkRequiredPlatforms(
      children,
      opts.requirePlatforms,
      !!opts.allowExtraPlatforms,
      sourceInputs
    )
    if (problem) throw new MergeInputError(problem)
  }
  return { children, decisions }
}

/**
 * The entries with the size and media type of the manifests this run fetched, where the index
 * they came from said otherwise: the pushed index describes the bytes that are there.
 */
export function describedAsFetched(
  children: Child[],
  fetched: Map<string, RawManifest>,
  decisions: string[]
): Child[] {
  return children.map((c) => {
    const raw = c.rewritten ? undefined : fetched.get(c.descriptor.digest)
    if (!raw) return c
    const { size, mediaType } = c.descriptor
    // A type the registry only named in a header, and not as a manifest type, is not taken.
    const known = isIndexType(raw.mediaType) || isImageManifestType(raw.mediaType)
    const type = known ? raw.mediaType : mediaType
    if (size === raw.bytes.length && mediaType === type) return c
    decisions.push(
      `entry ${c.descriptor.digest} of ${c.sourceInput}: its index says ${mediaType}, ${size} bytes; the manifest is ${type}, ${raw.bytes.length} bytes, as the index now says`
    )
    return { ...c, descriptor: { ...c.descriptor, size: raw.bytes.length, mediaType: type } }
  })
}

/** One `manifest-descriptor[platforms]:key=value` annotation line. */
export interface PlatformAnnotations {
  platforms: Platform[]
  key: string
  value: string
}

export interface IndexOptions extends BuildOptions {
  /** Added to every image descriptor (metadata-action's manifest-descriptor: level). */
  descriptorAnnotations?: Record<string, string>
  /** Added to the image descriptors of the platforms they name, after the others. */
  platformDescriptorAnnotations?: PlatformAnnotations[]
}

export interface IndexPlan {
  /** The entries as they go into the index, descriptor annotations applied. */
  children: Child[]
  /** Manifests pushed beside the index, not in it: attestations as referrers of their images. */
  attached?: Child[]
  index: RawManifest & { json: string }
}

/** Builds the index from the chosen entries; throws FormatError when the format cannot hold them. */
export function planIndex(entries: Child[], opts: IndexOptions): IndexPlan {
  const children = withDescriptorAnnotations(
    entries,
    opts.descriptorAnnotations ?? {},
    opts.platformDescriptorAnnotations ?? []
  )
  const index = buildIndex(
    children.map((c) => c.descriptor),
    { format: opts.format, annotations: opts.annotations }
  )
  return { children, index }
}

function withDescriptorAnnotations(
  children: Child[],
  extra: Record<string, string>,
  byPlatform: PlatformAnnotations[]
): Child[] {
  if (!Object.keys(extra).length && !byPlatform.length) return children
  return children.map((c) => {
    if (c.kind !== 'image') return c
    const p = c.descriptor.platform as Platform
    const own = byPlatform.filter((a) => a.platforms.some((f) => platformMatches(f, p)))
    const annotations = {
      ...c.descriptor.annotations,
      ...extra,
      ...Object.fromEntries(own.map((a) => [a.key, a.value]))
    }
    if (!Object.keys(annotations).length) return c
    return { ...c, descriptor: { ...c.descriptor, annotations } }
  })
}

export type TagOutcome = 'pushed' | 'unchanged' | 'dry-run' | 'skipped'

export interface TagResult {
  ref: string
  /** Planned as pushed, unchanged or dry-run; a refused push turns into skipped (on-conflict). */
  outcome: TagOutcome
  /** The digest the tag held before this run. */
  previous?: string
  /** Set once the tag has been moved to the index, so a failed run knows what to put back. */
  moved?: boolean
}

/**
 * What each tag will do: a tag already on the index is left as it is, any other is pushed (or
 * would be, in a dry run). `current[i]` is the digest `tags[i]` holds now, if any.
 */
export function planTags(
  tags: Reference[],
  current: Array<string | undefined>,
  indexDigest: string,
  dryRun: boolean
): TagResult[] {
  return tags.map((t, i) => {
    const previous = current[i]
    const outcome: TagOutcome =
      previous === indexDigest ? 'unchanged' : dryRun ? 'dry-run' : 'pushed'
    return previous
      ? { ref: formatReference(t), outcome, previous }
      : { ref: formatReference(t), outcome }
  })
}

/** The target repositories with a tag to push: one whose tags are all current holds the children. */
export function reposToPush(
  targets: Repository[],
  tags: Reference[],
  results: TagResult[]
): Repository[] {
  return targets.filter((repo) =>
    tags.some((t, i) => repoName(t) === repoName(repo) && results[i].outcome === 'pushed')
  )
}

/**
 * What to try when a registry refuses the index itself (not a tag conflict): Gitea/Forgejo answer
 * 404 to some OCI index PUTs (go-gitea/gitea#24973, #31861), Nexus a bare 400 to some manifest
 * lists (estesp/manifest-tool#191), Quay refuses Docker lists it cannot validate
 * (moby/buildkit#1550). The way out depends on what the index holds.
 */
export function indexRefusalAdvice(index: RawManifest, children: Child[]): string {
  const attested = children.some((c) => c.kind === 'attestation')
  const images = children.filter((c) => c.kind === 'image')
  const dockerImages = images.every((c) => c.descriptor.mediaType === DOCKER_MANIFEST)
  const advice: string[] = []
  if (attested)
    advice.push(
      'if it refuses attestation entries (platform unknown/unknown), set attestations: strip'
    )
  if (index.mediaType === OCI_INDEX) {
    advice.push(
      dockerImages
        ? `if it does not take OCI indexes, set format: docker${attested ? ' with attestations: strip' : ''}`
        : 'if it does not take OCI indexes, build the images with Docker media types (BuildKit: oci-mediatypes=false) and set format: docker'
    )
  }
  return advice.join('; ')
}

/** A line for each `manifest-descriptor[...]` annotation that no image of the index matches. */
export function unmatchedAnnotations(
  children: Child[],
  byPlatform: PlatformAnnotations[]
): string[] {
  const images = children
    .filter((c) => c.kind === 'image')
    .map((c) => c.descriptor.platform as Platform)
  return byPlatform
    .filter((a) => !images.some((p) => a.platforms.some((f) => platformMatches(f, p))))
    .map(
      (a) =>
        `annotation manifest-descriptor[${a.platforms.map(formatPlatformFull).join(',')}]:${a.key} matches no image in the index: not applied`
    )
}
