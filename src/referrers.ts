// copy-referrers: carry what is attached to each child (OCI referrers such as signatures and
// attestations, and cosign's sha256-<hex>.sig/.att/.sbom tags) into the target repositories.
import { mediaTypeName, type Child } from './core/children.js'
import { sha256 } from './core/digest.js'
import { isImageManifestType, OCI_INDEX } from './core/mediatypes.js'
import type { Descriptor, RawManifest } from './core/manifest.js'
import { repoName, sameRepository, type Repository } from './core/reference.js'
import type { TargetCopier } from './copy.js'
import type { Logger } from './logger.js'
import { referrersTag, type RegistryClient } from './registry/client.js'
import { isAbsent, RegistryError } from './registry/errors.js'
import type { ManifestStore } from './manifest-store.js'
import { allSettledOrThrow } from './util/limiter.js'

const COSIGN_SUFFIXES = ['sig', 'att', 'sbom']

export interface Attached {
  subject: string
  source: Repository
  referrers: Array<{ descriptor: Descriptor; raw: RawManifest }>
  cosign: Array<{ tag: string; raw: RawManifest }>
}

async function getIfPresent(
  store: ManifestStore,
  repo: Repository,
  ref: string
): Promise<RawManifest | undefined> {
  try {
    return await store.get(repo, ref)
  } catch (e) {
    if (isAbsent(e)) return undefined
    throw e
  }
}

/** Finds what is attached to each child in its source repository. */
export async function findAttached(
  client: RegistryClient,
  store: ManifestStore,
  children: Child[],
  log: Logger
): Promise<Attached[]> {
  const unique = [...new Map(children.map((c) => [c.descriptor.digest, c])).values()]
  const found = await allSettledOrThrow(
    unique.map(async (c): Promise<Attached> => {
      const subject = c.descriptor.digest
      const [listed, cosign] = await Promise.all([
        client.listReferrers(c.source, subject),
        Promise.all(
          COSIGN_SUFFIXES.map(async (suffix) => {
            const tag = `${referrersTag(subject)}.${suffix}`
            const raw = await getIfPresent(store, c.source, tag)
            return raw && { tag, raw }
          })
        )
      ])
      const referrers = await Promise.all(
        listed.descriptors
          .filter((d) => {
            if (isImageManifestType(d.mediaType)) return true
            log.warning(
              `referrer ${d.digest} of ${subject} is ${mediaTypeName(d.mediaType) ?? 'of an unnamed type'}, which is not copied`
            )
            return false
          })
          .map(async (d) => ({ descriptor: d, raw: await store.get(c.source, d.digest) }))
      )
      return { subject, source: c.source, referrers, cosign: cosign.filter((x) => x !== undefined) }
    })
  )
  return found.filter((a) => a.referrers.length || a.cosign.length)
}

/** Copies attached manifests into the copier's target, keeping the fallback tag current where the registry has no referrers API. */
export async function copyAttached(
  client: RegistryClient,
  copier: TargetCopier,
  attached: Attached[],
  log: Logger
): Promise<void> {
  const target = copier.target
  await allSettledOrThrow(
    attached.map(async (a) => {
      await Promise.all(
        a.referrers.map((r) => copier.copy(r.raw, a.source, `referrer of ${a.subject}`))
      )
      if (a.referrers.length)
        await listAsReferrers(
          client,
          target,
          a.subject,
          a.referrers.map((r) => r.descriptor)
        )
      for (const c of a.cosign) {
        if (sameRepository(a.source, target)) continue
        // A signature made in the target itself (another key, a later run) is never replaced.
        const held = await client.headManifest(target, c.tag)
        if (held?.digest === c.raw.digest) continue
        if (held) {
          log.warning(
            `${repoName(target)}:${c.tag} holds ${held.digest}, not the source's ${c.raw.digest}: left as it is`
          )
          continue
        }
        await copier.copy(c.raw, a.source, `${c.tag} of ${a.subject}`)
        await client.putManifest(target, c.tag, c.raw)
      }
      log.info(
        `${repoName(target)}: ${a.referrers.length} referrer(s) and ${a.cosign.length} cosign tag(s) of ${a.subject} copied`
      )
    })
  )
}

export type Referrers = Awaited<ReturnType<RegistryClient['listReferrers']>>

/** Writes of a fallback tag that another writer keeps changing at the same time. */
const FALLBACK_ATTEMPTS = 3

/**
 * Makes `descriptors` (manifests already pushed into `target`, each with `subject`) discoverable
 * as referrers of `subject`: a registry with the referrers API lists them by itself; elsewhere
 * the OCI tag-schema fallback `sha256-<hex>` is updated, keeping what it lists and its other
 * fields, and read again after the write: another writer (a parallel run, cosign signing) may
 * have replaced it meanwhile, and is then merged with rather than overwritten.
 */
export async function listAsReferrers(
  client: RegistryClient,
  target: Repository,
  subject: string,
  descriptors: Descriptor[],
  /** What the caller already listed for `subject`, so it is not asked again. */
  known?: Referrers
): Promise<void> {
  for (let writes = 0; ; writes++) {
    const listed = (writes === 0 && known) || (await client.listReferrers(target, subject))
    const missing = descriptors.filter(
      (r) => !listed.descriptors.some((d) => d.digest === r.digest)
    )
    if (listed.via !== 'tag' || !missing.length) return
    if (writes === FALLBACK_ATTEMPTS) break
    const doc = listed.fallback
      ? (JSON.parse(Buffer.from(listed.fallback.bytes).toString('utf8')) as Record<string, unknown>)
      : { schemaVersion: 2, mediaType: OCI_INDEX }
    doc.manifests = [...listed.descriptors, ...missing]
    const bytes = Buffer.from(JSON.stringify(doc), 'utf8')
    const mediaType = listed.fallback?.mediaType ?? OCI_INDEX
    await client.putManifest(target, referrersTag(subject), {
      bytes,
      mediaType,
      digest: sha256(bytes)
    })
  }
  throw new RegistryError(
    `the referrers tag ${referrersTag(subject)} in ${repoName(target)} kept changing while this run added to it (${FALLBACK_ATTEMPTS} attempts); run again`,
    { registry: target.registry, repository: target.repository }
  )
}
