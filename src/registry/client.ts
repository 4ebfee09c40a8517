// OCI Distribution client: manifests, blobs, mounts, uploads and referrers. Every request goes
// through one private function, `request`, and so through the one request path (request.ts).
import { pipeline, Transform, type Readable } from 'node:stream'
import { digestOf, isDigest, verifyDigest } from '../core/digest.js'
import { isIndexType, isSchema1Type, MANIFEST_ACCEPT, OCI_INDEX } from '../core/mediatypes.js'
import {
  checkDescriptor,
  MAX_MANIFEST_BYTES,
  schema1Error,
  type Descriptor,
  type RawManifest
} from '../core/manifest.js'
import { repoName, type Repository } from '../core/reference.js'
import {
  detailsOf,
  isAbsent,
  isNotFound,
  isRefused,
  isUnsupported,
  RegistryError
} from './errors.js'
import {
  RequestPath,
  type RegistryRequest,
  type RegistryResponse,
  type RequestPathOptions
} from './request.js'
import { drop, header } from './transport.js'
import { upload } from './upload.js'

export type ClientOptions = RequestPathOptions

export interface ManifestHead {
  digest: string
  mediaType: string
  size: number
}

/** Tag pushes and their rollback are `final`: they may run a little past the deadline. */
export interface Final {
  final?: boolean
}

const MAX_CONFIG_BYTES = 16 * 1024 * 1024
/** More referrers than this for one image is not something to copy blindly. */
const MAX_REFERRERS = 1024
const MANIFESTS = { maxBytes: MAX_MANIFEST_BYTES, limitName: 'manifests' }
const REFERRERS_REDIRECTS = [301, 302, 303, 307, 308]

export class RegistryClient {
  private readonly path: RequestPath

  constructor(opts: ClientOptions) {
    this.path = new RequestPath(opts)
  }

  /** Requests sent (every exchange, redirects and retries included) and retries made. */
  get stats(): { requests: number; retries: number } {
    return { requests: this.path.requestCount, retries: this.path.retryCount }
  }

  close(): Promise<void> {
    return this.path.close()
  }

  /** Declare every repository up front so one token per registry covers them all. */
  declare(repo: Repository, actions: Array<'pull' | 'push'>): void {
    this.path.auth.declare(repo.registry, repo.repository, actions)
  }

  private request(r: RegistryRequest): Promise<RegistryResponse> {
    return this.path.send(r)
  }

  /**
   * GETs a manifest. By digest, the bytes are verified against it; by tag, against the
   * Docker-Content-Digest the registry sends. The bytes are kept exactly as received.
   */
  async getManifest(repo: Repository, reference: string, o: Final = {}): Promise<RawManifest> {
    const what = `manifest ${repoName(repo)}${reference.includes(':') ? '@' : ':'}${reference}`
    let res: RegistryResponse
    try {
      res = await this.request({
        repo,
        method: 'GET',
        url: `/v2/${repo.repository}/manifests/${reference}`,
        what,
        expect: [200],
        headers: { accept: MANIFEST_ACCEPT },
        read: MANIFESTS,
        final: o.final
      })
    } catch (e) {
      if (!isNotFound(e)) throw e
      throw new RegistryError(`${what} not found on registry ${repo.registry}`, {
        ...detailsOf(e as RegistryError),
        code: 'MANIFEST_UNKNOWN'
      })
    }
    const bytes = res.body
    const doc = documentFields(bytes)
    // The document's own mediaType wins: it is what the bytes are, whatever the header says.
    const mediaType =
      doc.mediaType ?? (header(res.headers, 'content-type') ?? '').split(';')[0].trim()
    // Registries re-sign schema 1 manifests on every GET, so their bytes never hash to the
    // digest: refused as what they are, not as a digest mismatch, and never returned (the
    // caller names the source).
    if (doc.schemaVersion === 1 || isSchema1Type(mediaType)) throw schema1Error()
    const expected = reference.includes(':') ? reference : servedDigest(res, repo, what)
    if (!expected) return { bytes, mediaType, digest: digestOf(bytes, 'sha256') }
    verifyDigest(bytes, expected, `${what} from registry ${repo.registry}`)
    return { bytes, mediaType, digest: expected }
  }

  /** HEADs a manifest; undefined when absent (404, or 403 as Artifactory answers for missing tags). */
  async headManifest(
    repo: Repository,
    reference: string,
    o: Final = {}
  ): Promise<ManifestHead | undefined> {
    let res: RegistryResponse
    try {
      res = await this.request({
        repo,
        method: 'HEAD',
        url: `/v2/${repo.repository}/manifests/${reference}`,
        what: `manifest ${reference}`,
        expect: [200],
        headers: { accept: MANIFEST_ACCEPT },
        final: o.final
      })
    } catch (e) {
      if (isAbsent(e)) return undefined
      throw e
    }
    const digest = servedDigest(res, repo, `manifest ${reference}`)
    if (!digest) {
      // Some registries omit the digest on HEAD: fall back to GET, which hashes the bytes.
      const m = await this.getManifest(repo, reference, o)
      return { digest: m.digest, mediaType: m.mediaType, size: m.bytes.length }
    }
    return {
      digest,
      mediaType: (header(res.headers, 'content-type') ?? '').split(';')[0].trim(),
      size: Number(header(res.headers, 'content-length') ?? 0)
    }
  }

