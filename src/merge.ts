// The merge: resolve sources, choose entries, build the index, copy children, push every tag.
import {
  selectChildren,
  type AttestationMode,
  type Child,
  type OnDuplicate
} from './core/children.js'
import { buildIndex, type IndexFormat } from './core/index-builder.js'
import type { RawManifest } from './core/manifest.js'
import { formatPlatform, formatPlatformFull, type Platform } from './core/platform.js'
import { formatReference, repoName, type Reference, type Repository } from './core/reference.js'
import { describeStats, ensureChildren } from './copy.js'
import type { Logger } from './logger.js'
import type { ManifestHead, RegistryClient } from './registry/client.js'
import { ManifestStore, resolveSources, type SourceSpec } from './resolve.js'
import { allSettledOrThrow } from './util/limiter.js'

export interface MergeOptions {
  tags: Reference[]
  sources: SourceSpec[]
  format: IndexFormat
  attestations: AttestationMode
  platforms?: Platform[]
  onDuplicate: OnDuplicate
  annotations: Record<string, string>
  dryRun: boolean
}

export type TagOutcome = 'pushed' | 'unchanged' | 'dry-run'

export interface MergeResult {
  index: RawManifest & { json: string }
  children: Child[]
  decisions: string[]
  /** `repo@digest` for each target repository. */
  images: string[]
  tags: Array<{ ref: string; outcome: TagOutcome; previous?: string }>
  platforms: string[]
  platformDigests: Record<string, string>
}

function uniqueRepos(refs: Repository[]): Repository[] {
  const map = new Map<string, Repository>()
  for (const r of refs) map.set(repoName(r), { registry: r.registry, repository: r.repository })
  return [...map.values()]
}

export async function merge(
  client: RegistryClient,
  opts: MergeOptions,
  log: Logger
): Promise<MergeResult> {
  const targets = uniqueRepos(opts.tags)
  for (const t of targets) client.declare(t, opts.dryRun ? ['pull'] : ['pull', 'push'])
  for (const s of uniqueRepos(opts.sources.map((s) => s.ref))) client.declare(s, ['pull'])
  const store = new ManifestStore(client)

  // Ask what each tag holds now, in parallel with resolving: only needed once the index exists.
  const heads = opts.tags.map((t) =>
    client.headManifest(t, t.tag ?? 'latest').then(
      (h): ManifestHead | undefined => h,
      (e: unknown) => {
        log.debug(`HEAD ${formatReference(t)} failed (${(e as Error).message}); it will be pushed`)
        return undefined
      }
    )
  )

  const { children, decisions, index } = await log.group('Resolve sources', async () => {
    const all = await resolveSources(store, opts.sources)
    for (const c of all) {
      const p = c.descriptor.platform
      const what =
        c.kind === 'image' && p ? formatPlatformFull(p) : `attestation for ${c.subject ?? '?'}`
      log.info(`${c.sourceInput}: ${what} ${c.descriptor.digest} (${c.descriptor.mediaType})`)
    }
    const selection = selectChildren(all, opts)
    for (const d of selection.decisions) log.info(d)
    const built = buildIndex(
      selection.children.map((c) => c.descriptor),
      { format: opts.format, annotations: opts.annotations }
    )
    log.info(`index ${built.digest} (${built.mediaType}, ${selection.children.length} entries)`)
    return { ...selection, index: built }
  })

  const current = await Promise.all(heads)
  const tagResults: MergeResult['tags'] = opts.tags.map((t, i) => {
    const previous = current[i]?.digest
    const outcome: TagOutcome =
      previous === index.digest ? 'unchanged' : opts.dryRun ? 'dry-run' : 'pushed'
    return previous
      ? { ref: formatReference(t), outcome, previous }
      : { ref: formatReference(t), outcome }
  })

  if (opts.dryRun) {
    for (const t of tagResults) {
      log.info(
        t.outcome === 'unchanged'
          ? `${t.ref} already points at ${index.digest}`
          : `dry-run: would push ${t.ref} (now ${t.previous ?? 'absent'})`
      )
    }
  } else {
    // A repository whose tags all already point at this index holds its children too.
    const needsPush = (repo: Repository): boolean =>
      opts.tags.some((t, i) => repoName(t) === repoName(repo) && tagResults[i].outcome === 'pushed')
    const pushTargets = targets.filter(needsPush)

    await log.group('Copy children into target repositories', async () => {
      // Every child must be in every target before any tag moves: a failure leaves all tags as they were.
      const stats = await allSettledOrThrow(
        pushTargets.map((t) => ensureChildren(client, store, t, children))
      )
      pushTargets.forEach((t, i) => log.info(describeStats(t, stats[i])))
      if (pushTargets.length === 0) log.info('every tag is already current: nothing to copy')
    })

    await log.group('Push tags', async () => {
      // Tags of one repository go one after another (Quay fails concurrent PUTs of one manifest);
      // repositories run in parallel.
      await allSettledOrThrow(
        targets.map(async (repo) => {
          for (const [i, t] of opts.tags.entries()) {
            if (repoName(t) !== repoName(repo)) continue
            const r = tagResults[i]
            if (r.outcome === 'unchanged') {
              log.info(`${r.ref} already points at ${index.digest}: not pushed again`)
              continue
            }
            await client.putManifest(t, t.tag ?? 'latest', index)
            log.info(
              `pushed ${r.ref} -> ${index.digest}${r.previous ? ` (was ${r.previous})` : ''}`
            )
          }
        })
      )
    })
  }

  const images = children.filter((c) => c.kind === 'image')
  const platformDigests: Record<string, string> = {}
  for (const c of images)
    platformDigests[formatPlatformFull(c.descriptor.platform as Platform)] = c.descriptor.digest
  return {
    index,
    children,
    decisions,
    images: targets.map((t) => `${repoName(t)}@${index.digest}`),
    tags: tagResults,
    platforms: images.map((c) => formatPlatform(c.descriptor.platform as Platform)),
    platformDigests
  }
}
