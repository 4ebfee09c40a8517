// Resolving sources: fetch each manifest once, unwrap indexes (recursively) into image and
// attestation entries, and read a config only when an image's platform is not already known.
import {
  attestationSubject,
  mediaTypeName,
  referenceTypeOf,
  unwrapIndex,
  type Child
} from './core/children.js'
import {
  ManifestError,
  parseManifest,
  type Descriptor,
  type ImageManifest,
  type RawManifest
} from './core/manifest.js'
import { configPlatform, platformFromConfig } from './core/platform.js'
import { formatReference, repoName, type Reference } from './core/reference.js'
import type { ManifestStore } from './manifest-store.js'
import { isNotFound } from './registry/errors.js'
import { allSettledOrThrow } from './util/limiter.js'

export interface SourceSpec {
  /** The source as the user wrote it (or the digests-dir file it came from). */
  input: string
  ref: Reference
  /** For a bare digest: the repository it is looked up in came from the first tag or from source-repository. */
  lookedUpIn?: 'first tag' | 'source-repository'
}

export async function resolveSources(
  store: ManifestStore,
  sources: SourceSpec[]
): Promise<Child[]> {
  const lists = await allSettledOrThrow(
    sources.map(async (s) => {
      const found = await resolveSource(store, s)
      // A source with nothing to merge is a build that did not happen (a skipped matrix leg, an
      // oras index with `manifests: []`), not something to pass over in silence.
      if (!found.some((c) => c.kind === 'image')) throw noImage(s, found)
      return found
    })
  )
  return lists.flat()
}

function noImage(spec: SourceSpec, found: Child[]): ManifestError {
  const what = found.length
    ? `only ${found.length} entr${found.length === 1 ? 'y' : 'ies'} that ${found.length === 1 ? 'is' : 'are'} not an image (attestations or other unknown/unknown entries)`
    : 'no entries (an empty index)'
  return new ManifestError(
    `source ${spec.input}: it holds no image to merge, ${what}; pass the digests of the per-platform images, or check that the build that pushed it ran`
  )
}

export async function resolveSource(store: ManifestStore, spec: SourceSpec): Promise<Child[]> {
  const where = `source ${spec.input}`
  try {
    return await resolveOne(store, spec, where)
  } catch (e) {
    const hint =
      spec.lookedUpIn === 'first tag' && isNotFound(e)
        ? ` (a bare digest is looked up in the first tag's repository, ${repoName(spec.ref)}: set source-repository to the repository the images were pushed to)`
        : ''
    throw aboutSource(where, e, hint)
  }
}

/**
 * Names the source in a registry error ("manifest ... not found", a digest mismatch). A copy,
 * of the same class and fields: the error may be cached and shared with other sources.
 */
function aboutSource(where: string, e: unknown, hint: string): unknown {
  if (!(e instanceof Error) || (e.message.startsWith('source ') && !hint)) return e
  const proto = Object.getPrototypeOf(e) as object
  const copy = Object.create(proto, Object.getOwnPropertyDescriptors(e)) as Error
  const message = e.message.startsWith('source ') ? e.message : `${where}: ${e.message}`
  copy.message = message + hint
  return copy
}

async function resolveOne(store: ManifestStore, spec: SourceSpec, where: string): Promise<Child[]> {
  const { ref } = spec
  const reference = ref.digest ?? ref.tag ?? 'latest'
  const raw = await store.get(ref, reference)
  // A bare digest resolves against a repository: say which, unless the input already does.
  const full = formatReference(ref)
  const parsed = parseManifest(raw, full === spec.input ? where : `${where} (${full})`)
  if (parsed.kind === 'image') {
    const descriptor: Descriptor = {
      mediaType: parsed.mediaType,
      digest: raw.digest,
      size: raw.bytes.length
    }
    return [await imageChild(store, spec, descriptor, parsed.manifest, where)]
  }
  return walkIndex(store, spec, raw, where, { visited: new Set(), entries: 0 }, 1)
}

async function imageChild(
  store: ManifestStore,
  spec: SourceSpec,
  descriptor: Descriptor,
  manifest: ImageManifest,
  where: string
): Promise<Child> {
  const config = await store.config(spec.ref, manifest.config.digest)
  const platform = platformFromConfig(config, `${where} (${descriptor.digest})`)
  return {
    kind: 'image',
    descriptor: { ...descriptor, platform },
    source: spec.ref,
    sourceInput: spec.input
  }
}

const UNKNOWN_PLATFORM = { os: 'unknown', architecture: 'unknown' }

/** What one source's walk has seen: an index reached twice is walked once. */
interface Walk {
  visited: Set<string>
  entries: number
}

/** Indexes of indexes deeper than this, or more entries than this in one source, are refused. */
const MAX_DEPTH = 8
const MAX_ENTRIES = 4096

