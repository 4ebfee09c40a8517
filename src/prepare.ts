// One image up to the point where something would be written: its sources resolved, its index
// planned, and what each tag will do. Nothing here writes to a registry.
import { attachAsReferrers } from './attach.js'
import { asReferrers, describeEntry, stripsProvenance, type Child } from './core/children.js'
import { ManifestError, parseManifest, type RawManifest } from './core/manifest.js'
import {
  describedAsFetched,
  planIndex,
  planTags,
  selectEntries,
  unmatchedAnnotations,
  type IndexPlan,
  type TagResult
} from './core/plan.js'
import {
  formatReference,
  sameRepository,
  type Reference,
  type Repository,
  uniqueRepos
} from './core/reference.js'
import type { Logger } from './logger.js'
import type { ManifestStore } from './manifest-store.js'
import type { MergeOptions, MergeResult } from './merge.js'
import { currentDigests } from './tag-state.js'
import { stripProvenanceFrom } from './provenance.js'
import { isAbsent } from './registry/errors.js'
import { resolveSource, resolveSources } from './resolve.js'
import { mergeResult } from './result.js'

/** One image ready to apply: what goes into which repositories, the index, what each tag does. */
export interface Prepared {
  opts: MergeOptions
  targets: Repository[]
  /** The children to copy (for a promotion, the index itself last) and the index. */
  plan: IndexPlan
  /** What each tag holds and will do; pushing records what it did. */
  tags: TagResult[]
  /** The outputs, read once the tags are pushed. */
  result(): MergeResult
}

/** Resolves the sources and plans the index and the tags of one merge. */
export async function prepareMerge(
  store: ManifestStore,
  opts: MergeOptions,
  log: Logger
): Promise<Prepared> {
  const targets = uniqueRepos(opts.tags)
  // append reads what the first tag holds; its GET also tells its digest.
  const appendBase = opts.append ? readTag(store, opts.tags[0]) : undefined
  // Ask what each tag holds now, in parallel with resolving: only needed once the index exists.
  const current = currentDigests(store.client, opts.tags, appendBase, log)
  const plan = await resolveAndPlan(store, opts, targets, appendBase, log)
  const tags = planTags(opts.tags, await current, plan.index.digest, opts.dryRun)
  return {
    opts,
    targets,
    plan,
    tags,
    result: () => mergeResult({ ...plan, mode: opts.attestations, targets, tags })
  }
}

/** The index plan with what it was chosen from and why, for the result. */
interface Planned extends IndexPlan {
  all: Child[]
  decisions: string[]
}

/** Whether entries from `repo` will be copied (or rewritten), so their manifests will be read. */
export function copiedFrom(
  opts: MergeOptions,
  targets: Repository[]
): (repo: Repository) => boolean {
  return (repo) =>
    !opts.dryRun &&
    (stripsProvenance(opts.attestations) ||
      asReferrers(opts.attestations) ||
      targets.some((t) => !sameRepository(t, repo)))
}

/** What a tag holds, or undefined when it does not exist (yet). */
function readTag(store: ManifestStore, tag: Reference): Promise<RawManifest | undefined> {
  return store.get(tag, tag.tag ?? 'latest').catch((e: unknown) => {
    if (isAbsent(e)) return undefined
    // What the tag holds cannot be appended to (schema 1): say which tag.
    if (e instanceof ManifestError)
      throw new ManifestError(`append: ${formatReference(tag)}: ${e.message}`, { cause: e })
    throw e
  })
}

