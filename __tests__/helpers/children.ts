// Index entries for the unit tests of the pure core: images and their attestations by number.
import type { Child } from '../../src/core/children.js'
import { OCI_MANIFEST } from '../../src/core/mediatypes.js'

export const dg = (n: number): string => 'sha256:' + n.toString(16).padStart(64, '0')
export const repo = { registry: 'r.io', repository: 'app' }

/** Image `n` for `platform` ("linux/arm64/v8"), from source input `src`. */
export function image(
  n: number,
  platform: string,
  mediaType = OCI_MANIFEST,
  src = `src${n}`
): Child {
  const [os, architecture, variant] = platform.split('/')
  return {
    kind: 'image',
    descriptor: {
      mediaType,
      digest: dg(n),
      size: 100 + n,
      platform: variant ? { os, architecture, variant } : { os, architecture }
    },
    source: repo,
    sourceInput: src
  }
}

/** BuildKit's attestation manifest `n` for image `subject`. */
export function att(n: number, subject: number): Child {
  return {
    kind: 'attestation',
    descriptor: {
      mediaType: OCI_MANIFEST,
      digest: dg(n),
      size: 50,
      platform: { os: 'unknown', architecture: 'unknown' },
      annotations: {
        'vnd.docker.reference.type': 'attestation-manifest',
        'vnd.docker.reference.digest': dg(subject)
      }
    },
    source: repo,
    sourceInput: `src${subject}`,
    subject: dg(subject)
  }
}