async function walkIndex(
  store: ManifestStore,
  spec: SourceSpec,
  raw: RawManifest,
  where: string,
  walk: Walk,
  depth: number
): Promise<Child[]> {
  if (walk.visited.has(raw.digest)) return []
  walk.visited.add(raw.digest)
  if (depth > MAX_DEPTH) {
    throw new ManifestError(
      `${where}: indexes nested more than ${MAX_DEPTH} deep, at ${raw.digest}`
    )
  }
  const parsed = parseManifest(raw, where)
  if (parsed.kind !== 'index')
    throw new ManifestError(`${where}: expected an index at ${raw.digest}`)
  walk.entries += parsed.index.manifests.length
  if (walk.entries > MAX_ENTRIES) {
    throw new ManifestError(`${where}: its indexes hold more than ${MAX_ENTRIES} entries`)
  }
  const entries = unwrapIndex(parsed.index, `${where} (index ${raw.digest})`)
  const lists = await allSettledOrThrow(
    entries.map(async ({ role, descriptor }): Promise<Child[]> => {
      if (role === 'image' || role === 'attestation') {
        // An entry whose type is of the other family than its index (a Docker manifest in an
        // OCI index, say) is often misdescribed (older layouts, hand-made indexes): it is read,
        // so that the merged index describes it as it is (see describedAsFetched).
        if (otherFamily(parsed.mediaType, descriptor.mediaType))
          store.get(spec.ref, descriptor.digest).catch(() => undefined)
        else store.prefetch(spec.ref, descriptor.digest)
      }
      switch (role) {
        case 'image':
          return [{ kind: 'image', descriptor, source: spec.ref, sourceInput: spec.input }]
        case 'attestation':
          return [
            {
              kind: 'attestation',
              descriptor,
              source: spec.ref,
              sourceInput: spec.input,
              subject: attestationSubject(descriptor)
            }
          ]
        case 'nested-index':
          return walkIndex(
            store,
            spec,
            await store.get(spec.ref, descriptor.digest),
            where,
            walk,
            depth + 1
          )
        case 'companion': {
          const referenceType = referenceTypeOf(descriptor)
          const subject =
            attestationSubject(descriptor) ??
            (await manifestSubject(store, spec, descriptor, where))
          return [companion(spec, descriptor, subject, referenceType)]
        }
        case 'unplatformed':
          return [await unplatformed(store, spec, descriptor, where)]
      }
    })
  )
  return lists.flat()
}

/** An entry that refers to an image (by annotation or OCI subject) without being one. */
function companion(
  spec: SourceSpec,
  descriptor: Descriptor,
  subject: string | undefined,
  referenceType: string | undefined
): Child {
  return {
    kind: 'attestation',
    // Every entry of a list or index carries a platform (Quay refuses one without:
    // moby/buildkit#1550): one that names none is unknown/unknown, as BuildKit writes it.
    descriptor: { ...descriptor, platform: descriptor.platform ?? UNKNOWN_PLATFORM },
    source: spec.ref,
    sourceInput: spec.input,
    subject,
    referenceType: referenceType ?? mediaTypeName(descriptor.artifactType) ?? 'unplatformed'
  }
}

/** The digest an entry's manifest names as its OCI `subject`, if any. */
async function manifestSubject(
  store: ManifestStore,
  spec: SourceSpec,
  descriptor: Descriptor,
  where: string
): Promise<string | undefined> {
  const p = parseManifest(
    await store.get(spec.ref, descriptor.digest),
    `${where} (${descriptor.digest})`
  )
  return p.kind === 'image' ? p.manifest.subject?.digest : undefined
}

/**
 * An entry without a platform: an image whose index left it out (read from its config), or
 * something that refers to an image (an OCI subject) or to nothing, which is no image: kept with
 * its subject, or dropped with a line that names it.
 */
async function unplatformed(
  store: ManifestStore,
  spec: SourceSpec,
  descriptor: Descriptor,
  where: string
): Promise<Child> {
  const at = `${where} (${descriptor.digest})`
  const p = parseManifest(await store.get(spec.ref, descriptor.digest), at)
  if (p.kind !== 'image')
    throw new ManifestError(`${where}: ${descriptor.digest} is not an image manifest`)
  const subject = p.manifest.subject?.digest
  const type = mediaTypeName(p.manifest.artifactType) ?? mediaTypeName(descriptor.artifactType)
  if (subject) return companion(spec, descriptor, subject, type)
  const config = await store.config(spec.ref, p.manifest.config.digest)
  const platform = configPlatform(config, at)
  if (platform && platform !== 'not json') {
    return {
      kind: 'image',
      descriptor: { ...descriptor, platform },
      source: spec.ref,
      sourceInput: spec.input
    }
  }
  return companion(spec, descriptor, undefined, type)
}

/** Whether an index and an entry's type are of different families (OCI and Docker). */
function otherFamily(indexType: string, entryType: string): boolean {
  const docker = (t: string): boolean => t.startsWith('application/vnd.docker.')
  return docker(indexType) !== docker(entryType)
}
