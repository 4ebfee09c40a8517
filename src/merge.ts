// The merge: resolve sources, choose entries, build the index, copy children, push every tag.
import {
  checkRequiredPlatforms,
  selectChildren,
  type AttestationMode,
  type Child,
  type OnDuplicate
} from './core/children.js'
import { buildIndex, type IndexFormat } from './core/index-builder.js'
import type { RawManifest } from './core/manifest.js'
import { formatPlatform, formatPlatformFull, type Platform } from './core/platform.js'
import {
  formatReference,
  repoName,
  sameRepository,
  type Reference,
  type Repository
} from './core/reference.js'
import { ensureChildren, TargetCopier } from './copy.js'
import { copyAttached, findAttached } from './referrers.js'
import type { Logger } from './logger.js'
import { stripProvenanceFrom } from './provenance.js'
import type { ManifestHead, RegistryClient } from './registry/client.js'
import { RegistryError } from './registry/errors.js'
import { ManifestStore, resolveSource, resolveSources, type SourceSpec } from './resolve.js'
import { allSettledOrThrow } from './util/limiter.js'

export interface MergeOptions {
  tags: Reference[]
  sources: SourceSpec[]
  format: IndexFormat
  attestations: AttestationMode
  platforms?: Platform[]
  onDuplicate: OnDuplicate
  /** Index-level annotations. */
  annotations: Record<string, string>
  /** Added to every image descriptor (metadata-action's manifest-descriptor: level). */
  descriptorAnnotations?: Record<string, string>
  requirePlatforms?: Platform[]
  allowExtraPlatforms?: boolean
  append?: boolean
  onConflict?: OnConflict
  copyReferrers?: boolean
  /** Epoch ms after which no tag is pushed (the step's time budget). */
  deadline?: number
  dryRun: boolean
}

export type OnConflict = 'fail' | 'skip' | 'warn'

export type TagOutcome = 'pushed' | 'unchanged' | 'dry-run' | 'skipped'

export interface MergeResult {
  index: RawManifest & { json: string }
  children: Child[]
  decisions: string[]
  /** `repo@digest` for each target repository. */
  images: string[]
  tags: Array<{ ref: string; outcome: TagOutcome; previous?: string; moved?: boolean }>
  platforms: string[]
  platformDigests: Record<string, string>
  /** For each image digest: what happened to its attestations, for the summary. */
  attestations: Record<string, string>
}

