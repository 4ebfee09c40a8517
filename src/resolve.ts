// Resolving sources: fetch each manifest once, unwrap indexes (recursively) into image and
// attestation entries, and read a config only when an image's platform is not already known.
import { attestationSubject, unwrapIndex, type Child } from './core/children.js'
import {
  parseManifest,
  type Descriptor,
  type ImageManifest,
  type RawManifest
} from './core/manifest.js'
import { platformFromConfig } from './core/platform.js'
import { formatReference, repoName, type Reference, type Repository } from './core/reference.js'
import type { RegistryClient } from './registry/client.js'
import { OnceMap, allSettledOrThrow } from './util/limiter.js'

export interface SourceSpec {
  /** The source as the user wrote it (or the digests-dir file it came from). */
  input: string
  ref: Reference
}

/** Caches manifests for the run: the same manifest is never fetched twice. */
export class ManifestStore {
  private readonly manifests = new OnceMap<RawManifest>()
  private readonly configs = new OnceMap<Uint8Array>()

  /** Whether children found in an index from `repo` will be copied, so are worth fetching early. */
  willCopyFrom: (repo: Repository) => boolean = () => false

  constructor(readonly client: RegistryClient) {}

  /**
   * Starts fetching a child manifest that copying will need, while the other sources are still
   * resolving: this takes a round trip off the critical path. Errors surface when it is awaited.
   */
  prefetch(repo: Repository, digest: string): void {
    if (this.willCopyFrom(repo)) this.get(repo, digest).catch(() => undefined)
  }

  get(repo: Repository, reference: string): Promise<RawManifest> {
    // Content-addressed: a digest names the same bytes in any repository we may read it from.
    if (reference.includes(':')) {
      return this.manifests.get(reference, () => this.client.getManifest(repo, reference))
    }
    return this.manifests.get(`${repoName(repo)}:${reference}`, async () => {
      const m = await this.client.getManifest(repo, reference)
      this.manifests.seed(m.digest, m)
      return m
    })
  }

  /** A config already fetched (or being fetched) while resolving, for copies to reuse. */
  knownConfig(digest: string): Promise<Uint8Array> | undefined {
    return this.configs.peek(digest)
  }

  config(repo: Repository, digest: string): Promise<Uint8Array> {
    return this.configs.get(digest, () => this.client.getBlob(repo, digest))
  }
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
    throw aboutSource(where, e)
  }
}

/**
 * Names the source in a registry error ("manifest ... not found", a digest mismatch). A copy,
 * of the same class and fields: the error may be cached and shared with other sources.
 */
function aboutSource(where: string, e: unknown): unknown {
  if (!(e instanceof Error) || e.message.startsWith('source ')) return e
  const proto = Object.getPrototypeOf(e) as object
  const copy = Object.create(proto, Object.getOwnPropertyDescriptors(e)) as Error
  copy.message = `${where}: ${e.message}`
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
  return walkIndex(store, spec, raw, where)
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

async function walkIndex(
  store: ManifestStore,
  spec: SourceSpec,
  raw: RawManifest,
  where: string
): Promise<Child[]> {
  const parsed = parseManifest(raw, where)
  if (parsed.kind !== 'index') throw new Error(`${where}: expected an index at ${raw.digest}`)
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
          return walkIndex(store, spec, await store.get(spec.ref, descriptor.digest), where)
        case 'unplatformed': {
          const child = await store.get(spec.ref, descriptor.digest)
          const p = parseManifest(child, `${where} (${descriptor.digest})`)
          if (p.kind !== 'image')
            throw new Error(`${where}: ${descriptor.digest} is not an image manifest`)
          return [await imageChild(store, spec, descriptor, p.manifest, where)]
        }
      }
    })
  )
  return lists.flat()
}
