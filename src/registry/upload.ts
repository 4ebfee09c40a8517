// Blob uploads into upload sessions: one monolithic PUT per attempt. A failed attempt (a reset
// mid-body on either side, a 5xx, a lost response) cancels its session, and the retry starts
// over with a new session and, for a copy, a new GET: a session is never reused after a failure.
import type { Readable } from 'node:stream'
import { repoName, type Repository } from '../core/reference.js'
import type { Authenticator } from './auth.js'
import { RegistryError } from './errors.js'
import { header, isRetryableStatus, type HttpResponse, type Transport } from './transport.js'

/** What the uploads need of the registry client. */
export interface UploadHost {
  readonly transport: Transport
  readonly auth: Authenticator
  origin(registry: string): string
  startUpload(target: Repository): Promise<string>
  fail(repo: Repository, what: string, res: HttpResponse): never
}

/** A response from an attempt; `unauthorized` says whose token to refresh on a 401. */
export interface UploadOutcome extends HttpResponse {
  unauthorized?: { repo: Repository; generation: number }
}

/** The bytes to PUT, or the response that stopped them from being read. */
export type BlobContent = { content: Readable | Uint8Array } | UploadOutcome

export interface UploadSpec {
  target: Repository
  digest: string
  size: number
  /** For messages: "copy of blob ... from ... to ...". */
  label: string
  /** Opens the content for one attempt (0 = first). */
  open: (attempt: number) => Promise<BlobContent>
  /** A session already opened (by a refused mount), used by the first attempt. */
  session?: string
}

export async function uploadInSessions(host: UploadHost, spec: UploadSpec): Promise<void> {
  const { target, digest } = spec
  const { transport } = host
  let first = spec.session
  const op = {
    method: 'PUT',
    url: `${host.origin(target.registry)}/v2/${target.repository}/blobs/${digest}`,
    label: spec.label
  }
  await transport.withRetries(op, async (attempt) => {
    for (let refreshed = 0; ; refreshed++) {
      const session = first ?? (await host.startUpload(target))
      first = undefined
      let out: UploadOutcome
      try {
        out = await transport.limiter.run(() => putOnce(host, spec, session, attempt))
      } catch (e) {
        await cancelUpload(host, target, session)
        throw e
      }
      if (out.status === 201 || out.status === 204) return out
      await cancelUpload(host, target, session)
      // Tokens are refreshed outside the limiter: the token request may need a slot of its own.
      if (out.status === 401 && out.unauthorized && refreshed < 2) {
        const { repo, generation } = out.unauthorized
        const challenge = header(out.headers, 'www-authenticate')
        await host.auth.refresh(repo.registry, generation, challenge, repo.repository)
        continue
      }
      if (isRetryableStatus(out.status)) return out
      host.fail(out.unauthorized?.repo ?? target, spec.label, out)
    }
  })
}

/** One attempt: open the content and PUT it into `session`; 401s are returned, not handled. */
async function putOnce(
  host: UploadHost,
  spec: UploadSpec,
  session: string,
  attempt: number
): Promise<UploadOutcome> {
  const opened = await spec.open(attempt)
  if (!('content' in opened)) return opened
  const { content } = opened
  const url = new URL(session, host.origin(spec.target.registry) + '/')
  url.searchParams.set('digest', spec.digest)
  const state = host.auth.state(spec.target.registry)
  const headers: Record<string, string> = {
    'content-type': 'application/octet-stream',
    'content-length': String(spec.size),
    ...host.auth.headerFor(spec.target.registry, host.origin(spec.target.registry), url.toString())
  }
  try {
    const res = await host.transport.sendOnce(
      { method: 'PUT', url: url.toString(), headers, body: content },
      host.transport.headersTimeoutFor(attempt)
    )
    const body = Buffer.from(await res.body.arrayBuffer())
    const out: UploadOutcome = { status: res.statusCode, headers: res.headers, body, url: res.url }
    if (res.statusCode === 401)
      out.unauthorized = { repo: spec.target, generation: state.generation }
    return out
  } finally {
    // A registry that answers before reading the whole body leaves the GET open.
    if (!(content instanceof Uint8Array) && !content.readableEnded) content.destroy()
  }
}

/** Best effort: a session left open holds a partial upload until the registry purges it. */
async function cancelUpload(host: UploadHost, target: Repository, session: string): Promise<void> {
  const url = new URL(session, host.origin(target.registry) + '/').toString()
  const headers = host.auth.headerFor(target.registry, host.origin(target.registry), url)
  try {
    const res = await host.transport.limiter.run(() =>
      host.transport.sendOnce({ method: 'DELETE', url, headers })
    )
    await res.body.dump()
  } catch {
    // the session may have gone with the connection; the registry purges what is left
  }
}

/** Opens a blob GET as a stream for a copy, following redirects (without auth off-origin). */
export async function openBlobStream(
  host: UploadHost,
  repo: Repository,
  digest: string,
  size: number,
  attempt: number
): Promise<BlobContent> {
  let url = `${host.origin(repo.registry)}/v2/${repo.repository}/blobs/${digest}`
  for (let hop = 0; hop < 6; hop++) {
    const state = host.auth.state(repo.registry)
    const sameOrigin = new URL(url).origin === host.origin(repo.registry)
    const headers = host.auth.headerFor(repo.registry, host.origin(repo.registry), url)
    const res = await host.transport.sendOnce(
      { method: 'GET', url, headers },
      host.transport.headersTimeoutFor(attempt)
    )
    const length = header(res.headers, 'content-length')
    if (res.statusCode === 200 && length !== undefined && Number(length) !== size) {
      res.body.destroy()
      throw new RegistryError(
        `blob ${digest} in ${repoName(repo)} on registry ${repo.registry} is ${length} bytes, but the manifest that references it says ${size}`
      )
    }
    if (res.statusCode === 200) return { content: res.body }
    const body = Buffer.from(await res.body.arrayBuffer())
    if (res.statusCode >= 300 && res.statusCode < 400 && res.headers.location) {
      url = new URL(String(res.headers.location), url).toString()
      continue
    }
    const out: UploadOutcome = { status: res.statusCode, headers: res.headers, body, url }
    if (res.statusCode === 401 && sameOrigin)
      out.unauthorized = { repo, generation: state.generation }
    if (out.unauthorized || isRetryableStatus(res.statusCode)) return out
    host.fail(repo, `GET blob ${digest}`, out)
  }
  throw new RegistryError(`too many redirects reading blob ${digest} from ${repoName(repo)}`)
}
