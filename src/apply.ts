// Applying the plans: copy the children into every target repository, then move the tags, putting
// moved tags back, of every image, if one fails.
import { indexRefusalAdvice, reposToPush, type IndexPlan, type TagResult } from './core/plan.js'
import { repoName, type Reference, type Repository } from './core/reference.js'
import type { Prepared } from './prepare.js'
import { ensureChildren, TargetCopier } from './copy.js'
import type { Logger } from './logger.js'
import type { ManifestStore } from './manifest-store.js'
import type { MergeOptions } from './merge.js'
import { copyAttached, findAttached } from './referrers.js'
import { attachMissing, registerReferrers } from './attach.js'
import type { RegistryClient } from './registry/client.js'
import {
  detailsOf,
  isDenied,
  isContentRefused,
  isForbiddenAsInvalid,
  isTagConflict,
  RegistryError
} from './registry/errors.js'
import { allSettledOrThrow } from './util/limiter.js'

/** Tag pushes and putting tags back may finish a little past the deadline, rather than leave tags split. */
const FINAL = { final: true }

export type ApplyOptions = Pick<
  MergeOptions,
  'tags' | 'onConflict' | 'copyReferrers' | 'deadline' | 'preserveDigest'
>

/** What the copies of one run share: a copier per target repository, so each blob and manifest goes once. */
export class CopierPool {
  private readonly copiers = new Map<string, TargetCopier>()
  /** The copiers of repositories that a tag will be pushed to, for the log. */
  readonly pushing = new Set<TargetCopier>()
  constructor(
    readonly client: RegistryClient,
    readonly store: ManifestStore
  ) {}

  for(target: Repository): TargetCopier {
    const key = repoName(target)
    let c = this.copiers.get(key)
    if (!c) {
      c = new TargetCopier(this.client, target, (d) => this.store.knownConfig(d))
      this.copiers.set(key, c)
    }
    return c
  }

  /** What was copied into each repository that a tag will be pushed to. */
  describe(): string[] {
    return [...this.pushing].map((c) => c.describe())
  }
}

/**
 * Makes every child of one image present in every target repository (and its referrers, as
 * asked), so that its index can be pushed: nothing a tag shows changes here.
 */
export async function copyChildren(pool: CopierPool, p: Prepared, log: Logger): Promise<void> {
  const { client, store } = pool
  const { opts, targets, plan } = p
  const pushTargets = reposToPush(targets, opts.tags, p.tags)
  const { children, attached: referrers = [] } = plan
  // Every child must be in every target before any tag moves: a failure leaves all tags as they were.
  const copiers = targets.map((t) => pool.for(t))
  // Copiers are shared by the images of a plan: a repository is told by its name.
  const pushing = copiers.filter((c) => pushTargets.some((t) => repoName(t) === repoName(c.target)))
  for (const c of pushing) pool.pushing.add(c)
  const copies = allSettledOrThrow(
    copiers.map(async (c) => {
      if (pushing.includes(c)) {
        // Attestations as referrers are pushed after their images (ensureChildren's order).
        await ensureChildren(c, store, [...children, ...referrers])
        await registerReferrers(client, c.target, referrers, log)
      } else if (referrers.length) {
        // A current tag may have been made in another mode (strip gives the same index).
        await attachMissing(client, c, store, referrers, log)
      }
    })
  )
  // Both settle before this fails: nothing goes on writing after the run has given up.
  const [copied, found] = await Promise.allSettled([
    copies,
    opts.copyReferrers ? findAttached(client, store, children, log) : []
  ])
  if (copied.status === 'rejected') throw copied.reason
  if (found.status === 'rejected') throw found.reason
  const attached = found.value
  // Referrers change after the index is made (signing), so they are copied even to current tags.
  if (attached.length)
    await allSettledOrThrow(copiers.map((c) => copyAttached(client, c, attached, log)))
  if (pushTargets.length === 0) log.info('every tag is already current: nothing to copy')
}

/**
 * Pushes the tags of every image; when one fails, no further tag is pushed and the tags that
 * moved, of every image, are put back. What each image's pushes came to, in image order.
 */
export async function pushAll(
  client: RegistryClient,
  images: Array<{ p: Prepared; log: Logger }>
): Promise<Array<PromiseSettledResult<void>>> {
  const state = { failed: false }
  const settled = await Promise.allSettled(
    images.map(({ p, log }) => pushTags(client, p, state, log))
  )
  if (settled.some((x) => x.status === 'rejected'))
    await Promise.all(images.map(({ p, log }) => rollBack(client, p, log)))
  return settled
}

async function pushTags(
  client: RegistryClient,
  p: Prepared,
  state: { failed: boolean },
  log: Logger
): Promise<void> {
  // Tags of one repository go one after another (Quay fails concurrent PUTs of one manifest);
  // repositories run in parallel.
  await allSettledOrThrow(
    p.targets.map(async (repo) => {
      for (const [i, t] of p.opts.tags.entries()) {
        if (repoName(t) !== repoName(repo)) continue
        // Once a push failed, nothing else moves: what moved is put back.
        if (state.failed) return
        try {
          await pushTag(client, p.opts, t, p.plan, p.tags[i], log)
        } catch (e) {
          state.failed = true
          throw e
        }
      }
    })
  )
}