/** A failure the user can fix by changing an input; reported without "merge failed". */
export class MergeInputError extends Error {}

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
  // Not in a dry run, nor with a platforms filter that may drop what would be fetched early.
  if (!opts.dryRun && !opts.platforms) {
    store.willCopyFrom = (repo) =>
      opts.attestations === 'strip-provenance' || targets.some((t) => !sameRepository(t, repo))
  }

  // append reads what the first tag holds; its GET also tells its digest.
  const first = opts.tags[0]
  const appendBase = opts.append
    ? store.get(first, first.tag ?? 'latest').catch((e: unknown) => {
        if (e instanceof RegistryError && e.status === 404) return undefined
        throw e
      })
    : undefined
  // Ask what each tag holds now, in parallel with resolving: only needed once the index exists.
  const heads = opts.tags.map((t, i): Promise<ManifestHead | undefined> => {
    if (i === 0 && appendBase) {
      return appendBase
        .then((m) => m && { digest: m.digest, mediaType: m.mediaType, size: m.bytes.length })
        .catch(() => undefined)
    }
    return client.headManifest(t, t.tag ?? 'latest').catch((e: unknown) => {
      log.debug(`HEAD ${formatReference(t)} failed (${(e as Error).message}); it will be pushed`)
      return undefined
    })
  })

  const resolved = await log.group('Resolve sources', async () => {
    const [fromSources, existing] = await Promise.all([
      resolveSources(store, opts.sources),
      appendBase?.then(async (m) => {
        if (!m) {
          log.info(
            `append: ${formatReference(first)} does not exist yet; merging the sources alone`
          )
          return []
        }
        const spec = {
          input: `${formatReference(first)} (current)`,
          ref: { ...first, digest: m.digest }
        }
        return (await resolveSource(store, spec)).map((c) => ({ ...c, existing: true }))
      }) ?? []
    ])
    const all = [...existing, ...fromSources]
    for (const c of all) {
      const p = c.descriptor.platform
      const what =
        c.kind === 'image' && p ? formatPlatformFull(p) : `attestation for ${c.subject ?? '?'}`
      log.info(`${c.sourceInput}: ${what} ${c.descriptor.digest} (${c.descriptor.mediaType})`)
    }
    const selection = selectChildren(all, opts)
    let children = selection.children
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
        opts.sources.map((s) => s.input)
      )
      if (problem) throw new MergeInputError(problem)
    }
    if (opts.attestations === 'strip-provenance') {
      children = await stripProvenanceFrom(store, children, selection.decisions)
    }
    const extra = opts.descriptorAnnotations ?? {}
    if (Object.keys(extra).length) {
      children = children.map((c) =>
        c.kind === 'image'
          ? {
              ...c,
              descriptor: {
                ...c.descriptor,
                annotations: { ...c.descriptor.annotations, ...extra }
              }
            }
          : c
      )
    }
    for (const d of selection.decisions) log.info(d)
    const index = buildIndex(
      children.map((c) => c.descriptor),
      { format: opts.format, annotations: opts.annotations }
    )
    log.info(`index ${index.digest} (${index.mediaType}, ${children.length} entries)`)
    return { all, children, decisions: selection.decisions, index }
  })
  const { children, index } = resolved

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
    await copyAndPush(client, store, opts, targets, children, index, tagResults, log)
  }

  const images = children.filter((c) => c.kind === 'image')
  const platformDigests: Record<string, string> = {}
  for (const c of images)
    platformDigests[formatPlatformFull(c.descriptor.platform as Platform)] = c.descriptor.digest
  return {
    index,
    children,
    decisions: resolved.decisions,
    images: targets.map((t) => `${repoName(t)}@${index.digest}`),
    tags: tagResults,
    platforms: images.map((c) => formatPlatform(c.descriptor.platform as Platform)),
    platformDigests,
    attestations: describeAttestations(resolved.all, children, opts.attestations)
  }
}