  /** PUTs manifest bytes as they are and checks the registry's digest equals ours. */
  async putManifest(
    repo: Repository,
    reference: string,
    m: RawManifest,
    o: Final = {}
  ): Promise<void> {
    const res = await this.request({
      repo,
      method: 'PUT',
      url: `/v2/${repo.repository}/manifests/${reference}`,
      what: `manifest ${reference}`,
      expect: [200, 201],
      headers: { 'content-type': m.mediaType },
      body: () => m.bytes,
      final: o.final
    })
    const served = servedDigest(res, repo, `manifest ${reference}`)
    if (served && served !== m.digest) {
      throw new RegistryError(
        `registry ${repo.registry} stored manifest ${reference} in ${repoName(repo)} under digest ${served}, but the bytes sent hash to ${m.digest}`,
        {
          registry: repo.registry,
          repository: repo.repository,
          request: `PUT manifest ${reference}`
        }
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
  ): Promise<{ via: 'api' | 'tag'; descriptors: Descriptor[]; fallback?: RawManifest }> {
    const what = `referrers of ${digest} in ${repoName(repo)} on registry ${repo.registry}`
    const descriptors: Descriptor[] = []
    let url: string | undefined = `/v2/${repo.repository}/referrers/${digest}`
    // The API pages its answer with Link: <next>; rel="next".
    for (let page = 0; url && page < 100; page++) {
      let res: RegistryResponse
      try {
        res = await this.request({
          repo,
          method: 'GET',
          url,
          what: `referrers of ${digest}`,
          // GHCR answers the endpoint with 303 See Other to another host, which rate-limits and
          // truncates the digest (dataaxiom/ghcr-cleanup-action#13): not followed, the tag
          // fallback is used instead.
          expect: page === 0 ? [200, ...REFERRERS_REDIRECTS] : [200],
          headers: { accept: OCI_INDEX },
          read: MANIFESTS
        })
      } catch (e) {
        if (page === 0 && isUnsupported(e)) break
        throw e
      }
      if (res.status !== 200) break
      descriptors.push(...indexEntries(res.body, what))
      if (descriptors.length > MAX_REFERRERS)
        throw new RegistryError(`${what}: more than ${MAX_REFERRERS} referrers`, {
          registry: repo.registry,
          repository: repo.repository
        })
      url = /<([^>]+)>\s*;\s*rel="?next"?/.exec(header(res.headers, 'link') ?? '')?.[1]
      if (url) url = new URL(url, res.url).toString()
      else return { via: 'api', descriptors }
    }
    if (descriptors.length) return { via: 'api', descriptors }
    let m: RawManifest
    try {
      m = await this.getManifest(repo, referrersTag(digest))
    } catch (e) {
      if (isAbsent(e)) return { via: 'tag', descriptors: [] }
      throw e
    }
    // The tag is the OCI fallback only when it holds an index: anything else is someone's tag.
    if (!isIndexType(m.mediaType))
      throw new RegistryError(
        `${what}: the tag ${referrersTag(digest)} holds a manifest of type ${JSON.stringify(m.mediaType.slice(0, 100))}, not an index of referrers; it is left as it is`,
        { registry: repo.registry, repository: repo.repository }
      )
    return { via: 'tag', descriptors: indexEntries(m.bytes, what), fallback: m }
  }

  /** Whether the blob is in `repo`; a redirect to storage counts as present. */
  async blobExists(repo: Repository, digest: string): Promise<boolean> {
    try {
      await this.request({
        repo,
        method: 'HEAD',
        url: `/v2/${repo.repository}/blobs/${digest}`,
        what: `blob ${digest}`,
        expect: [200, 302, 307]
      })
      return true
    } catch (e) {
      if (isNotFound(e)) return false
      throw e
    }
  }

  /** GETs a small blob (an image config) into memory, verified against its digest. */
  async getBlob(repo: Repository, digest: string): Promise<Uint8Array> {
    let res: RegistryResponse
    try {
      res = await this.request({
        repo,
        method: 'GET',
        url: `/v2/${repo.repository}/blobs/${digest}`,
        what: `blob ${digest}`,
        expect: [200],
        read: { maxBytes: MAX_CONFIG_BYTES, limitName: 'configs' }
      })
    } catch (e) {
      if (!isNotFound(e)) throw e
      throw new RegistryError(
        `blob ${digest} not found in ${repoName(repo)} on registry ${repo.registry}`,
        { ...detailsOf(e as RegistryError), code: 'BLOB_UNKNOWN' }
      )
    }
    verifyDigest(res.body, digest, `blob ${digest} from ${repoName(repo)}`)
    return res.body
  }

  /**
   * Tries a cross-repository mount. Returns 'mounted', or the Location of the upload session
   * the registry opened instead (202), or nothing when it refused outright (Harbor answers 401,
   * others 400 or 404), in which case the caller uploads.
   */
  async mountBlob(
    target: Repository,
    digest: string,
    from: Repository
  ): Promise<'mounted' | { location?: string }> {
    let res: RegistryResponse
    try {
      res = await this.request({
        repo: target,
        method: 'POST',
        url: `/v2/${target.repository}/blobs/uploads/?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(from.repository)}`,
        what: `mount of blob ${digest} from ${from.repository}`,
        expect: [201, 202],
        headers: { 'content-length': '0' }
      })
    } catch (e) {
      if (isRefused(e)) return {}
      throw e
    }
    if (res.status === 201) return 'mounted'
    return { location: header(res.headers, 'location') }
  }

  /** Uploads a small blob held in memory (one POST, one PUT); false when the target had it. */
  async uploadBlob(target: Repository, digest: string, bytes: Uint8Array): Promise<boolean> {
    if (await this.blobExists(target, digest)) return false
    await upload((r) => this.request(r), {
      target,
      digest,
      size: bytes.length,
      label: `upload of blob ${digest} to ${repoName(target)}`,
      open: () => bytes
    })
    return true
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
    await upload((r) => this.request(r), {
      target,
      digest,
      size,
      label: `copy of blob ${digest} from ${repoName(source)} to ${repoName(target)}`,
      open: () => this.openBlob(source, digest, size),
      session: uploadLocation
    })
  }

  /**
   * A blob's content as a stream, for a copy; the PUT it feeds holds the limiter's slot. A blob
   * longer or shorter than its descriptor says fails the copy, naming the blob.
   */
  private async openBlob(repo: Repository, digest: string, size: number): Promise<Readable> {
    const res = await this.request({
      repo,
      method: 'GET',
      url: `/v2/${repo.repository}/blobs/${digest}`,
      what: `blob ${digest}`,
      expect: [200],
      read: 'stream',
      unlimited: true
    })
    const wrong = (length: string): RegistryError =>
      new RegistryError(
        `blob ${digest} in ${repoName(repo)} on registry ${repo.registry} is ${length} bytes, but the manifest that references it says ${size}`,
        { registry: repo.registry, repository: repo.repository, request: `GET blob ${digest}` }
      )
    const stream = res.stream as Readable
    const length = header(res.headers, 'content-length')
    if (length !== undefined && Number(length) !== size) {
      drop(stream)
      throw wrong(length)
    }
    let seen = 0
    const exact = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        seen += chunk.length
        done(seen > size ? wrong(`more than ${size}`) : null, chunk)
      },
      flush(done) {
        done(seen === size ? null : wrong(String(seen)))
      }
    })
    // The copy's PUT reads `exact`: an error on either side reaches it, and none goes unheard.
    return pipeline(stream, exact, () => undefined)
  }
}

