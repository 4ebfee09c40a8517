// attestations: referrers. Each attestation leaves the index and is rewritten as an OCI referrer
// of its image (its subject), to be pushed by digest beside the index and listed as a referrer.
import {
  asReferrerManifest,
  ATTESTATION_ARTIFACT_TYPE,
  EMPTY_CONFIG,
  EMPTY_CONFIG_BYTES
} from './core/attestations.js'
import type { Child } from './core/children.js'
import { ManifestError, parseManifest } from './core/manifest.js'
import { OCI_MANIFEST } from './core/mediatypes.js'
import type { ManifestStore } from './manifest-store.js'
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
