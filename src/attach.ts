// attestations: referrers. Each attestation leaves the index and is rewritten as an OCI referrer
// of its image (its subject), pushed by digest beside the index and listed as a referrer.
import {
  asReferrerManifest,
  ATTESTATION_ARTIFACT_TYPE,
  EMPTY_CONFIG,
  EMPTY_CONFIG_BYTES
} from './core/attestations.js'
import type { Child } from './core/children.js'
import { ManifestError, parseManifest } from './core/manifest.js'
import { OCI_MANIFEST } from './core/mediatypes.js'
import { ensureChildren, type TargetCopier } from './copy.js'
import { repoName, type Repository } from './core/reference.js'
import type { Logger } from './logger.js'
import type { ManifestStore } from './manifest-store.js'
import { listAsReferrers, type Referrers } from './referrers.js'
import type { RegistryClient } from './registry/client.js'
import { allSettledOrThrow } from './util/limiter.js'

export interface Attachments {
  /** What stays in the index: images, and entries that are not attestations. */
  children: Child[]
  /** The attestations in referrer form, each with its subject image's digest in `subject`. */
  attached: Child[]
}

/** Splits the attestations out of `children` and rewrites each as a referrer of its image. */
export async function attachAsReferrers(
  store: ManifestStore,
  children: Child[],
  decisions: string[]
): Promise<Attachments> {
  const isAttestation = (c: Child): boolean => c.kind === 'attestation' && !c.referenceType
  const images = new Map(
    children.filter((c) => c.kind === 'image').map((c) => [c.descriptor.digest, c])
  )
  const attached = await allSettledOrThrow(
    children.filter(isAttestation).map(async (c): Promise<Child> => {
      // Placed after its image by selectChildren, so its image is in the index.
      const image = images.get(c.subject ?? '')
      const raw = c.rewritten ?? (await store.get(c.source, c.descriptor.digest))
      const where = `attestation ${c.descriptor.digest} of ${c.sourceInput}`
      const parsed = parseManifest(raw, where)
      if (!image || parsed.kind !== 'image')
        throw new ManifestError(`${where}: not an attestation manifest of an image in the index`)
      const m = asReferrerManifest(parsed.manifest, image.descriptor)
      decisions.push(
        `attach attestation ${c.descriptor.digest} to ${image.descriptor.digest} as the referrer ${m.digest}`
      )
      return {
        ...c,
        descriptor: {
          mediaType: OCI_MANIFEST,
          digest: m.digest,
          size: m.bytes.length,
          artifactType: ATTESTATION_ARTIFACT_TYPE,
          ...(parsed.manifest.annotations ? { annotations: parsed.manifest.annotations } : {})
        },
        rewritten: m,
        newBlobs: [{ digest: EMPTY_CONFIG.digest, bytes: EMPTY_CONFIG_BYTES }]
      }
    })
  )
  return { children: children.filter((c) => !isAttestation(c)), attached }
}

/** In a target whose tags are current: pushes and lists the referrers it does not list yet. */
export async function attachMissing(
  client: RegistryClient,
  copier: TargetCopier,
  store: ManifestStore,
  referrers: Child[],
  log: Logger
): Promise<void> {
  const subjects = [...new Set(referrers.map((r) => r.subject ?? ''))]
  const listed = new Map(
    await allSettledOrThrow(
      subjects.map(async (s) => [s, await client.listReferrers(copier.target, s)] as const)
    )
  )
  const known = new Set([...listed.values()].flatMap((l) => l.descriptors.map((d) => d.digest)))
  const missing = referrers.filter((r) => !known.has(r.descriptor.digest))
  if (!missing.length) return
  await ensureChildren(copier, store, missing)
  await registerReferrers(client, copier.target, missing, log, listed)
}

/** Lists each attestation pushed as a referrer under its image, where the registry needs that. */
export async function registerReferrers(
  client: RegistryClient,
  target: Repository,
  referrers: Child[],
  log: Logger,
  /** Listings already made, by subject: the first look is not repeated. */
  listed = new Map<string, Referrers>()
): Promise<void> {
  const bySubject = new Map<string, Child[]>()
  for (const r of referrers)
    bySubject.set(r.subject ?? '', [...(bySubject.get(r.subject ?? '') ?? []), r])
  await allSettledOrThrow(
    [...bySubject].map(async ([subject, list]) => {
      await listAsReferrers(
        client,
        target,
        subject,
        list.map((r) => r.descriptor),
        listed.get(subject)
      )
      log.info(
        `${repoName(target)}: ${list.length} attestation(s) attached to ${subject} as referrers`
      )
    })
  )
}
