// The types of the registry profiles (engine.ts runs them; hosted.ts and selfhosted.ts define
// them), and the request routes they are written against.
import { createHash } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { TestProxy } from '../proxy.js'
import type { TestRegistry } from '../registry.js'

export type ProfileName =
  | 'ghcr'
  | 'dockerhub'
  | 'ecr'
  | 'gar'
  | 'acr'
  | 'quay'
  | 'harbor'
  | 'artifactory'
  | 'gitlab'
  | 'gitea'
  | 'nexus'

/** How `GET /v2/<name>/referrers/<digest>` is answered. */
export type ReferrersMode = 'api' | 'none' | 'redirect'

/**
 * Switches a matrix cell turns on for the repositories under a name prefix
 * (RegistryProfile.configure), over the profile's defaults. Only the switches a profile reads
 * have an effect there.
 */
export interface RepoOptions {
  /** An existing tag may not be moved: each registry refuses in its own words. */
  immutableTags?: boolean
  /** Harbor: a project policy (vulnerabilities, signatures) blocks pulls. */
  policyBlocksPulls?: boolean
  /** Cross-repository mounts are not done (each registry says so in its own way). */
  refuseMounts?: boolean
  /** Docker Hub: the next N manifest GETs hit the overall rate limit (429 HAP429). */
  rateLimitedGets?: number
  /** Docker Hub: the pull limit is used up: every manifest GET answers 429 TOOMANYREQUESTS. */
  pullLimitReached?: boolean
  /** Gitea/Forgejo: OCI index PUTs answer 404. */
  refuseOciIndex?: boolean
  /** Gitea/Forgejo (before OCI artifact support): manifests that are not images answer 501. */
  refuseArtifacts?: boolean
  /** Nexus: manifest list PUTs answer a bare 400. */
  refuseLists?: boolean
  /** Quay (older): an OCI index may only hold OCI manifest types. */
  ociIndexOciEntriesOnly?: boolean
  /** Artifactory: an overwrite without delete permission is a 403, or a 400 that wraps one. */
  overwriteAnswer?: '400' | '403'
  referrers?: ReferrersMode
  /**
   * A manifest PUT whose `subject` is not in the repository yet is refused: 400
   * MANIFEST_BLOB_UNKNOWN (GitLab's rule, on by default there; see selfhosted.ts). Any profile
   * can be given it, so that a test of the order of pushes can fail on every registry.
   */
  subjectMustExist?: boolean
  /**
   * Not a registry's behaviour but a test aid: an image manifest PUT (no subject) is held until
   * a manifest PUT naming it as its subject has been answered, or at most this many
   * milliseconds. With subjectMustExist, a client that sends a referrer before its subject is
   * in place is refused whenever the referrer comes within that bound (the hold then ends at
   * once); a client that waits for its subjects is only slowed down by it, never failed.
   */
  holdImageManifestsMs?: number
  /**
   * The OAuth2 POST to the token server (refresh-token grant) is answered with this status when
   * its scope names a repository under the prefix: 404 is how GCR answered it (hosted.ts, gar).
   */
  oauthPostStatus?: number
}

/** A request to the registry API, as the profile sees it. */
export interface Route {
  kind: 'base' | 'manifest' | 'blob' | 'upload' | 'tags' | 'referrers' | 'other'
  repo?: string
  /** Tag or digest (manifest), digest (blob, referrers), session id (upload). */
  ref?: string
  query: URLSearchParams
}

export interface ProfileEvent {
  kind: string
  repo?: string
  detail?: string
}

/** What a rule can use: the upstream registry, the request body, answers in registry form. */
export interface ProfileContext {
  upstream: TestRegistry
  profile: RegistryProfile
  opts(repo: string | undefined): RepoOptions
  /** The request body, read once (the request is then forwarded with it). */
  body(req: IncomingMessage): Promise<Buffer>
  /** The body as JSON, or undefined when it is not. */
  json(req: IncomingMessage): Promise<ManifestDoc | undefined>
  /** Calls `fn` with the upstream's answer before it is sent (the request is forwarded buffered). */
  onResponse(req: IncomingMessage, fn: ResponseHook): void
  /** Answers with an OCI error body. */
  error(
    res: ServerResponse,
    status: number,
    code: string,
    message: string,
    detail?: unknown,
    headers?: Record<string, string>
  ): true
  /** Status and Docker-Content-Digest of a manifest HEAD upstream. */
  headManifest(repo: string, ref: string): Promise<{ status: number; digest?: string }>
  /** Manifests in `repo` whose `subject` is `digest`, as referrers descriptors. */
  referrers(repo: string, digest: string): Promise<ReferrerDescriptor[]>
  /** Whether `repo` exists (created by hand, or holding anything upstream). */
  repoExists(repo: string): boolean
  note(e: ProfileEvent): void
}

