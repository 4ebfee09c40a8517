// The merge's result, as the outputs and the summary read it, for a merge and a promotion alike.
import type { AttestationMode, Child } from './core/children.js'
import type { RawManifest } from './core/manifest.js'
import type { TagResult } from './core/plan.js'
import { formatPlatformFull, platformNames, type Platform } from './core/platform.js'
import { repoName, type Repository } from './core/reference.js'
import type { MergeResult } from './merge.js'

export interface ResultParts {
  index: RawManifest & { json: string }
  /** The index's entries. */
  children: Child[]
  /** Attestations pushed beside the index, as referrers. */
  attached?: Child[]
  /** Everything the sources held, before any was chosen or dropped. */
  all: Child[]
  decisions: string[]
  mode: AttestationMode
  targets: Repository[]
  tags: TagResult[]
}

export function mergeResult(r: ResultParts): MergeResult {
  const { index, children } = r
  const images = children.filter((c) => c.kind === 'image')
  const platforms = images.map((c) => c.descriptor.platform as Platform)
  return {
    index,
    children,
    decisions: r.decisions,
    images: r.targets.map((t) => `${repoName(t)}@${index.digest}`),
    tags: r.tags,
    platforms: platformNames(platforms),
    platformDigests: Object.fromEntries(
      images.map((c, i) => [formatPlatformFull(platforms[i]), c.descriptor.digest])
    ),
    attestations: describeAttestations(r.all, [...children, ...(r.attached ?? [])], r.mode)
  }
}

/** For each image digest: what happened to its attestations, for the summary. */
function describeAttestations(
  all: Child[],
  kept: Child[],
  mode: AttestationMode
): Record<string, string> {
  const out: Record<string, string> = {}
  for (const img of kept.filter((c) => c.kind === 'image')) {
    const d = img.descriptor.digest
    const attests = (c: Child): boolean =>
      c.kind === 'attestation' && !c.referenceType && c.subject === d
    const had = all.filter(attests).length
    const has = kept.filter(attests).length
    out[d] =
      had === 0
        ? 'none'
        : mode === 'strip'
          ? `stripped (${had})`
          : mode === 'strip-provenance'
            ? `provenance stripped (${has} of ${had} kept)`
            : mode === 'referrers'
              ? `attached as referrers (${has})`
              : mode === 'referrers-strip-provenance'
                ? `provenance stripped, attached as referrers (${has} of ${had})`
                : `kept (${has})`
  }
  return out
}
