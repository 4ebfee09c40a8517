// preserve-digest: one source index promoted to every tag byte for byte, children and all.
// Resolving reuses the merge's walk, copying and pushing are the merge's; only the index is not built.
import { checkRequiredPlatforms, describeEntry, type Child } from './core/children.js'
import { parseManifest, type RawManifest } from './core/manifest.js'
import { DOCKER_LIST, isIndexType, OCI_INDEX } from './core/mediatypes.js'
import { MergeInputError, planTags } from './core/plan.js'
import { formatPlatformFull } from './core/platform.js'
import { formatReference, uniqueRepos } from './core/reference.js'
import type { Logger } from './logger.js'
import type { ManifestStore } from './manifest-store.js'
import { currentDigests } from './tag-state.js'
import type { MergeOptions } from './merge.js'
import type { Prepared } from './prepare.js'
import { resolveSources, type SourceSpec } from './resolve.js'
import { mergeResult } from './result.js'

/** What is promoted: the source index as fetched, its entries, and the indexes nested in it. */
interface Promoted {
  index: RawManifest
  /** Images and attestations (every leaf of the tree), as the merge resolves them. */
  children: Child[]
  /** Indexes nested in it, each after the indexes nested in it in turn. */
  nested: Child[]
}

/** Resolves the one source index of a promotion and plans its tags; copies it whole, itself last. */
export async function preparePromotion(
  store: ManifestStore,
  opts: MergeOptions,
  log: Logger
): Promise<Prepared> {
  const spec = opts.sources[0]
  const targets = uniqueRepos(opts.tags)
  const current = currentDigests(store.client, opts.tags, undefined, log)
  const { index, children, nested } = await resolveIndex(store, opts, spec, log)
  const json = Buffer.from(index.bytes).toString('utf8')
  const tags = planTags(opts.tags, await current, index.digest, opts.dryRun)
  // The index itself goes last, by digest, after its entries: what is attached to it (a
  // signature on its digest) is then copied with copy-referrers, and has its subject there.
  const self: Child = {
    kind: 'image',
    descriptor: { mediaType: index.mediaType, digest: index.digest, size: index.bytes.length },
    source: spec.ref,
    sourceInput: spec.input
  }
  return {
    opts,
    targets,
    plan: { children: [...children, ...nested, self], index: { ...index, json } },
    tags,
    result: () =>
      mergeResult({
        index: { ...index, json },
        children,
        all: children,
        decisions: [`preserve-digest: ${index.digest} promoted unchanged`],
        mode: 'keep',
        targets,
        tags
      })
  }
}

/** Every input that would change the index fails, naming it; none is read from a registry. */
export function refuseChanges(opts: MergeOptions): void {
  const { sources } = opts
  if (sources.length !== 1) {
    throw new MergeInputError(
      `input preserve-digest: the sources must be exactly one index to promote, but ${sources.length} are given (sources: ${sources.map((s) => s.input).join(', ')}); without preserve-digest they are merged into a new index`
    )
  }
  const problems: string[] = []
  if (opts.platforms)
    problems.push(
      `input platforms (${opts.platforms.map(formatPlatformFull).join(', ')}) would leave entries out`
    )
  if (opts.attestations !== 'keep')
    problems.push(
      `input attestations: ${opts.attestations} would take out or rewrite its attestation manifests`
    )
  const index = Object.keys(opts.annotations)
  const descriptor = Object.keys(opts.descriptorAnnotations ?? {})
  const byPlatform = (opts.platformDescriptorAnnotations ?? []).map(
    (a) => `manifest-descriptor[${a.platforms.map(formatPlatformFull).join(',')}]:${a.key}`
  )
  if (index.length)
    problems.push(
      `input annotations (or github-annotations) would set the index annotation(s) ${index.join(', ')}`
    )
  if (descriptor.length || byPlatform.length)
    problems.push(
      `input annotations would set the descriptor annotation(s) ${[...descriptor.map((k) => `manifest-descriptor:${k}`), ...byPlatform].join(', ')}`
    )
  if (opts.append)
    problems.push(`input append would merge it with what ${formatReference(opts.tags[0])} holds`)
  if (problems.length)
    throw new MergeInputError(
      `input preserve-digest: the index of ${sources[0].input} is promoted unchanged, but ${problems.join('; ')}. Remove ${problems.length > 1 ? 'these inputs' : 'that input'}, or drop preserve-digest to merge into a new index`
    )
}

async function resolveIndex(
  store: ManifestStore,
  opts: MergeOptions,
  spec: SourceSpec,
  log: Logger
): Promise<Promoted> {
  // The merge's walk: the same checks (depth, size, build caches) and the same entries.
  const children = await resolveSources(store, [spec])
  const index = await store.get(spec.ref, spec.ref.digest ?? spec.ref.tag ?? 'latest')
  const { mediaType } = parseManifest(index, `source ${spec.input}`)
  if (!isIndexType(mediaType)) {
    throw new MergeInputError(
      `input preserve-digest: source ${spec.input} is an image manifest (${mediaType}), not an index; preserve-digest promotes an index as it is (leave it out to make an index of the image)`
    )
  }
  const wanted = opts.format === 'oci' ? OCI_INDEX : opts.format === 'docker' ? DOCKER_LIST : ''
  if (wanted && wanted !== mediaType) {
    throw new MergeInputError(
      `input preserve-digest: source ${spec.input} is ${mediaType}, but input format: ${opts.format} asks for ${wanted}, which would be another digest; set format: auto`
    )
  }
  for (const c of children) log.info(describeEntry(c))
  const images = children.filter((c) => c.kind === 'image')
  if (opts.requirePlatforms) {
    const problem = checkRequiredPlatforms(
      images,
      opts.requirePlatforms,
      !!opts.allowExtraPlatforms,
      [spec.input]
    )
    if (problem) throw new MergeInputError(problem)
  }
  const nested = await nestedIndexes(store, spec, index, new Set([index.digest]))
  log.info(
    `index ${index.digest} (${mediaType}, ${children.length} entries${nested.length ? ` in ${nested.length + 1} indexes` : ''}) promoted unchanged (preserve-digest): every tag gets its bytes as they are`
  )
  // The type parsed from the document, not a header the registry chose: it is an output and
  // the Content-Type of every PUT.
  return { index: { ...index, mediaType }, children, nested }
}

/** The indexes nested in `raw` (already fetched by the walk), innermost first. */
async function nestedIndexes(
  store: ManifestStore,
  spec: SourceSpec,
  raw: RawManifest,
  seen: Set<string>
): Promise<Child[]> {
  const parsed = parseManifest(raw, `source ${spec.input} (index ${raw.digest})`)
  if (parsed.kind !== 'index') return []
  const out: Child[] = []
  for (const descriptor of parsed.index.manifests) {
    if (!isIndexType(descriptor.mediaType) || seen.has(descriptor.digest)) continue
    seen.add(descriptor.digest)
    const inner = await store.get(spec.ref, descriptor.digest)
    out.push(...(await nestedIndexes(store, spec, inner, seen)))
    out.push({ kind: 'image', descriptor, source: spec.ref, sourceInput: spec.input })
  }
  return out
}
