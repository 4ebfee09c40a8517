// OCI Distribution client: manifests, blobs, mounts and uploads, with auth and verification.
import { verifyDigest, digestOf } from '../core/digest.js'
import { MANIFEST_ACCEPT, OCI_INDEX } from '../core/mediatypes.js'
import { MAX_MANIFEST_BYTES, type Descriptor, type RawManifest } from '../core/manifest.js'
import { apiHost, repoName, type Repository } from '../core/reference.js'
import { Authenticator } from './auth.js'
import type { CredentialStore } from './credentials.js'
import { RegistryError, describeErrorBody } from './errors.js'
import {
  BodyTooLargeError,
  header,
  Transport,
  type HttpResponse,
  type TransportOptions
} from './transport.js'
import { openBlobStream, uploadInSessions } from './upload.js'

export interface ClientOptions extends TransportOptions {
  credentials: CredentialStore
  onSecret?: (secret: string) => void
}

export interface ManifestHead {
  digest: string
  mediaType: string
  size: number
}

interface CallOptions {
  method: 'GET' | 'HEAD' | 'PUT' | 'POST'
  path: string
  headers?: Record<string, string>
  body?: Uint8Array | string
  maxBodyBytes?: number
}

const LOOPBACK = /^(localhost|127(?:\.\d{1,3}){3}|\[::1\])(?::\d+)?$/

export class RegistryClient {
  readonly transport: Transport
  readonly auth: Authenticator
  private readonly schemes = new Map<string, 'http' | 'https'>()

  constructor(opts: ClientOptions) {
    this.transport = new Transport(opts)
    this.auth = new Authenticator(this.transport, opts.credentials, opts.onSecret)
  }

  close(): Promise<void> {
    return this.transport.close()
  }

  /** Declare every repository up front so one token per registry covers them all. */
  declare(repo: Repository, actions: Array<'pull' | 'push'>): void {
    this.auth.declare(repo.registry, repo.repository, actions)
  }

  /** Docker talks plain HTTP to loopback registries; everything else is HTTPS. */
  private scheme(registry: string): 'http' | 'https' {
    return this.schemes.get(registry) ?? (LOOPBACK.test(registry) ? 'http' : 'https')
  }

  origin(registry: string): string {
    return `${this.scheme(registry)}://${apiHost(registry)}`
  }

  private async call(repo: Repository, o: CallOptions): Promise<HttpResponse> {
    const where = `${repoName(repo)} (${o.method} ${o.path.split('?')[0]})`
    for (let attempt = 0; ; attempt++) {
      const state = this.auth.state(repo.registry)
      const generation = state.generation
      const url = o.path.startsWith('http') ? o.path : this.origin(repo.registry) + o.path
      const headers = { ...o.headers, ...this.authFor(repo.registry, url) }
      let res: HttpResponse
      try {
        res = await this.transport.send(
          { method: o.method, url, headers, body: o.body },
          o.maxBodyBytes
        )
      } catch (e) {
        throw this.networkError(repo, e, where)
      }
      if (res.status === 400 && (await this.speaksTls(repo, res, o.method))) {
        // A loopback registry that speaks TLS: switch once, as docker does.
        this.schemes.set(repo.registry, 'https')
        continue
      }
      if (res.status === 401 && attempt < 2) {
        await this.auth.refresh(
          repo.registry,
          generation,
          header(res.headers, 'www-authenticate'),
          repo.repository
        )
        continue
      }
      if (res.status === 401) {
        const hint =
          state.who === 'anonymously'
            ? `no credentials are configured for ${repo.registry} (log in with docker/login-action or set the username/password inputs)`
            : `check the credentials for ${repo.registry} and that they may access ${repo.repository}`
        throw new RegistryError(
          `registry ${repo.registry} refused ${where} ${state.who}: ${hint}`,
          401
        )
      }
      return res
    }
  }

  /** The Authorization header for `url`: our credentials go to the registry's own origin only. */
  private authFor(registry: string, url: string): Record<string, string> {
    return this.auth.headerFor(registry, this.origin(registry), url)
  }

