// What the tags hold before anything is pushed, and what a dry run would do to them.
import type { RawManifest } from './core/manifest.js'
import type { TagResult } from './core/plan.js'
import { formatReference, type Reference } from './core/reference.js'
import type { Logger } from './logger.js'
import type { RegistryClient } from './registry/client.js'

/** The digest each tag holds now; a tag that cannot be read is taken as absent, so pushed. */
export function currentDigests(
  client: RegistryClient,
  tags: Reference[],
  appendBase: Promise<RawManifest | undefined> | undefined,
  log: Logger
): Promise<Array<string | undefined>> {
  return Promise.all(
    tags.map((t, i) => {
      if (i === 0 && appendBase) return appendBase.then((m) => m?.digest).catch(() => undefined)
      return client.headManifest(t, t.tag ?? 'latest').then(
        (head) => head?.digest,
        (e: unknown) => {
          log.debug(
            `HEAD ${formatReference(t)} failed (${(e as Error).message}); it will be pushed`
          )
          return undefined
        }
      )
    })
  )
}

export function logDryRun(tags: TagResult[], digest: string, log: Logger): void {
  for (const t of tags) {
    log.info(
      t.outcome === 'unchanged'
        ? `${t.ref} already points at ${digest}`
        : `dry-run: would push ${t.ref} (now ${t.previous ?? 'absent'})`
    )
  }
}