/** The Docker-Content-Digest a registry sent, refused unless it is a digest. */
function servedDigest(res: RegistryResponse, repo: Repository, what: string): string | undefined {
  const served = header(res.headers, 'docker-content-digest')
  if (served === undefined || isDigest(served)) return served
  throw new RegistryError(
    `registry ${repo.registry} sent the Docker-Content-Digest ${JSON.stringify(served)} for ${what} in ${repoName(repo)}, which is not a sha256 or sha512 digest`,
    { registry: repo.registry, repository: repo.repository }
  )
}

/** The referrers fallback tag of the OCI distribution spec: `sha256-<hex>`. */
export function referrersTag(digest: string): string {
  return digest.replace(':', '-')
}

/** The document's own mediaType and schemaVersion, when it is a JSON object that has them. */
function documentFields(bytes: Uint8Array): { mediaType?: string; schemaVersion?: unknown } {
  try {
    const doc = JSON.parse(Buffer.from(bytes).toString('utf8')) as {
      mediaType?: unknown
      schemaVersion?: unknown
    }
    if (typeof doc !== 'object' || doc === null) return {}
    const mediaType = typeof doc.mediaType === 'string' && doc.mediaType ? doc.mediaType : undefined
    return { mediaType, schemaVersion: doc.schemaVersion }
  } catch {
    return {} // parseManifest reports invalid JSON with the source named
  }
}

/** The entries of a referrers index (API answer or fallback tag), each checked, with the source named. */
function indexEntries(bytes: Uint8Array, what: string): Descriptor[] {
  let doc: { manifests?: unknown }
  try {
    doc = JSON.parse(Buffer.from(bytes).toString('utf8')) as typeof doc
  } catch {
    throw new RegistryError(`${what}: the registry returned an index that is not valid JSON`)
  }
  if (!Array.isArray(doc.manifests))
    throw new RegistryError(`${what}: the registry returned an index without a manifests list`)
  const entries: unknown[] = doc.manifests
  entries.forEach((d, i) => checkDescriptor(d, `${what}: entry ${i}`))
  return entries as Descriptor[]
}