  /**
   * Whether a 400 to a plain-HTTP loopback registry is Go's answer to HTTP on a TLS port. A HEAD
   * answer has no body to tell by, so /v2/ is asked with a GET.
   */
  private async speaksTls(repo: Repository, res: HttpResponse, method: string): Promise<boolean> {
    if (this.scheme(repo.registry) !== 'http') return false
    const tlsHint = (r: HttpResponse): boolean =>
      r.status === 400 && /HTTP request to an HTTPS server/i.test(Buffer.from(r.body).toString())
    if (tlsHint(res)) return true
    if (method !== 'HEAD') return false
    const probe = await this.transport
      .send({ method: 'GET', url: `${this.origin(repo.registry)}/v2/` }, 64 * 1024)
      .catch(() => undefined)
    return probe !== undefined && tlsHint(probe)
  }

  private networkError(repo: Repository, e: unknown, where: string): Error {
    if (e instanceof RegistryError || e instanceof BodyTooLargeError) return e
    const err = e as {
      code?: string
      message?: string
      cause?: { code?: string; message?: string }
    }
    const code = err.cause?.code ?? err.code ?? ''
    const msg = err.cause?.message ?? err.message ?? String(e)
    if (/CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO_VERIFY/i.test(code + msg)) {
      return new RegistryError(
        `TLS error talking to registry ${repo.registry} for ${where}: ${msg}. Trust its CA with NODE_EXTRA_CA_CERTS, or list it in insecure-registries`
      )
    }
    return new RegistryError(
      `cannot reach registry ${repo.registry} for ${where}: ${code ? code + ' ' : ''}${msg}`
    )
  }

  fail(repo: Repository, what: string, res: HttpResponse): never {
    const { code, text } = describeErrorBody(Buffer.from(res.body).toString('utf8'))
    throw new RegistryError(
      `${what} in ${repoName(repo)} failed: HTTP ${res.status}${text ? ` (${text})` : ''}`,
      res.status,
      code
    )
  }

  /**
   * GETs a manifest. By digest, the bytes are verified against it; by tag, against the
   * Docker-Content-Digest the registry sends. The bytes are kept exactly as received.
   */
  async getManifest(repo: Repository, reference: string): Promise<RawManifest> {
    const what = `manifest ${repoName(repo)}${reference.includes(':') ? '@' : ':'}${reference}`
    let res: HttpResponse
    try {
      res = await this.call(repo, {
        method: 'GET',
        path: `/v2/${repo.repository}/manifests/${reference}`,
        headers: { accept: MANIFEST_ACCEPT },
        maxBodyBytes: MAX_MANIFEST_BYTES
      })
    } catch (e) {
      if (e instanceof BodyTooLargeError) {
        throw new RegistryError(
          `${what} on registry ${repo.registry} is larger than 4 MiB, the limit for manifests`
        )
      }
      throw e
    }
    if (res.status === 404) {
      throw new RegistryError(
        `${what} not found on registry ${repo.registry}`,
        404,
        'MANIFEST_UNKNOWN'
      )
    }
    if (res.status !== 200) this.fail(repo, `GET ${what}`, res)
    const bytes = res.body
    // The document's own mediaType wins: it is what the bytes are, whatever the header says.
    const mediaType =
      declaredMediaType(bytes) ?? (header(res.headers, 'content-type') ?? '').split(';')[0].trim()
    const isDigest = reference.includes(':')
    const served = header(res.headers, 'docker-content-digest')
    const expected = isDigest ? reference : served
    let digest: string
    if (expected) {
      verifyDigest(bytes, expected, `${what} from registry ${repo.registry}`)
      digest = expected
    } else {
      digest = digestOf(bytes, 'sha256')
    }
    return { bytes, mediaType, digest }
  }

  /** HEADs a manifest; undefined when absent (404, and 403 as Artifactory answers for missing tags). */
  async headManifest(repo: Repository, reference: string): Promise<ManifestHead | undefined> {
    const res = await this.call(repo, {
      method: 'HEAD',
      path: `/v2/${repo.repository}/manifests/${reference}`,
      headers: { accept: MANIFEST_ACCEPT }
    })
    if (res.status === 404 || res.status === 403) return undefined
    if (res.status !== 200) this.fail(repo, `HEAD manifest ${reference}`, res)
    const digest = header(res.headers, 'docker-content-digest')
    if (!digest) {
      // Some registries omit the digest on HEAD: fall back to GET, which hashes the bytes.
      const m = await this.getManifest(repo, reference)
      return { digest: m.digest, mediaType: m.mediaType, size: m.bytes.length }
    }
    return {
      digest,
      mediaType: (header(res.headers, 'content-type') ?? '').split(';')[0].trim(),
      size: Number(header(res.headers, 'content-length') ?? 0)
    }
  }

