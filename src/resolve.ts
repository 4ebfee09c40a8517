// Resolving sources: fetch each manifest once, unwrap indexes (recursively) into image and
// attestation entries, and read a config only when an image's platform is not already known.
import { attestationSubject, unwrapIndex, type Child } from './core/children.js'
import {
  ManifestError,
  parseManifest,
  type Descriptor,
  type ImageManifest,
  type RawManifest
} from './core/manifest.js'
import { platformFromConfig } from './core/platform.js'
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
  const lists = await allSettledOrThrow(sources.map((s) => resolveSource(store, s)))
  return lists.flat()
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
      if (role === 'image' || role === 'attestation') store.prefetch(spec.ref, descriptor.digest)
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
        case 'unplatformed': {
          const child = await store.get(spec.ref, descriptor.digest)
          const p = parseManifest(child, `${where} (${descriptor.digest})`)
          if (p.kind !== 'image')
            throw new ManifestError(`${where}: ${descriptor.digest} is not an image manifest`)
          return [await imageChild(store, spec, descriptor, p.manifest, where)]
        }
      }
    })
  )
  return lists.flat()
}
