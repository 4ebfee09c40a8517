// One error for everything a registry refused or failed to answer, carrying what was asked of
// which registry; what a status means lives here as named predicates, not as numbers elsewhere.

export interface RegistryErrorDetails {
  /** The HTTP status, when the registry answered. */
  status?: number
  /** The registry's error code (OCI `errors[0].code`), when it sent one. */
  code?: string
  /** The error's `detail`, as text, when it sent one (Artifactory hides its 403 there). */
  detail?: string
  /** The registry host as the user wrote it ("ghcr.io", "127.0.0.1:5000"). */
  registry?: string
  repository?: string
  /** What was asked, for messages and logs: "GET manifest app:1", "token request". */
  request?: string
  cause?: unknown
}

export class RegistryError extends Error {
  readonly status?: number
  readonly code?: string
  readonly detail?: string
  readonly registry?: string
  readonly repository?: string
  readonly request?: string

  constructor(message: string, details: RegistryErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause })
    this.name = new.target.name
    this.status = details.status
    this.code = details.code
    this.detail = details.detail
    this.registry = details.registry
    this.repository = details.repository
    this.request = details.request
  }
}

/** The details of `e`, to carry into an error that words the same failure better. */
export function detailsOf(e: RegistryError): RegistryErrorDetails {
  const { status, code, detail, registry, repository, request } = e
  return { status, code, detail, registry, repository, request, cause: e }
}

/** Retries or the step's time budget ran out on a transient failure. */
export class RetriesExhaustedError extends RegistryError {
  constructor(
    message: string,
    details: RegistryErrorDetails,
    readonly attempts: number,
    readonly budgetExhausted: boolean
  ) {
    super(message, details)
  }
}

function statusOf(e: unknown): number | undefined {
  return e instanceof RegistryError ? e.status : undefined
}

/** The registry answered 404: no such manifest, blob, repository or endpoint. */
export function isNotFound(e: unknown): boolean {
  return statusOf(e) === 404
}

/**
 * A tag or manifest that is not there: 404, or 403 as Artifactory answers for a tag that does not
 * exist. Only for reads where absence is an expected answer (a tag check, a fallback tag).
 */
export function isAbsent(e: unknown): boolean {
  const s = statusOf(e)
  return s === 404 || s === 403
}

/** The registry refused the credentials (or their absence) after a fresh token. */
export function isUnauthorized(e: unknown): boolean {
  return statusOf(e) === 401
}

/** The credentials are valid but may not do this. */
export function isDenied(e: unknown): boolean {
  return statusOf(e) === 403
}

/** 429, or Docker Hub's TOOMANYREQUESTS code. */
export function isRateLimited(e: unknown): boolean {
  return statusOf(e) === 429 || (e instanceof RegistryError && e.code === 'TOOMANYREQUESTS')
}

/**
 * A tag PUT refused because the tag may not move: 403 or 409 (Artifactory, no overwrite
 * permission), 412 (Harbor immutable tags), 400 TAG_INVALID (ECR immutable tags), and
 * Artifactory's other answer, 400 MANIFEST_INVALID with detail "HTTP 403 Forbidden"
 * (sigstore/cosign#3758, GoogleContainerTools/kaniko#1095). A 403 may also mean the credentials
 * cannot push at all: the caller tells the two apart.
 */
export function isTagConflict(e: unknown): boolean {
  const s = statusOf(e)
  return (
    s === 403 ||
    s === 409 ||
    (s === 412 && !isPolicyViolation(e)) ||
    (s === 400 && e instanceof RegistryError && e.code === 'TAG_INVALID') ||
    isForbiddenAsInvalid(e)
  )
}

/** Artifactory's 400 MANIFEST_INVALID whose detail is a 403: a refusal, worded as a bad manifest. */
export function isForbiddenAsInvalid(e: unknown): boolean {
  return (
    e instanceof RegistryError &&
    e.status === 400 &&
    e.code === 'MANIFEST_INVALID' &&
    /^HTTP 403\b|\b403 Forbidden\b/i.test(e.detail ?? '')
  )
}

/**
 * Harbor's 412 PROJECTPOLICYVIOLATION: a project policy (vulnerability severity, unsigned
 * artifacts) blocks pulling the artifact (goharbor/harbor#15885, #19408).
 */
export function isPolicyViolation(e: unknown): boolean {
  return statusOf(e) === 412 && e instanceof RegistryError && e.code === 'PROJECTPOLICYVIOLATION'
}

