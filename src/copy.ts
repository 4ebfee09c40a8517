// Making every child present in a target repository before the index is PUT there:
// blobs are mounted across repositories of one registry (falling back to a streamed upload)
// or streamed across registries, then child manifests are PUT by digest with their exact bytes.
import type { Child } from './core/children.js'
import { blobsOf, parseManifest } from './core/manifest.js'
import { repoName, sameRepository, type Repository } from './core/reference.js'
import type { RegistryClient } from './registry/client.js'
import type { ManifestStore } from './resolve.js'
import { OnceMap, allSettledOrThrow } from './util/limiter.js'

export interface CopyStats {
  manifests: number
  mounted: number
  streamed: number
  present: number
  /** Blobs this run made (rewritten attestation configs). */
  uploaded: number
}

export async function ensureChildren(
  client: RegistryClient,
  store: ManifestStore,
  target: Repository,
  children: Child[]
): Promise<CopyStats> {
  const stats: CopyStats = { manifests: 0, mounted: 0, streamed: 0, present: 0, uploaded: 0 }
  // A blob shared by several children (a base layer) is handled once per target.
  const blobs = new OnceMap<void>()
  const seen = new Set<string>()
  const todo = children.filter((c) => {
    if (seen.has(c.descriptor.digest)) return false
    seen.add(c.descriptor.digest)
    return c.rewritten !== undefined || !sameRepository(c.source, target)
  })
  await allSettledOrThrow(
    todo.map(async (c) => {
      const raw = c.rewritten ?? (await store.get(c.source, c.descriptor.digest))
      const parsed = parseManifest(raw, `${c.sourceInput} (${raw.digest})`)
      if (parsed.kind !== 'image')
        throw new Error(`${c.sourceInput}: ${raw.digest} is not an image manifest`)
      await allSettledOrThrow(
        blobsOf(parsed.manifest).map((b) =>
          blobs.get(b.digest, async () => {
            const made = c.newBlobs?.find((n) => n.digest === b.digest)
            if (made) {
              await client.uploadBlob(target, made.digest, made.bytes)
              stats.uploaded++
              return
            }
            const how = await ensureBlob(client, c.source, target, b.digest, b.size)
            stats[how]++
          })
        )
      )
      await client.putManifest(target, raw.digest, raw)
      stats.manifests++
    })
  )
  return stats
}

async function ensureBlob(
  client: RegistryClient,
  source: Repository,
  target: Repository,
  digest: string,
  size: number
): Promise<'mounted' | 'streamed' | 'present'> {
  if (source.registry === target.registry) {
    // Mounting an already present blob also answers 201, so no HEAD is spent first.
    const r = await client.mountBlob(target, digest, source)
    if (r === 'mounted') return 'mounted'
    await client.copyBlob(source, target, digest, size, r.location)
    return 'streamed'
  }
  if (await client.blobExists(target, digest)) return 'present'
  await client.copyBlob(source, target, digest, size)
  return 'streamed'
}

export function describeStats(target: Repository, s: CopyStats): string {
  return `${repoName(target)}: ${s.manifests} manifest(s) pushed, ${s.mounted} blob(s) mounted, ${s.streamed} streamed, ${s.present} already present${s.uploaded ? `, ${s.uploaded} uploaded` : ''}`
}