  /** PUTs manifest bytes as they are and checks the registry's digest equals ours. */
  async putManifest(repo: Repository, reference: string, m: RawManifest): Promise<void> {
    const res = await this.call(repo, {
      method: 'PUT',
      path: `/v2/${repo.repository}/manifests/${reference}`,
      headers: { 'content-type': m.mediaType },
      body: m.bytes
    })
    if (res.status !== 201 && res.status !== 200) {
      this.fail(repo, `PUT manifest ${reference}`, res)
    }
    const served = header(res.headers, 'docker-content-digest')
    if (served && served !== m.digest) {
      throw new RegistryError(
        `registry ${repo.registry} stored manifest ${reference} in ${repoName(repo)} under digest ${served}, but the bytes sent hash to ${m.digest}`
      )
    }
  }

  /**
   * Lists the referrers of `digest`: the referrers API when the registry has it, else the
   * fallback tag `sha256-<hex>` (an index of referrers). Returns the descriptors and how found.
   */
  async listReferrers(
    repo: Repository,
    digest: string
  ): Promise<{ via: 'api' | 'tag'; descriptors: Descriptor[] }> {
    const what = `referrers of ${digest} in ${repoName(repo)} on registry ${repo.registry}`
    const descriptors: Descriptor[] = []
    let path: string | undefined = `/v2/${repo.repository}/referrers/${digest}`
    // The API pages its answer with Link: <next>; rel="next".
    for (let page = 0; path && page < 100; page++) {
      const res = await this.call(repo, {
        method: 'GET',
        path,
        headers: { accept: OCI_INDEX },
        maxBodyBytes: MAX_MANIFEST_BYTES
      })
      if (page === 0 && (res.status === 404 || res.status === 400 || res.status === 405)) break
      if (res.status !== 200) this.fail(repo, `GET ${what}`, res)
      descriptors.push(...indexEntries(res.body, what))
      const next = /<([^>]+)>\s*;\s*rel="?next"?/.exec(header(res.headers, 'link') ?? '')?.[1]
      path = next && new URL(next, this.origin(repo.registry)).toString()
      if (!path) return { via: 'api', descriptors }
    }
    if (descriptors.length) return { via: 'api', descriptors }
    try {
      const m = await this.getManifest(repo, referrersTag(digest))
      return { via: 'tag', descriptors: indexEntries(m.bytes, what) }
    } catch (e) {
      // Artifactory answers 403 for a tag that does not exist.
      if (e instanceof RegistryError && (e.status === 404 || e.status === 403)) {
        return { via: 'tag', descriptors: [] }
      }
      throw e
    }
  }

  async blobExists(repo: Repository, digest: string): Promise<boolean> {
    const res = await this.call(repo, {
      method: 'HEAD',
      path: `/v2/${repo.repository}/blobs/${digest}`
    })
    if (res.status === 200 || res.status === 307 || res.status === 302) return true
    if (res.status === 404) return false
    this.fail(repo, `HEAD blob ${digest}`, res)
  }

  /** GETs a small blob (an image config) into memory, verified against its digest. */
  async getBlob(
    repo: Repository,
    digest: string,
    maxBytes = 16 * 1024 * 1024
  ): Promise<Uint8Array> {
    const res = await this.call(repo, {
      method: 'GET',
      path: `/v2/${repo.repository}/blobs/${digest}`,
      maxBodyBytes: maxBytes
    })
    let body = res.body
    if (res.status >= 300 && res.status < 400) {
      body = (await this.followRedirect(repo, res, maxBytes)).body
    } else if (res.status === 404) {
      throw new RegistryError(
        `blob ${digest} not found in ${repoName(repo)} on registry ${repo.registry}`,
        404,
        'BLOB_UNKNOWN'
      )
    } else if (res.status !== 200) {
      this.fail(repo, `GET blob ${digest}`, res)
    }
    verifyDigest(body, digest, `blob ${digest} from ${repoName(repo)}`)
    return body
  }

