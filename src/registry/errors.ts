// One error for everything a registry refused or failed to answer, carrying what was asked of
// which registry; what a status means lives here as named predicates, not as numbers elsewhere.

export interface RegistryErrorDetails {
  /** The HTTP status, when the registry answered. */
  status?: number
  /** The registry's error code (OCI `errors[0].code`), when it sent one. */
  code?: string
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
  readonly registry?: string
  readonly repository?: string
  readonly request?: string

  constructor(message: string, details: RegistryErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause })
    this.name = new.target.name
    this.status = details.status
    this.code = details.code
    this.registry = details.registry
    this.repository = details.repository
    this.request = details.request
  }
}

/** The details of `e`, to carry into an error that words the same failure better. */
export function detailsOf(e: RegistryError): RegistryErrorDetails {
  const { status, code, registry, repository, request } = e
  return { status, code, registry, repository, request, cause: e }
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
 * permission), 412 (Harbor immutable tags), 400 TAG_INVALID (ECR immutable tags). A 403 may also
 * mean the credentials cannot push at all: the caller tells the two apart.
 */
export function isTagConflict(e: unknown): boolean {
  const s = statusOf(e)
  return (
    s === 403 ||
    s === 409 ||
    s === 412 ||
    (s === 400 && e instanceof RegistryError && e.code === 'TAG_INVALID')
  )
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

/** Pulls the first OCI error code and message out of a registry error body. */
export function describeErrorBody(body: string): { code?: string; text: string } {
  try {
    const doc = JSON.parse(body) as {
      errors?: Array<{ code?: string; message?: string; detail?: unknown }>
    }
    const e = doc.errors?.[0]
    if (e) {
      return { code: e.code, text: [e.code, e.message].filter(Boolean).join(': ') }
    }
  } catch {
    // not JSON: fall through to the raw text
  }
  const text = body.trim().slice(0, 300)
  return { text }
}
