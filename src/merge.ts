// The merge: resolve the sources, plan the index and what each tag does, then apply the plan.
import { apply } from './apply.js'
import { attachAsReferrers } from './attach.js'
import {
  asReferrers,
  describeEntry,
  stripsProvenance,
  type AttestationMode,
  type Child,
  type OnDuplicate
} from './core/children.js'
import type { IndexFormat } from './core/index-builder.js'
import { ManifestError, parseManifest, type RawManifest } from './core/manifest.js'
import {
  describedAsFetched,
  planIndex,
  planTags,
  selectEntries,
  unmatchedAnnotations,
  type IndexPlan,
  type PlatformAnnotations,
  type TagResult
} from './core/plan.js'
import type { Platform } from './core/platform.js'
import {
  formatReference,
  sameRepository,
  type Reference,
  type Repository,
  uniqueRepos
} from './core/reference.js'
import type { Logger } from './logger.js'
import { ManifestStore } from './manifest-store.js'
import { currentDigests, logDryRun } from './tag-state.js'
import { promote } from './promote.js'
import { stripProvenanceFrom } from './provenance.js'
import type { RegistryClient } from './registry/client.js'
import { isAbsent } from './registry/errors.js'
import { resolveSource, resolveSources, type SourceSpec } from './resolve.js'
import { mergeResult } from './result.js'

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

/** The index plan with what it was chosen from and why, for the result. */
interface Planned extends IndexPlan {
  all: Child[]
  decisions: string[]
}

export async function merge(
  client: RegistryClient,
  opts: MergeOptions,
  log: Logger
): Promise<MergeResult> {
  if (opts.preserveDigest) return promote(client, opts, log)
  const targets = uniqueRepos(opts.tags)
  for (const t of targets) client.declare(t, opts.dryRun ? ['pull'] : ['pull', 'push'])
  for (const s of uniqueRepos(opts.sources.map((s) => s.ref))) client.declare(s, ['pull'])
  const store = createStore(client, opts, targets)
  // append reads what the first tag holds; its GET also tells its digest.
  const appendBase = opts.append ? readTag(store, opts.tags[0]) : undefined
  // Ask what each tag holds now, in parallel with resolving: only needed once the index exists.
  const current = currentDigests(client, opts.tags, appendBase, log)
  const plan = await log.group('Resolve sources', () =>
    resolveAndPlan(store, opts, targets, appendBase, log)
  )
  const tags = planTags(opts.tags, await current, plan.index.digest, opts.dryRun)
  if (opts.dryRun) logDryRun(tags, plan.index.digest, log)
  else await apply(client, store, opts, targets, plan, tags, log)
  return mergeResult({ ...plan, mode: opts.attestations, targets, tags })
}

function createStore(
  client: RegistryClient,
  opts: MergeOptions,
  targets: Repository[]
): ManifestStore {
  const store = new ManifestStore(client)
  // Not with a platforms filter, which may drop what would be fetched early.
  if (!opts.platforms) store.willCopyFrom = copiedFrom(opts, targets)
  return store
}

/** Whether entries from `repo` will be copied (or rewritten), so their manifests will be read. */
function copiedFrom(opts: MergeOptions, targets: Repository[]): (repo: Repository) => boolean {
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