  /** Blob GETs are often redirected to object storage: follow without our Authorization header. */
  private async followRedirect(
    repo: Repository,
    res: HttpResponse,
    maxBytes: number
  ): Promise<HttpResponse> {
    let current = res
    for (let hop = 0; hop < 5 && current.status >= 300 && current.status < 400; hop++) {
      const location = header(current.headers, 'location')
      if (!location) break
      const next = new URL(location, current.url).toString()
      const headers = this.authFor(repo.registry, next)
      current = await this.transport.send({ method: 'GET', url: next, headers }, maxBytes)
    }
    if (current.status !== 200) this.fail(repo, `GET redirected blob`, current)
    return current
  }

  /**
   * Tries a cross-repository mount. Returns 'mounted', or the Location of the upload session
   * the registry opened instead (202), or undefined when it refused outright (any error:
   * Harbor answers 401, others 400 or 404), in which case the caller uploads.
   */
  async mountBlob(
    target: Repository,
    digest: string,
    from: Repository
  ): Promise<'mounted' | { location?: string }> {
    const res = await this.call(target, {
      method: 'POST',
      path: `/v2/${target.repository}/blobs/uploads/?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(from.repository)}`,
      headers: { 'content-length': '0' }
    }).catch((e: unknown) => {
      if (e instanceof RegistryError && e.status === 401) return undefined
      throw e
    })
    if (!res) return {}
    if (res.status === 201) return 'mounted'
    if (res.status === 202) return { location: header(res.headers, 'location') }
    return {}
  }

  /** Uploads a small blob held in memory (one POST, one PUT); false when the target had it. */
  async uploadBlob(target: Repository, digest: string, bytes: Uint8Array): Promise<boolean> {
    if (await this.blobExists(target, digest)) return false
    await uploadInSessions(this, {
      target,
      digest,
      size: bytes.length,
      label: `upload of blob ${digest} to ${repoName(target)}`,
      open: () => Promise.resolve({ content: bytes })
    })
    return true
  }

  /** Opens an upload session; used by upload.ts. */
  async startUpload(target: Repository): Promise<string> {
    const res = await this.call(target, {
      method: 'POST',
      path: `/v2/${target.repository}/blobs/uploads/`,
      headers: { 'content-length': '0' }
    })
    const location = header(res.headers, 'location')
    if (res.status !== 202 || !location) this.fail(target, 'starting a blob upload', res)
    return location
  }

  /**
   * Streams a blob from `source` into `target` without holding it in memory: GET piped into a
   * monolithic PUT. The target verifies the digest on completion. A failed attempt restarts
   * with a new upload session and a new GET (see upload.ts).
   */
  async copyBlob(
    source: Repository,
    target: Repository,
    digest: string,
    size: number,
    uploadLocation?: string
  ): Promise<void> {
    await uploadInSessions(this, {
      target,
      digest,
      size,
      label: `copy of blob ${digest} from ${repoName(source)} to ${repoName(target)}`,
      open: (attempt) => openBlobStream(this, source, digest, size, attempt),
      session: uploadLocation
    })
  }
}

/** The referrers fallback tag of the OCI distribution spec: `sha256-<hex>`. */
export function referrersTag(digest: string): string {
  return digest.replace(':', '-')
}

function declaredMediaType(bytes: Uint8Array): string | undefined {
  try {
    const doc = JSON.parse(Buffer.from(bytes).toString('utf8')) as { mediaType?: unknown }
    return typeof doc.mediaType === 'string' && doc.mediaType ? doc.mediaType : undefined
  } catch {
    return undefined // parseManifest reports invalid JSON with the source named
  }
}

/** The entries of a referrers index (API answer or fallback tag), with the source named on bad JSON. */
function indexEntries(bytes: Uint8Array, what: string): Descriptor[] {
  try {
    const doc = JSON.parse(Buffer.from(bytes).toString('utf8')) as { manifests?: Descriptor[] }
    return Array.isArray(doc.manifests) ? doc.manifests : []
  } catch {
    throw new RegistryError(`${what}: the registry returned an index that is not valid JSON`)
  }
}