async function copyAndPush(
  client: RegistryClient,
  store: ManifestStore,
  opts: MergeOptions,
  targets: Repository[],
  children: Child[],
  index: RawManifest,
  tagResults: MergeResult['tags'],
  log: Logger
): Promise<void> {
  // A repository whose tags all already point at this index holds its children too.
  const pushTargets = targets.filter((repo) =>
    opts.tags.some((t, i) => repoName(t) === repoName(repo) && tagResults[i].outcome === 'pushed')
  )
  await log.group('Copy children into target repositories', async () => {
    // Every child must be in every target before any tag moves: a failure leaves all tags as they were.
    const copiers = targets.map((t) => new TargetCopier(client, t, (d) => store.knownConfig(d)))
    const pushing = copiers.filter((c) => pushTargets.includes(c.target))
    const [attached] = await Promise.all([
      opts.copyReferrers ? findAttached(client, store, children, log) : [],
      allSettledOrThrow(pushing.map((c) => ensureChildren(c, store, children)))
    ])
    // Referrers change after the index is made (signing), so they are copied even to current tags.
    if (attached.length)
      await allSettledOrThrow(copiers.map((c) => copyAttached(client, c, attached, log)))
    for (const c of pushing) log.info(c.describe())
    if (pushTargets.length === 0) log.info('every tag is already current: nothing to copy')
  })

  if (opts.deadline !== undefined && Date.now() > opts.deadline) {
    throw new RegistryError(
      'the time budget (input timeout) ran out before the tags were pushed: no tag moved'
    )
  }
  await log.group('Push tags', async () => {
    // Tags of one repository go one after another (Quay fails concurrent PUTs of one manifest);
    // repositories run in parallel.
    const results = await Promise.allSettled(
      targets.map(async (repo) => {
        for (const [i, t] of opts.tags.entries()) {
          if (repoName(t) !== repoName(repo)) continue
          const r = tagResults[i]
          if (r.outcome === 'unchanged') {
            log.info(`${r.ref} already points at ${index.digest}: not pushed again`)
            continue
          }
          try {
            await client.putManifest(t, t.tag ?? 'latest', index)
          } catch (e) {
            const status = e instanceof RegistryError ? e.status : undefined
            const code = e instanceof RegistryError ? e.code : undefined
            // 403/409 (Artifactory, no overwrite permission), 412 (Harbor immutability),
            // 400 TAG_INVALID (ECR immutable tags).
            const conflict =
              status === 403 ||
              status === 409 ||
              status === 412 ||
              (status === 400 && code === 'TAG_INVALID')
            if (!conflict || !r.previous) throw e
            // A 403 is a conflict only if pushing as such is allowed: storing the index by digest
            // tells a tag that may not move from credentials that may not push at all.
            if (status === 403 && opts.onConflict !== 'fail')
              await client.putManifest(t, index.digest, index)
            // The tag exists with another digest and the registry refuses to move it.
            const message =
              `tag ${r.ref} holds ${r.previous} and the registry refused to overwrite it (HTTP ${status}): ` +
              `the credentials lack overwrite (delete) permission on ${repoName(repo)}, or the tag is immutable`
            if (opts.onConflict === 'skip') log.info(`skipped: ${message}`)
            else if (opts.onConflict === 'warn') log.warning(message)
            else
              throw new RegistryError(`${message} (set on-conflict: skip or warn to go on)`, status)
            r.outcome = 'skipped'
            continue
          }
          r.moved = true
          log.info(`pushed ${r.ref} -> ${index.digest}${r.previous ? ` (was ${r.previous})` : ''}`)
        }
      })
    )
    const failed = results.find((x): x is PromiseRejectedResult => x.status === 'rejected')
    if (failed) {
      await rollBack(client, opts.tags, tagResults, index.digest, log)
      throw failed.reason
    }
  })
}

/**
 * A tag PUT failed after others moved: put the moved tags back on what they held, so that a
 * failed run does not leave tags of one release on different digests. Best effort.
 */
async function rollBack(
  client: RegistryClient,
  tags: Reference[],
  results: MergeResult['tags'],
  digest: string,
  log: Logger
): Promise<void> {
  await Promise.all(
    tags.map(async (t, i) => {
      const r = results[i]
      if (r.outcome !== 'pushed' || !r.moved) return
      if (!r.previous) {
        log.warning(
          `${r.ref} did not exist before this run and now holds the new index: delete it by hand if needed`
        )
        return
      }
      try {
        // Only a tag that still holds our index is put back: another run may have moved it since.
        const now = await client.headManifest(t, t.tag ?? 'latest')
        if (now?.digest !== digest) {
          log.warning(
            `${r.ref} now holds ${now?.digest ?? 'nothing'}, not this run's index: left as it is`
          )
          return
        }
        const previous = await client.getManifest(t, r.previous)
        await client.putManifest(t, t.tag ?? 'latest', previous)
        log.warning(`${r.ref} put back on ${r.previous} because another tag could not be pushed`)
      } catch (e) {
        log.warning(`${r.ref} could not be put back on ${r.previous}: ${(e as Error).message}`)
      }
    })
  )
}

function describeAttestations(
  all: Child[],
  kept: Child[],
  mode: AttestationMode
): Record<string, string> {
  const out: Record<string, string> = {}
  for (const img of kept.filter((c) => c.kind === 'image')) {
    const d = img.descriptor.digest
    const had = all.filter((c) => c.kind === 'attestation' && c.subject === d).length
    const has = kept.filter((c) => c.kind === 'attestation' && c.subject === d).length
    out[d] =
      had === 0
        ? 'none'
        : mode === 'strip'
          ? `stripped (${had})`
          : mode === 'strip-provenance'
            ? `provenance stripped (${has} of ${had} kept)`
            : `kept (${has})`
  }
  return out
}
