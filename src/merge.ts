// The merge: plan every image (resolve its sources, build its index, see what each tag holds),
// then apply: copy every child into every target repository, then move the tags. With several
// images (a release plan) nothing moves until every image is planned and copied everywhere.
import { copyChildren, CopierPool, pushAll } from './apply.js'
import type { AttestationMode, Child, OnDuplicate } from './core/children.js'
import type { IndexFormat } from './core/index-builder.js'
import type { RawManifest } from './core/manifest.js'
import type { PlatformAnnotations, TagResult } from './core/plan.js'
import type { Platform } from './core/platform.js'
import { formatReference, uniqueRepos, type Reference } from './core/reference.js'
import type { Logger } from './logger.js'
import { ManifestStore } from './manifest-store.js'
import { copiedFrom, prepareMerge } from './prepare.js'
import { preparePromotion, refuseChanges } from './promote.js'
import type { RegistryClient } from './registry/client.js'
import { RegistryError } from './registry/errors.js'
import type { SourceSpec } from './resolve.js'
import { logDryRun } from './tag-state.js'

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
  /** Added to the image descriptors of some platforms (`manifest-descriptor[linux/arm64]:`). */
  platformDescriptorAnnotations?: PlatformAnnotations[]
  requirePlatforms?: Platform[]
  allowExtraPlatforms?: boolean
  append?: boolean
  onConflict?: OnConflict
  copyReferrers?: boolean
  /** The one source index goes to every tag byte for byte; anything that would change it fails. */
  preserveDigest?: boolean
  /** Epoch ms after which no tag is pushed (the step's time budget). */
  deadline?: number
  dryRun: boolean
}

export type OnConflict = 'fail' | 'skip' | 'warn'

export type { PlatformAnnotations }

export interface MergeResult {
  index: RawManifest & { json: string }
  children: Child[]
  decisions: string[]
  /** `repo@digest` for each target repository. */
  images: string[]
  tags: TagResult[]
  platforms: string[]
  platformDigests: Record<string, string>
  /** For each image digest: what happened to its attestations, for the summary. */
  attestations: Record<string, string>
}

/** One image merged (or promoted) into its tags. */
export async function merge(
  client: RegistryClient,
  opts: MergeOptions,
  log: Logger
): Promise<MergeResult> {
  const [result] = await mergeAll(client, [opts], log)
  return result
}

/**
 * Several images, all or nothing: every image is resolved, every child copied into every target
 * repository and every index built before the first tag of any image moves; when a tag push
 * fails, the tags that moved, of every image, are put back. One client, one manifest store and
 * one copier per repository serve them all, so tokens, connections, fetches and copies are shared.
 */
export async function mergeAll(
  client: RegistryClient,
  images: MergeOptions[],
  log: Logger
): Promise<MergeResult[]> {
  const labels = images.map((o, i) => imageLabel(o, i, images.length))
  const logs = images.map((_, i) => (labels[i] ? prefixed(log, labels[i]) : log))
  checkImages(images)
  // Every repository is declared first, so that one token per registry covers them all.
  for (const o of images) {
    for (const t of uniqueRepos(o.tags)) client.declare(t, o.dryRun ? ['pull'] : ['pull', 'push'])
    for (const s of uniqueRepos(o.sources.map((s) => s.ref))) client.declare(s, ['pull'])
  }
  const store = new ManifestStore(client)
  const prefetch = images.map((o) =>
    // Not with a platforms filter, which may drop what would be fetched early.
    o.platforms ? () => false : copiedFrom(o, uniqueRepos(o.tags))
  )
  store.willCopyFrom = (repo) => prefetch.some((f) => f(repo))
  const prepared = await log.group(phase('Resolve sources', images.length), async () =>
    settle(
      await Promise.allSettled(
        images.map((o, i) =>
          (o.preserveDigest ? preparePromotion : prepareMerge)(store, o, logs[i])
        )
      ),
      labels
    )
  )
  if (images.some((o) => o.dryRun)) {
    for (const [i, p] of prepared.entries()) logDryRun(p.tags, p.plan.index.digest, logs[i])
    return prepared.map((p) => p.result())
  }
  const pool = new CopierPool(client, store)
  await log.group(phase('Copy children into target repositories', images.length), async () => {
    settle(await Promise.allSettled(prepared.map((p, i) => copyChildren(pool, p, logs[i]))), labels)
    for (const line of pool.describe()) log.info(line)
  })
  const deadline = Math.min(...images.map((o) => o.deadline ?? Infinity))
  if (Date.now() > deadline) {
    throw new RegistryError(
      'the time budget (input timeout) ran out before the tags were pushed: no tag moved'
    )
  }
  await log.group(phase('Push tags', images.length), async () =>
    settle(
      await pushAll(
        client,
        prepared.map((p, i) => ({ p, log: logs[i] }))
      ),
      labels
    )
  )
  return prepared.map((p) => p.result())
}

/**
 * What cannot be done as asked, found before any request: nothing is read or written. The
 * command line calls it early to tell such errors (exit 2) from a merge that failed.
 */
export function checkImages(images: MergeOptions[]): void {
  settle(
    images.map((o) => () => (o.preserveDigest ? refuseChanges(o) : undefined)).map(run),
    images.map((o, i) => imageLabel(o, i, images.length))
  )
}

/** How an image of a plan is named in messages: its place and its first tag. */
function imageLabel(o: MergeOptions, i: number, count: number): string | undefined {
  if (count === 1) return undefined
  return `image ${i + 1} (${formatReference(o.tags[0])})`
}

function phase(name: string, count: number): string {
  return count === 1 ? name : `${name} (${count} images)`
}

/** Each line of one image's log, named by the image. */
function prefixed(log: Logger, label: string): Logger {
  return {
    info: (m) => log.info(`${label}: ${m}`),
    warning: (m) => log.warning(`${label}: ${m}`),
    debug: (m) => log.debug(`${label}: ${m}`),
    // The run's phases are the groups; an image's own groups would interleave with the others'.
    group: (name, fn) => {
      log.info(`${label}: ${name}`)
      return fn()
    }
  }
}

function run<T>(f: () => T): PromiseSettledResult<T> {
  try {
    return { status: 'fulfilled', value: f() }
  } catch (reason) {
    return { status: 'rejected', reason }
  }
}

/**
 * The values, or the first failure (in plan order) with every failing image named in its
 * message, so that one run tells everything that must be fixed.
 */
function settle<T>(
  results: Array<PromiseSettledResult<T>>,
  labels: Array<string | undefined>
): T[] {
  const failed = results
    .map((r, i) => ({ r, label: labels[i] }))
    .filter(
      (x): x is { r: PromiseRejectedResult; label: string | undefined } => x.r.status === 'rejected'
    )
  if (!failed.length) return results.map((r) => (r as PromiseFulfilledResult<T>).value)
  const first = failed[0].r.reason as unknown
  if (!labels.some(Boolean) || !(first instanceof Error)) throw first
  // The first error keeps its class (a user error is reported as one), named by its image.
  first.message = failed
    .map(
      ({ r, label }) =>
        `${label}: ${r.reason instanceof Error ? r.reason.message : String(r.reason)}`
    )
    .join('; ')
  throw first
}