export interface Buffered {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: Buffer
}

export type ResponseHook = (r: Buffered) => void | Promise<void>

/** Returns true once it has answered the request. */
export type ProfileRule = (
  req: IncomingMessage,
  res: ServerResponse,
  route: Route,
  ctx: ProfileContext
) => boolean | Promise<boolean>

export interface ManifestDoc {
  mediaType?: string
  artifactType?: string
  config?: { mediaType?: string; digest?: string }
  layers?: Array<{ mediaType?: string; digest?: string }>
  manifests?: Array<{ mediaType?: string; digest?: string; platform?: unknown }>
  subject?: { mediaType?: string; digest?: string; size?: number }
  annotations?: Record<string, string>
}

export interface ReferrerDescriptor {
  mediaType: string
  digest: string
  size: number
  artifactType?: string
  annotations?: Record<string, string>
}

export interface AuthSpec {
  scheme: 'bearer' | 'basic'
  /** Bearer: the token endpoint's path (on the registry's host unless `separateHost`). */
  realmPath?: string
  /** The token server is a host of its own (Docker Hub's auth.docker.io). */
  separateHost?: boolean
  service?: string
  /** The challenge names the scope the request needs. */
  scopeInChallenge?: boolean
  /** A challenge scope the registry always names (Gitea's "*"). */
  fixedScope?: string
  /** Basic: the challenge as the registry sends it. */
  basicChallenge?: (origin: string) => string
  /** Which fields carry the token in the token server's answer. */
  tokenFields?: Array<'token' | 'access_token'>
  /** The 401 body with the challenge. */
  unauthorized?: { code: string; message: string }
  /** The 401 body is this text (text/plain), not an OCI error. */
  unauthorizedText?: string
}

export interface ProfileSpec {
  name: ProfileName
  title: string
  auth: AuthSpec
  defaults: RepoOptions
  /** Headers added to every answer (Google's large headers, say). */
  headers?: (route: Route, req: IncomingMessage) => Record<string, string>
  rules: ProfileRule[]
}

export interface RegistryProfile {
  name: ProfileName
  title: string
  /** 127.0.0.1:PORT: the registry name the action sees. */
  host: string
  url: string
  user: string
  password: string
  /** Accepted in place of the password, and as the OAuth2 refresh token. */
  identityToken: string
  proxy: TestProxy
  spec: ProfileSpec
  events: ProfileEvent[]
  tokenRequests: Array<{ method: string; status: number; scopes: string[] }>
  /** Switches for the repositories whose name starts with `prefix`. */
  configure(prefix: string, o: RepoOptions): void
  optionsFor(repo: string): RepoOptions
  /** Creates a repository where they must exist before a push (ECR). */
  createRepository(name: string): void
  count(kind: string, repo?: string): number
  /** The first event of `kind` (for `repo`, if given): at once if there is one, else when noted. */
  waitFor(kind: string, repo?: string): Promise<ProfileEvent>
  stop(): Promise<void>
}

export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json'
export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
export const DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json'
export const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json'

export function parseRoute(u: URL): Route {
  const p = u.pathname
  const q = u.searchParams
  let m: RegExpExecArray | null
  if (p === '/v2/' || p === '/v2') return { kind: 'base', query: q }
  if ((m = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(p)))
    return { kind: 'manifest', repo: m[1], ref: m[2], query: q }
  if ((m = /^\/v2\/(.+)\/blobs\/uploads\/([^/]*)$/.exec(p)))
    return { kind: 'upload', repo: m[1], ref: m[2] || undefined, query: q }
  if ((m = /^\/v2\/(.+)\/blobs\/([^/]+)$/.exec(p)))
    return { kind: 'blob', repo: m[1], ref: m[2], query: q }
  if ((m = /^\/v2\/(.+)\/tags\/list$/.exec(p))) return { kind: 'tags', repo: m[1], query: q }
  if ((m = /^\/v2\/(.+)\/referrers\/([^/]+)$/.exec(p)))
    return { kind: 'referrers', repo: m[1], ref: m[2], query: q }
  return { kind: 'other', query: q }
}

export const isDigestRef = (ref: string | undefined): boolean => !!ref && /^[a-z0-9]+:/.test(ref)

export const sha256 = (b: Buffer | string): string =>
  `sha256:${createHash('sha256').update(b).digest('hex')}`
