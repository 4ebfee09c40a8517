// What the tags hold before anything is pushed, and what a dry run would do to them.
import type { RawManifest } from './core/manifest.js'
import type { TagResult } from './core/plan.js'
import { formatReference, type Reference } from './core/reference.js'
import type { Logger } from './logger.js'
import type { RegistryClient } from './registry/client.js'
import { RegistryError, RetriesExhaustedError } from './registry/errors.js'

/**
 * The digest each tag holds now. A tag the registry answered for but would not show (a 4xx) is
 * taken as absent, so pushed; a registry that could not be reached, or kept failing, fails the
 * run here, before anything is copied, rather than again after a second round of retries.
 */
export function currentDigests(
  client: RegistryClient,
  tags: Reference[],
  appendBase: Promise<RawManifest | undefined> | undefined,
  log: Logger
): Promise<Array<string | undefined>> {
  const all = Promise.all(
    tags.map((t, i) => {
      if (i === 0 && appendBase) return appendBase.then((m) => m?.digest).catch(() => undefined)
      return client.headManifest(t, t.tag ?? 'latest').then(
        (head) => head?.digest,
        (e: unknown) => {
          if (!answered(e)) throw e
          log.debug(
            `HEAD ${formatReference(t)} failed (${(e as Error).message}); it will be pushed`
          )
          return undefined
        }
      )
    })
  )
  // Awaited once the sources are resolved; a failure before then must not go unhandled.
  all.catch(() => undefined)
  return all
}

/** The registry answered with a refusal (4xx), as opposed to not answering or failing (5xx). */
function answered(e: unknown): boolean {
  if (!(e instanceof RegistryError) || e instanceof RetriesExhaustedError) return false
  return e.status !== undefined && e.status >= 400 && e.status < 500
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
