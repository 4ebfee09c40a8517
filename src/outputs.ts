// What a run tells its caller, the same for the action and the command line: the outputs of
// each image, a one-line account of it, and how a failure is worded.
import { UserError } from './errors.js'
import type { MergeResult } from './merge.js'

/** The outputs of one image (action.yml; a unit test keeps the two in step). */
export const OUTPUT_NAMES = [
  'digest',
  'images',
  'tags',
  'manifest',
  'media-type',
  'platforms',
  'platform-digests'
] as const

export type Outputs = Record<(typeof OUTPUT_NAMES)[number], string>

export function outputsOf(r: MergeResult, dryRun: boolean): Outputs {
  // `tags` lists the tags that hold the index now (or would, in a dry run).
  const written = r.tags.filter(
    (t) => t.outcome !== 'skipped' && (dryRun || t.outcome !== 'dry-run')
  )
  return {
    digest: r.index.digest,
    images: r.images.join('\n'),
    tags: written.map((t) => t.ref).join('\n'),
    manifest: r.index.json,
    'media-type': r.index.mediaType,
    platforms: r.platforms.join(','),
    'platform-digests': JSON.stringify(r.platformDigests)
  }
}

/** One line: the index, its platforms, and what happened to each tag. */
export function describeResult(r: MergeResult, dryRun: boolean): string {
  const by = (o: string): string[] => r.tags.filter((t) => t.outcome === o).map((t) => t.ref)
  const written = by(dryRun ? 'dry-run' : 'pushed')
  const parts = [`${r.index.digest} (${r.platforms.join(', ')})`]
  if (written.length)
    parts.push(`${dryRun ? 'would be pushed' : 'pushed'} to ${written.join(', ')}`)
  if (by('unchanged').length) parts.push(`already current: ${by('unchanged').join(', ')}`)
  if (by('skipped').length) parts.push(`not overwritten (on-conflict): ${by('skipped').join(', ')}`)
  return (dryRun ? 'Dry run: ' : '') + parts.join('; ')
}

/** What the user reads when the run fails: their own mistakes as they are, the rest marked. */
export function failureMessage(e: unknown): string {
  const message = e instanceof Error ? e.message : String(e)
  return e instanceof UserError ? message : `merge failed: ${message}`
}
