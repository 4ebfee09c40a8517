// Making every child present in a target repository before the index is PUT there:
// blobs are mounted across repositories of one registry (falling back to a streamed upload)
// or streamed across registries, then child manifests are PUT by digest with their exact bytes
// (an index, as preserve-digest copies them, once its entries are there).
import { entryName, type Child } from './core/children.js'
import { blobsOf, parseManifest, type RawManifest } from './core/manifest.js'
import { isIndexType } from './core/mediatypes.js'
import { repoName, sameRepository, type Repository } from './core/reference.js'
import type { RegistryClient } from './registry/client.js'
import { detailsOf, isContentRefused, RegistryError } from './registry/errors.js'
import type { ManifestStore } from './manifest-store.js'
import { OnceMap, allSettledOrThrow } from './util/limiter.js'

export interface CopyStats {
  manifests: number
  mounted: number
  streamed: number
  present: number
  /** Blobs this run made (rewritten attestation configs). */
  uploaded: number
}

/** Copies manifests into one target repository; each blob and manifest once. */
export class TargetCopier {
  readonly stats: CopyStats = { manifests: 0, mounted: 0, streamed: 0, present: 0, uploaded: 0 }
  private readonly blobs = new OnceMap<void>()
  private readonly manifests = new OnceMap<void>()

  constructor(
    readonly client: RegistryClient,
    readonly target: Repository,
    /** Blobs this run already holds in memory (configs read while resolving). */
    private readonly known: (digest: string) => Promise<Uint8Array> | undefined = () => undefined
  ) {}

  /**
   * Puts `raw` (an image manifest from `source`, or made by this run with `newBlobs`; or an
   * index, which holds no blobs) into the target. Its manifest is PUT only once `ready`
   * settles: the copies of the manifest its `subject` names and of an index's entries, which
   * registries require to be there first.
   */
  copy(
    raw: RawManifest,
    source: Repository,
    what: string,
    newBlobs: Child['newBlobs'] = [],
    ready?: Promise<void>
  ): Promise<void> {
    return this.manifests.get(raw.digest, async () => {
      const parsed = parseManifest(raw, `${what} (${raw.digest})`)
      const blobs = parsed.kind === 'image' ? blobsOf(parsed.manifest) : []
      await allSettledOrThrow(
        blobs.map((b) =>
          // A blob shared by several manifests (a base layer) is handled once per target.
          this.blobs.get(b.digest, async () => {
            const made = newBlobs.find((n) => n.digest === b.digest)
            if (made) {
              await this.client.uploadBlob(this.target, made.digest, made.bytes)
              this.stats.uploaded++
              return
            }
            this.stats[await this.ensureBlob(source, b.digest, b.size)]++
          })
        )
      )
      await ready
      await this.client.putManifest(this.target, raw.digest, raw)
      this.stats.manifests++
    })
  }

  private async ensureBlob(
    source: Repository,
    digest: string,
    size: number
  ): Promise<'mounted' | 'streamed' | 'present'> {
    const { client, target } = this
    if (source.registry === target.registry) {
      // Mounting an already present blob also answers 201, so no HEAD is spent first.
      const r = await client.mountBlob(target, digest, source)
      if (r === 'mounted') return 'mounted'
      await client.copyBlob(source, target, digest, size, r.location)
      return 'streamed'
    }
    // A config read while resolving is uploaded from memory rather than fetched again.
    const known = this.known(digest)
    if (known)
      return (await client.uploadBlob(target, digest, await known)) ? 'streamed' : 'present'
    if (await client.blobExists(target, digest)) return 'present'
    await client.copyBlob(source, target, digest, size)
    return 'streamed'
  }

  describe(): string {
    const s = this.stats
    return `${repoName(this.target)}: ${s.manifests} manifest(s) pushed, ${s.mounted} blob(s) mounted, ${s.streamed} streamed, ${s.present} already present${s.uploaded ? `, ${s.uploaded} uploaded` : ''}`
  }
}

