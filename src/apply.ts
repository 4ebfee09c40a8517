// Applying the plan: copy the children into every target repository, then move the tags, putting
// moved tags back if another one fails.
import { indexRefusalAdvice, reposToPush, type IndexPlan, type TagResult } from './core/plan.js'
import { repoName, type Reference, type Repository } from './core/reference.js'
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

/** Copies, then pushes; `results` (from planTags) record what each tag push did. */
export async function apply(
  client: RegistryClient,
  store: ManifestStore,
  opts: ApplyOptions,
  targets: Repository[],
  plan: IndexPlan,
  results: TagResult[],
  log: Logger
): Promise<void> {
  const pushTargets = reposToPush(targets, opts.tags, results)
  await log.group('Copy children into target repositories', () =>
    copyChildren(client, store, opts, targets, pushTargets, plan, log)
  )
  if (opts.deadline !== undefined && Date.now() > opts.deadline) {
    throw new RegistryError(
      'the time budget (input timeout) ran out before the tags were pushed: no tag moved'
    )
  }
  await log.group('Push tags', () => pushTags(client, opts, targets, plan, results, log))
}

async function copyChildren(
  client: RegistryClient,
  store: ManifestStore,
  opts: ApplyOptions,
  targets: Repository[],
  pushTargets: Repository[],
  plan: IndexPlan,
  log: Logger
): Promise<void> {
  const { children, attached: referrers = [] } = plan
  // Every child must be in every target before any tag moves: a failure leaves all tags as they were.
  const copiers = targets.map((t) => new TargetCopier(client, t, (d) => store.knownConfig(d)))
  const pushing = copiers.filter((c) => pushTargets.includes(c.target))
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
  for (const c of pushing) log.info(c.describe())
  if (pushTargets.length === 0) log.info('every tag is already current: nothing to copy')
}

async function pushTags(
  client: RegistryClient,
  opts: ApplyOptions,
  targets: Repository[],
  plan: IndexPlan,
  results: TagResult[],
  log: Logger
): Promise<void> {
  const { index } = plan
  // Tags of one repository go one after another (Quay fails concurrent PUTs of one manifest);
  // repositories run in parallel.
  const settled = await Promise.allSettled(
    targets.map(async (repo) => {
      for (const [i, t] of opts.tags.entries()) {
        if (repoName(t) === repoName(repo)) await pushTag(client, opts, t, plan, results[i], log)
      }
    })
  )
  const failed = settled.find((x): x is PromiseRejectedResult => x.status === 'rejected')
  if (failed) {
    await rollBack(client, opts.tags, results, index.digest, log)
    throw failed.reason
  }
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
async function rollBack(
  client: RegistryClient,
  tags: Reference[],
  results: TagResult[],
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
