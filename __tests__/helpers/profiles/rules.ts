// Behaviours several registries share, as rules a profile lists (see hosted.ts and
// selfhosted.ts for which registry does what, and the public sources).
import { createHash } from 'node:crypto'
import type { ServerResponse } from 'node:http'
import { isDigestRef, OCI_INDEX, sha256, type ProfileContext, type ProfileRule } from './types.js'

/** The OCI 1.1 referrers API, answered from what the repository holds upstream. */
export function referrersApi(): ProfileRule {
  return async (req, res, route, ctx) => {
    if (route.kind !== 'referrers' || req.method !== 'GET') return false
    if (ctx.opts(route.repo).referrers !== 'api') return false
    req.resume()
    const digest = route.ref ?? ''
    // OCI distribution spec, "Listing Referrers": an invalid digest is a 400, and a registry
    // with the API never answers 404 (no referrers is an empty index).
    if (!/^sha256:[a-f0-9]{64}$/.test(digest))
      return ctx.error(res, 400, 'DIGEST_INVALID', 'provided digest did not match uploaded content')
    let manifests = await ctx.referrers(route.repo!, digest)
    const headers: Record<string, string> = { 'content-type': OCI_INDEX }
    const filter = route.query.get('artifactType')
    if (filter) {
      manifests = manifests.filter((m) => m.artifactType === filter)
      headers['oci-filters-applied'] = 'artifactType'
    }
    ctx.note({ kind: 'referrers-api', repo: route.repo, detail: digest })
    res.writeHead(200, headers)
    res.end(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests }))
    return true
  }
}

/**
 * OCI distribution spec, "Pushing Manifests with Subject": a registry that processes `subject`
 * answers the PUT with `OCI-Subject: <subject digest>`. With `always`, it is sent whether or
 * not the referrers API is there (ECR before its OCI 1.1 support; sigstore/sigstore-js#1183).
 */
export function ociSubjectHeader(always = false): ProfileRule {
  return async (req, _res, route, ctx) => {
    if (route.kind !== 'manifest' || req.method !== 'PUT') return false
    if (!always && ctx.opts(route.repo).referrers !== 'api') return false
    const subject = (await ctx.json(req))?.subject?.digest
    if (!subject) return false
    ctx.onResponse(req, (r) => {
      if (r.status === 201) {
        r.headers['oci-subject'] = subject
        ctx.note({ kind: 'oci-subject', repo: route.repo, detail: subject })
      }
    })
    return false
  }
}

/** Mounts are not done: the upload session is opened all the same (202), as the spec allows. */
export function mountsAnswer202(): ProfileRule {
  return (req, _res, route, ctx) => {
    if (route.kind !== 'upload' || req.method !== 'POST' || !route.query.has('mount')) return false
    if (!ctx.opts(route.repo).refuseMounts) return false
    const u = new URL(req.url ?? '/', 'http://x')
    u.searchParams.delete('mount')
    u.searchParams.delete('from')
    req.url = u.pathname + (u.search || '')
    ctx.note({ kind: 'mount-refused', repo: route.repo })
    return false
  }
}

/**
 * A PUT of a tag that exists, while `immutableTags` is on for the repository: `answer` refuses
 * it. `sameDigestToo`: refused even when the tag already holds these very bytes.
 */
export function immutableTags(
  answer: (res: ServerResponse, repo: string, tag: string, ctx: ProfileContext) => true,
  sameDigestToo = false
): ProfileRule {
  return async (req, res, route, ctx) => {
    if (route.kind !== 'manifest' || req.method !== 'PUT' || isDigestRef(route.ref)) return false
    if (!ctx.opts(route.repo).immutableTags) return false
    const held = await ctx.headManifest(route.repo!, route.ref!)
    if (held.status !== 200) return false
    const digest = sha256(await ctx.body(req))
    if (held.digest === digest && !sameDigestToo) return false
    ctx.note({ kind: 'immutable', repo: route.repo, detail: route.ref })
    return answer(res, route.repo!, route.ref!, ctx)
  }
}

/**
 * The order of a subject and what refers to it, as two rules that share the image manifest PUTs
 * being held (engine.ts gives every profile both; the switches are off unless a profile's
 * defaults or a test turn them on):
 * - RepoOptions.subjectMustExist: a manifest PUT whose `subject` is not in the repository yet is
 *   refused, 400 MANIFEST_BLOB_UNKNOWN "blob unknown to registry", detail the subject digest
 *   (GitLab's answer: moby/buildkit#7007, https://github.com/moby/buildkit/issues/7007);
 * - RepoOptions.holdImageManifestsMs: an image manifest PUT (no subject) is held until a PUT
 *   that names it as its subject has been answered, or that long at most.
 */
export function subjectOrder(): ProfileRule[] {
  // `<repo>@<digest>` of a held image manifest -> what ends its hold.
  const held = new Map<string, Array<() => void>>()
  const hold: ProfileRule = async (req, _res, route, ctx) => {
    if (route.kind !== 'manifest' || req.method !== 'PUT') return false
    const ms = ctx.opts(route.repo).holdImageManifestsMs
    if (!ms) return false
    const doc = await ctx.json(req)
    if (!doc?.layers || doc.subject) return false
    const digest = sha256(await ctx.body(req))
    const key = `${route.repo}@${digest}`
    await new Promise<void>((resolve) => {
      const list = held.get(key) ?? []
      held.set(key, list)
      const timer = setTimeout(() => end('time'), ms)
      const end = (by: 'referrer' | 'time'): void => {
        clearTimeout(timer)
        list.splice(list.indexOf(release), 1)
        if (list.length === 0) held.delete(key)
        ctx.note({ kind: 'released', repo: route.repo, detail: `${digest} by ${by}` })
        resolve()
      }
      const release = (): void => end('referrer')
      list.push(release)
      // Noted once the hold is in place: a test may wait for it before sending the referrer.
      ctx.note({ kind: 'held', repo: route.repo, detail: digest })
    })
    return false
  }
  const check: ProfileRule = async (req, res, route, ctx) => {
    if (route.kind !== 'manifest' || req.method !== 'PUT') return false
    const subject = (await ctx.json(req))?.subject?.digest
    if (!subject) return false
    try {
      if (!ctx.opts(route.repo).subjectMustExist) return false
      if ((await ctx.headManifest(route.repo!, subject)).status === 200) return false
      ctx.note({ kind: 'subject-missing', repo: route.repo, detail: subject })
      return ctx.error(res, 400, 'MANIFEST_BLOB_UNKNOWN', 'blob unknown to registry', subject)
    } finally {
      // Answered (or on its way upstream, unchecked): the subject's hold ends.
      for (const release of [...(held.get(`${route.repo}@${subject}`) ?? [])]) release()
    }
  }
  return [hold, check]
}

/** Large headers on every answer: `bytes` of them, split over several header fields. */
export function largeHeaders(bytes: number): Record<string, string> {
  const out: Record<string, string> = {}
  const per = 4000
  const seed = createHash('sha256').update('large-headers').digest('base64url')
  for (let i = 0; bytes > 0; i++, bytes -= per) {
    const n = Math.min(per, bytes)
    out[`x-goog-emulated-${i}`] = seed.repeat(Math.ceil(n / seed.length)).slice(0, n)
  }
  return out
}