/**
 * Copies every child that is not already in the target (same repository) or was made by this
 * run. A manifest whose `subject` is another child is PUT after it: GitLab refuses a manifest
 * whose subject is not in the repository yet (400 MANIFEST_BLOB_UNKNOWN; moby/buildkit#7007,
 * #7012), and BuildKit 0.32+ attestations carry a subject. An index among the children (as
 * preserve-digest copies them) is PUT after its entries, which must be children too.
 */
export async function ensureChildren(
  copier: TargetCopier,
  store: ManifestStore,
  children: Child[]
): Promise<void> {
  const copies = new Map<string, Promise<void>>()
  // Every copy starts once all are registered, so each finds the copies it must wait for.
  let start = (): void => undefined
  const registered = new Promise<void>((resolve) => (start = resolve))
  for (const c of children) {
    if (c.rewritten === undefined && sameRepository(c.source, copier.target)) continue
    const digest = c.descriptor.digest
    if (copies.has(digest)) continue
    copies.set(
      digest,
      (async () => {
        await registered
        const raw = c.rewritten ?? (await store.get(c.source, digest))
        const { subject, entries } = dependencies(raw, c.sourceInput)
        if (entries.some((d) => !copies.has(d)))
          throw new Error(`${c.sourceInput}: ${digest} is an index, not an image manifest`)
        // A subject is never its own referrer, nor an index its own entry (a hash cycle).
        const waits = [subject, ...entries]
          .filter((d): d is string => d !== undefined && d !== digest)
          .map((d) => copies.get(d))
          .filter((p) => p !== undefined)
        const ready = waits.length ? Promise.all(waits).then(() => undefined) : undefined
        // Awaited by the copy unless it fails first; the failure is reported by its own copy.
        ready?.catch(() => undefined)
        try {
          await copier.copy(raw, c.source, c.sourceInput, c.newBlobs, ready)
        } catch (e) {
          // Only the refusal of this manifest's own PUT, not of a blob or of what it waited for.
          const own = e instanceof RegistryError && e.request === `PUT manifest ${digest}`
          if (!own || !isContentRefused(e)) throw e
          if (isIndexType(c.descriptor.mediaType)) throw indexAsIsRefused(e, c)
          throw c.kind === 'attestation' ? attestationRefused(e, c) : e
        }
      })()
    )
  }
  start()
  await allSettledOrThrow([...copies.values()])
}

/** What must be in the target before `raw` is PUT: the manifest its OCI `subject` names, and an index's entries. */
function dependencies(raw: RawManifest, what: string): { subject?: string; entries: string[] } {
  const parsed = parseManifest(raw, `${what} (${raw.digest})`)
  if (parsed.kind === 'image') return { subject: parsed.manifest.subject?.digest, entries: [] }
  const { subject, manifests } = parsed.index
  return { subject: subject?.digest, entries: manifests.map((d) => d.digest) }
}

/** An index pushed as it is (preserve-digest) that the registry refuses: it cannot change. */
function indexAsIsRefused(e: RegistryError, c: Child): RegistryError {
  return new RegistryError(
    `registry ${e.registry ?? '?'} refused the index ${c.descriptor.digest} (${c.descriptor.mediaType}) as it is: ${e.message}. preserve-digest pushes the index unchanged: promote without preserve-digest to let the index change (format, attestations)`,
    detailsOf(e)
  )
}

/**
 * A registry that takes images but not attestation manifests (Gitea answers 501 to OCI
 * artifacts, go-gitea/gitea#25846): say how to leave them out.
 */
function attestationRefused(e: RegistryError, c: Child): RegistryError {
  const what = entryName(c)
  return new RegistryError(
    `registry ${e.registry ?? '?'} refused the ${what} ${c.descriptor.digest}${c.subject ? ` of image ${c.subject}` : ''}: ${e.message}. If it does not take attestations, set attestations: strip`,
    detailsOf(e)
  )
}