async function pushTag(
  client: RegistryClient,
  opts: ApplyOptions,
  t: Reference,
  plan: IndexPlan,
  r: TagResult,
  log: Logger
): Promise<void> {
  const { index } = plan
  if (r.outcome === 'unchanged') {
    log.info(`${r.ref} already points at ${index.digest}: not pushed again`)
    return
  }
  try {
    await client.putManifest(t, t.tag ?? 'latest', index, FINAL)
  } catch (e) {
    if (!(e instanceof RegistryError)) throw e
    if (isContentRefused(e)) throw indexRefused(e, r, plan, !!opts.preserveDigest)
    if (!isTagConflict(e) || !r.previous) throw e
    // A 403 is a conflict only if pushing as such is allowed: storing the index by digest
    // tells a tag that may not move from credentials that may not push at all.
    if ((isDenied(e) || isForbiddenAsInvalid(e)) && opts.onConflict !== 'fail')
      await client.putManifest(t, index.digest, index, FINAL)
    handleConflict(opts, t, r, e, log)
    r.outcome = 'skipped'
    return
  }
  r.moved = true
  log.info(`pushed ${r.ref} -> ${index.digest}${r.previous ? ` (was ${r.previous})` : ''}`)
}

/** The tag exists with another digest and the registry refuses to move it: on-conflict decides. */
function handleConflict(
  opts: ApplyOptions,
  t: Reference,
  r: TagResult,
  e: RegistryError,
  log: Logger
): void {
  const message =
    `tag ${r.ref} holds ${r.previous} and the registry refused to overwrite it (HTTP ${e.status}${e.code ? ` ${e.code}` : ''}): ` +
    conflictReason(e, repoName(t))
  if (opts.onConflict === 'skip') log.info(`skipped: ${message}`)
  else if (opts.onConflict === 'warn') log.warning(message)
  else {
    throw new RegistryError(`${message} (set on-conflict: skip or warn to go on)`, detailsOf(e))
  }
}

function indexRefused(
  e: RegistryError,
  r: TagResult,
  plan: IndexPlan,
  preserved: boolean
): RegistryError {
  const { index, children } = plan
  // A promoted index cannot change to suit the registry: only a merge can.
  const advice = preserved
    ? 'preserve-digest pushes the index as it is: promote without preserve-digest to let the index change'
    : indexRefusalAdvice(index, children)
  const what = preserved ? 'promoted unchanged' : `${children.length} entries`
  return new RegistryError(
    `registry ${e.registry ?? '?'} refused the index ${index.digest} (${index.mediaType}, ${what}) for ${r.ref}: ${e.message}${advice ? `. ${advice}` : ''}`,
    detailsOf(e)
  )
}

/** Why a tag may not move, as far as the answer tells. */
function conflictReason(e: RegistryError, repo: string): string {
  // Harbor's immutability rule (goharbor/harbor src/controller/tag/controller.go) and ECR's
  // immutable repositories (moby/buildkit#3776) say so; a 403 or 409 does not tell which.
  if (e.status === 412) return `the tag is immutable (a tag immutability rule of ${repo})`
  if (e.code === 'TAG_INVALID') return `the tag is immutable (${repo} has immutable tags)`
  return `the credentials lack overwrite (delete) permission on ${repo}, or the tag is immutable`
}

/**
 * A tag PUT failed after others moved: put the moved tags back on what they held, so that a
 * failed run does not leave tags of one release on different digests. Best effort.
 */
async function rollBack(client: RegistryClient, p: Prepared, log: Logger): Promise<void> {
  const digest = p.plan.index.digest
  await Promise.all(
    p.opts.tags.map(async (t, i) => {
      const r = p.tags[i]
      if (r.outcome !== 'pushed' || !r.moved) return
      if (!r.previous) {
        log.warning(
          `${r.ref} did not exist before this run and now holds the new index: delete it by hand if needed`
        )
        return
      }
      try {
        // Only a tag that still holds our index is put back: another run may have moved it since.
        const now = await client.headManifest(t, t.tag ?? 'latest', FINAL)
        if (now?.digest !== digest) {
          log.warning(
            `${r.ref} now holds ${now?.digest ?? 'nothing'}, not this run's index: left as it is`
          )
          return
        }
        const previous = await client.getManifest(t, r.previous, FINAL)
        await client.putManifest(t, t.tag ?? 'latest', previous, FINAL)
        log.warning(`${r.ref} put back on ${r.previous} because another tag could not be pushed`)
      } catch (e) {
        log.warning(`${r.ref} could not be put back on ${r.previous}: ${(e as Error).message}`)
      }
    })
  )
}