async function resolveAndPlan(
  store: ManifestStore,
  opts: MergeOptions,
  targets: Repository[],
  appendBase: Promise<RawManifest | undefined> | undefined,
  log: Logger
): Promise<Planned> {
  const [fromSources, existing] = await Promise.all([
    resolveSources(store, opts.sources),
    appendBase ? resolveExisting(store, opts.tags[0], appendBase, log) : []
  ])
  const all = [...existing, ...fromSources]
  for (const c of all) log.info(describeEntry(c))
  // Attestations go to the referrers as they would go into the index: after their image.
  const placement = asReferrers(opts.attestations) ? 'keep' : opts.attestations
  const entries = selectEntries(
    all,
    { ...opts, attestations: placement },
    opts.sources.map((s) => s.input)
  )
  let children = entries.children
  // Stays outside the plan: it fetches each attestation to see what it holds.
  if (stripsProvenance(opts.attestations)) {
    children = await stripProvenanceFrom(store, children, entries.decisions)
  }
  const copied = copiedFrom(opts, targets)
  const fetched = await fetchedManifests(store, children, copied)
  children = describedAsFetched(children, fetched, entries.decisions)
  let attached: Child[] = []
  if (asReferrers(opts.attestations))
    ({ children, attached } = await attachAsReferrers(store, children, entries.decisions))
  const annotations = appendBase
    ? keptAnnotations(await appendBase, opts, entries.decisions)
    : opts.annotations
  entries.decisions.push(
    ...unmatchedAnnotations(children, opts.platformDescriptorAnnotations ?? [])
  )
  for (const d of entries.decisions) log.info(d)
  const { index, children: indexed } = planIndex(children, { ...opts, annotations })
  log.info(`index ${index.digest} (${index.mediaType}, ${indexed.length} entries)`)
  return { all, children: indexed, attached, decisions: entries.decisions, index }
}

/**
 * The manifests of the entries that copying will read (fetched early while resolving, so
 * usually already here) and of any other entry the run happened to fetch.
 */
async function fetchedManifests(
  store: ManifestStore,
  children: Child[],
  copied: (repo: Repository) => boolean
): Promise<Map<string, RawManifest>> {
  const out = new Map<string, RawManifest>()
  await Promise.all(
    children.map(async (c) => {
      if (c.rewritten) return // made by this run
      const digest = c.descriptor.digest
      const raw = copied(c.source) ? store.get(c.source, digest) : store.fetched(digest)
      if (raw) out.set(digest, await raw)
    })
  )
  return out
}

/**
 * append: the index annotations the tag holds are kept, and those of the annotations input
 * replace them key by key; a merge that drops them would rewrite the tag's metadata unasked.
 */
function keptAnnotations(
  held: RawManifest | undefined,
  opts: MergeOptions,
  decisions: string[]
): Record<string, string> {
  const parsed = held && parseManifest(held, `${formatReference(opts.tags[0])} (current)`)
  const old = parsed?.kind === 'index' ? (parsed.index.annotations ?? {}) : {}
  const keys = Object.keys(old).filter((k) => typeof old[k] === 'string')
  if (!keys.length) return opts.annotations
  if (opts.format === 'docker') {
    decisions.push(
      `append: drop the index annotations the tag holds (${keys.join(', ')}): format docker makes a Docker list, which cannot carry them`
    )
    return opts.annotations
  }
  const replaced = keys.filter((k) => Object.hasOwn(opts.annotations, k))
  const kept = keys.filter((k) => !Object.hasOwn(opts.annotations, k))
  if (kept.length)
    decisions.push(`append: keep the index annotations the tag holds: ${kept.join(', ')}`)
  if (replaced.length)
    decisions.push(
      `append: replace the index annotations ${replaced.join(', ')} with the annotations input`
    )
  return { ...Object.fromEntries(kept.map((k) => [k, old[k]])), ...opts.annotations }
}

/** append: the entries of what the first tag holds now, marked as existing. */
async function resolveExisting(
  store: ManifestStore,
  first: Reference,
  appendBase: Promise<RawManifest | undefined>,
  log: Logger
): Promise<Child[]> {
  const m = await appendBase
  if (!m) {
    log.info(`append: ${formatReference(first)} does not exist yet; merging the sources alone`)
    return []
  }
  const spec = { input: `${formatReference(first)} (current)`, ref: { ...first, digest: m.digest } }
  return (await resolveSource(store, spec)).map((c) => ({ ...c, existing: true }))
}