/**
 * The repository does not exist and the registry does not create it on push: ECR's
 * 404 NAME_UNKNOWN "The repository with name '...' does not exist in the registry with id '...'"
 * (actions/starter-workflows#2647, regclient/regclient#869).
 */
export function isRepositoryMissing(e: unknown): boolean {
  return statusOf(e) === 404 && e instanceof RegistryError && e.code === 'NAME_UNKNOWN'
}

/** Any 4xx: the registry refused the request as asked (a mount it will not do, say). */
export function isRefused(e: unknown): boolean {
  const s = statusOf(e)
  return s !== undefined && s >= 400 && s < 500
}

/** An endpoint the registry does not implement (the referrers API): 404, 400 or 405. */
export function isUnsupported(e: unknown): boolean {
  const s = statusOf(e)
  return s === 404 || s === 400 || s === 405
}

/** Statuses worth another attempt: the registry or something before it is briefly unwell. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || (status >= 500 && status <= 504 && status !== 501)
}

/**
 * The first OCI error of a registry error body: its code, `code: message` as text, and its
 * detail as text. A body that is not an OCI error (Docker Hub's "Too Many Requests (HAP429).",
 * an HTML page from a proxy) gives its first 300 characters as text.
 */
export function describeErrorBody(body: string): { code?: string; text: string; detail?: string } {
  try {
    const doc = JSON.parse(body) as {
      errors?: Array<{ code?: unknown; message?: unknown; detail?: unknown }>
    }
    const e = Array.isArray(doc?.errors) ? doc.errors[0] : undefined
    if (e && typeof e === 'object') {
      const code = typeof e.code === 'string' ? e.code.slice(0, 100) : undefined
      const message = typeof e.message === 'string' ? e.message.slice(0, 300) : undefined
      const detail = detailText(e.detail)
      const text = [code, message].filter(Boolean).join(': ')
      const shown = detail && !text.includes(detail) ? ` (${detail})` : ''
      return { code, text: text + shown, detail }
    }
  } catch {
    // not JSON: fall through to the raw text
  }
  const text = body.trim().slice(0, 300)
  return { text }
}

/** An error's detail as text: a string, Artifactory's `{"description": ...}`, or its JSON. */
function detailText(detail: unknown): string | undefined {
  if (detail === undefined || detail === null) return undefined
  if (typeof detail === 'string') return detail.slice(0, 300) || undefined
  // Artifactory puts its reason in detail.description, Quay in detail.message.
  const { description, message } = detail as { description?: unknown; message?: unknown }
  if (typeof description === 'string') return description.slice(0, 300)
  if (typeof message === 'string') return message.slice(0, 300)
  const json = JSON.stringify(detail)
  return json && json !== '{}' && json !== '[]' ? json.slice(0, 300) : undefined
}

/**
 * The registry refused a manifest's content, not the write itself: a 400 or 404 that names no
 * other cause (a missing blob, child or repository, a tag that may not move, a denial), a 415,
 * or a 501 (Gitea's "Schema version is not supported" for OCI artifacts, go-gitea/gitea#25846).
 */
export function isContentRefused(e: unknown): e is RegistryError {
  if (!(e instanceof RegistryError) || isForbiddenAsInvalid(e)) return false
  const other = ['TAG_INVALID', 'MANIFEST_BLOB_UNKNOWN', 'BLOB_UNKNOWN', 'NAME_UNKNOWN', 'DENIED']
  if (e.code && other.includes(e.code)) return false
  return e.status === 400 || e.status === 404 || e.status === 415 || e.status === 501
}

/**
 * What the user can do about a refusal whose meaning is known from its code, for the message;
 * undefined when the status and the registry's own words are all there is to say.
 */
export function adviceFor(e: RegistryError, method: string): string | undefined {
  const repo = e.repository ? `repository ${e.repository}` : 'the repository'
  const where = e.registry ? ` on ${e.registry}` : ''
  if (isPolicyViolation(e))
    return `a project policy of this Harbor registry (vulnerability severity or unsigned artifacts) blocks pulling it; fix or sign the image, or ask a project admin to change the policy`
  if (isRepositoryMissing(e) && method !== 'GET' && method !== 'HEAD')
    return `${repo} does not exist${where}, and this registry does not create repositories on push (Amazon ECR, for one): create it first`
  if (isForbiddenAsInvalid(e))
    return `the registry refused the write (HTTP 403 inside a 400): the credentials lack overwrite (delete) permission, as Artifactory reports it`
  return undefined
}
