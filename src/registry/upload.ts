// Blob uploads into upload sessions: one monolithic PUT per attempt. A failed attempt (a reset
// mid-body on either side, a 5xx, a lost response, a 401) abandons its session, and the retry
// starts over with a new session and, for a copy, a new GET: a session is never reused after a
// failure. Credentials, redirects and retries are the request path's (request.ts).
import type { Repository } from '../core/reference.js'
import { RegistryError } from './errors.js'
import type { Send, Session } from './request.js'
import { header, type Body } from './transport.js'

export interface UploadSpec {
  target: Repository
  digest: string
  size: number
  /** For messages: "copy of blob ... from ... to ...". */
  label: string
  /** Opens the content for one attempt (0 = first): bytes, or a stream reopened per attempt. */
  open: (attempt: number) => Body | Promise<Body>
  /** A session already opened (by a refused mount), used by the first attempt. */
  session?: string
}

export async function upload(send: Send, spec: UploadSpec): Promise<void> {
  const { target } = spec
  let opened = spec.session
  await send({
    repo: target,
    method: 'PUT',
    url: `/v2/${target.repository}/blobs/uploads/`,
    what: spec.label,
    label: spec.label,
    expect: [201, 204],
    headers: { 'content-type': 'application/octet-stream', 'content-length': String(spec.size) },
    body: spec.open,
    session: async (): Promise<Session> => {
      const location = opened ?? (await startSession(send, target))
      opened = undefined
      return {
        url: withQuery(location, 'digest', spec.digest),
        abandon: () => cancelSession(send, target, location)
      }
    }
  })
}

async function startSession(send: Send, target: Repository): Promise<string> {
  const res = await send({
    repo: target,
    method: 'POST',
    url: `/v2/${target.repository}/blobs/uploads/`,
    what: 'blob upload',
    expect: [202],
    headers: { 'content-length': '0' }
  })
  const location = header(res.headers, 'location')
  if (!location) {
    throw new RegistryError(
      `registry ${target.registry} opened an upload session in ${target.repository} without a Location`,
      { registry: target.registry, repository: target.repository, request: 'POST blob upload' }
    )
  }
  return location
}

/** Best effort: a session left open holds a partial upload until the registry purges it. */
async function cancelSession(send: Send, target: Repository, location: string): Promise<void> {
  await send({
    repo: target,
    method: 'DELETE',
    url: location,
    what: 'blob upload session',
    expect: 'any',
    once: true
  }).catch(() => undefined)
}

/** `location` (absolute, or a path on the registry) with `name=value` added to its query. */
function withQuery(location: string, name: string, value: string): string {
  const absolute = URL.canParse(location)
  const u = new URL(location, 'http://relative.invalid')
  u.searchParams.set(name, value)
  return absolute ? u.toString() : u.pathname + u.search
}
