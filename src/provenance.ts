// attestations: strip-provenance, applied to the attestations that made it into the index.
import { isProvenance, PREDICATE_TYPE_KEY, stripProvenance } from './core/attestations.js'
import type { Child } from './core/children.js'
import { parseManifest } from './core/manifest.js'
import type { ManifestStore } from './manifest-store.js'
import { allSettledOrThrow } from './util/limiter.js'

/** Returns the children with each attestation rewritten without provenance, or dropped when nothing remains. */
export async function stripProvenanceFrom(
  store: ManifestStore,
  children: Child[],
  decisions: string[]
): Promise<Child[]> {
  const rewritten = await allSettledOrThrow(
    children.map(async (c): Promise<Child | undefined> => {
      if (c.kind !== 'attestation' || c.referenceType) return c
      const raw = await store.get(c.source, c.descriptor.digest)
      const parsed = parseManifest(raw, `attestation ${raw.digest} of ${c.sourceInput}`)
      if (parsed.kind !== 'image') return c
      if (!parsed.manifest.layers.some((l) => isProvenance(l.annotations?.[PREDICATE_TYPE_KEY]))) {
        decisions.push(
          `keep attestation ${raw.digest} of ${c.subject ?? '?'}: it holds no provenance`
        )
        return c
      }
      const config = await store.config(c.source, parsed.manifest.config.digest)
      const r = stripProvenance(parsed.manifest, parsed.mediaType, config)
      if (r === 'unchanged') return c
      if (r === 'empty') {
        decisions.push(
          `drop attestation ${raw.digest} of ${c.subject ?? '?'}: it held only provenance`
        )
        return undefined
      }
      decisions.push(
        `rewrite attestation ${raw.digest} of ${c.subject ?? '?'} without ${r.removed.join(', ')} -> ${r.manifest.digest}`
      )
      return {
        ...c,
        descriptor: { ...c.descriptor, digest: r.manifest.digest, size: r.manifest.bytes.length },
        rewritten: r.manifest,
        newBlobs: [{ digest: r.config.digest, bytes: r.config.bytes }]
      }
    })
  )
  return rewritten.filter((c): c is Child => c !== undefined)
}
