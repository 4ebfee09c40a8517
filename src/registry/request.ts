// The one path every registry request takes: scheme, credentials, redirects, 401 refresh,
// retries, the concurrency limiter, body caps and errors are decided here and nowhere else.
import { setMaxListeners } from 'node:events'
import type { Readable } from 'node:stream'
import { apiHost, isLoopback, repoName, type Repository } from '../core/reference.js'
import { Limiter } from '../util/limiter.js'
import { Authenticator } from './auth.js'
import type { CredentialStore } from './credentials.js'
import {
  adviceFor,
  describeErrorBody,
  isRetryableStatus,
  RegistryError,
  type RegistryErrorDetails
} from './errors.js'
import { RetryPolicy, retryAfterMs, type Failure, type RetryOptions } from './retry.js'
import {
  BodyTooLargeError,
  describeFailure,
  discardBody,
  header,
  isConnectionRefused,
  isTimeout,
  isTransientError,
  ProxyError,
  readBody,
  readErrorBody,
  Transport,
  type Body,
  type Exchange,
  type Headers,
  type Method,
  type TransportOptions
} from './transport.js'

export interface RequestPathOptions extends TransportOptions, RetryOptions {
  credentials: CredentialStore
  onSecret?: (secret: string) => void
  /** Called for every retry, for logs; `url` is always a full URL. */
  onRetry?: (info: { url: string; attempt: number; delayMs: number; reason: string }) => void
  /** Called with each response's headers (rate-limit figures). */
  onResponse?: (url: string, headers: Headers) => void
}

/** What the caller wants of a successful body: bytes up to a cap, the stream itself, or nothing. */
export type Read = { maxBytes: number; limitName: string } | 'stream' | 'none'

/** An upload session opened for one attempt, and how to give it up when the attempt fails. */
export interface Session {
  url: string
  abandon(): Promise<void>
}

export interface RegistryRequest {
  /** The registry whose rules apply, and the repository named in messages. */
  repo: Repository
  method: Method
  /** A path on the registry ("/v2/...") or an absolute URL (an upload Location, a Link). */
  url: string
  /** What is asked for, for messages: "manifest reg/app:1", "blob sha256:...". */
  what: string
  /** Names the whole operation in messages, in place of method and `what` (or method and path,
   * in retry messages): "copy of blob ... from ... to ...". */
  label?: string
  /** Statuses returned to the caller; 'any' returns every status that is not retried. */
  expect: readonly number[] | 'any'
  headers?: Record<string, string>
  /** Opens the body of one attempt; called again on each retry (a stream is reopened). */
  body?: (attempt: number) => Body | Promise<Body>
  /** Opens the upload session one attempt PUTs into; a failed attempt abandons it. */
  session?: (attempt: number) => Promise<Session>
  read?: Read
  /** A token request: Basic credentials go to the realm's origin only, and a 401 is final. */
  token?: { credential?: string }
  /** Best effort: a single attempt, no retry (cancelling an upload session). */
  once?: boolean
  /**
   * A tag push or its rollback: it may run a little past the deadline, so that a run that
   * started moving tags can finish, or put them back, rather than leave them split.
   */
  final?: boolean
  /**
   * Not counted by the limiter: token requests (made while copies hold every slot, waiting for
   * that very token) and the source GET of a streamed copy, whose PUT already holds a slot.
   */
  unlimited?: boolean
}

/** Sends a request along the one request path. */
export type Send = (r: RegistryRequest) => Promise<RegistryResponse>

export interface RegistryResponse {
  status: number
  headers: Headers
  /** The URL that answered, after redirects. */
  url: string
  body: Uint8Array
  /** With read: 'stream', the body to consume. */
  stream?: Readable
}

/** One attempt's answer when its status was not what the caller expects. */
interface Refusal {
  status: number
  headers: Headers
  url: URL
  body: Uint8Array
  /** The credentials' generation the request went with, for the 401 refresh. */
  generation: number
}

const MAX_REDIRECTS = 5
/** How long tag pushes, and putting tags back, may run past the deadline. */
const FINAL_GRACE_MS = 20_000
/** Attempts that time out (a registry that accepts connections but does not answer) are retried at most this often. */
const MAX_TIMEOUT_RETRIES = 4
const REDIRECTS = new Set([301, 302, 303, 307, 308])
const TLS_HINT = /HTTP request to an HTTPS server/i

export class RequestPath {
  readonly auth: Authenticator
  retryCount = 0
  private readonly transport: Transport
  private readonly retry: RetryPolicy
  private readonly limiter: Limiter
  private readonly schemes = new Map<string, 'http' | 'https'>()
  /** Aborted when the step's budget runs out: every exchange and body read stops then. */
  private readonly expired?: AbortSignal
  /** The same, a little later, for tag pushes and their rollback (requests marked `final`). */
  private readonly expiredFinal?: AbortSignal

  constructor(private readonly opts: RequestPathOptions) {
    this.transport = new Transport(opts)
    this.retry = new RetryPolicy(opts)
    // A wall clock for a real deadline; tests that bring their own clock get none.
    if (opts.deadline !== undefined && !opts.now) {
      const left = Math.max(0, opts.deadline - Date.now())
      this.expired = AbortSignal.timeout(left)
      this.expiredFinal = AbortSignal.timeout(left + FINAL_GRACE_MS)
      // Every exchange in flight listens to them: dozens at once is expected, not a leak.
      setMaxListeners(0, this.expired, this.expiredFinal)
    }
    this.limiter = new Limiter(opts.maxConcurrency)
    this.auth = new Authenticator((r) => this.send(r), opts.credentials, opts.onSecret)
  }

  get requestCount(): number {
    return this.transport.requestCount
  }

  close(): Promise<void> {
    return this.transport.close()
  }

  /** Docker talks plain HTTP to loopback registries first; everything else is HTTPS. */
  origin(registry: string): string {
    const scheme = this.schemes.get(registry) ?? (isLoopback(registry) ? 'http' : 'https')
    return `${scheme}://${apiHost(registry)}`
  }

  /** Sends `r`, retrying transient failures within the budget; anything unexpected throws. */
  async send(r: RegistryRequest): Promise<RegistryResponse> {
    let refreshed = false
    let switched = false
    let unauthorized = 0
    let timeouts = 0
    const stop = r.final ? this.expiredFinal : this.expired
    for (let attempt = 0; ;) {
      const session = r.session && (await r.session(attempt))
      const url = this.resolve(r, session?.url ?? r.url)
      const generation = this.auth.generation(r.repo.registry)
      let out: RegistryResponse | Refusal
      try {
        out = await this.limited(r, () => this.attempt(r, url, attempt, generation, stop))
      } catch (e) {
        if (stop?.aborted) throw this.outOfTime(r, url, e)
        await session?.abandon()
        // A refused connection gets one more try (a registry restarting), not a whole backoff;
        // a registry that does not answer gets a few, not every retry at a minute each.
        if (!isTransientError(e) || (isConnectionRefused(e) && attempt > 0))
          throw this.failure(r, url, e)
        if (isTimeout(e) && ++timeouts > Math.min(this.opts.retries, MAX_TIMEOUT_RETRIES))
          throw this.silent(r, url, timeouts, e)
        await this.backOff(r, url, attempt++, { reason: describeFailure(e), cause: e })
        continue
      }
      if (!('generation' in out)) return out
      await session?.abandon()
      if (out.status === 401 && !r.token && this.isRegistry(r, out.url)) {
        // Another request may have renewed the credentials meanwhile: then just try again.
        const renewed = this.auth.generation(r.repo.registry) !== out.generation
        if (renewed && ++unauthorized < 4) continue
        // A request that went with credentials gets them refreshed once; then the 401 is final.
        if (out.generation > 0) {
          if (refreshed) throw this.auth.refusal(r.repo.registry, r.repo.repository, this.where(r))
          refreshed = true
        }
        const challenge = header(out.headers, 'www-authenticate')
        await this.auth.refresh(r.repo.registry, out.generation, challenge, r.repo.repository)
        continue
      }
      if (!switched && (await this.speaksTls(r, out.url, out))) {
        // Decided by the scheme this request went with, so concurrent requests all switch.
        this.schemes.set(r.repo.registry, 'https')
        switched = true
        continue
      }
      if (isRetryableStatus(out.status)) {
        const hintedMs = retryAfterMs(header(out.headers, 'retry-after'), this.retry.now())
        await this.backOff(r, url, attempt++, { ...this.statusText(out), hintedMs })
        continue
      }
      throw this.refused(r, out)
    }
  }

  private limited<T>(r: RegistryRequest, fn: () => Promise<T>): Promise<T> {
    return r.unlimited ? fn() : this.limiter.run(fn)
  }

  /** A path resolves against the registry's origin; an absolute URL on its old origin follows a TLS switch. */
  private resolve(r: RegistryRequest, target: string): URL {
    const origin = this.origin(r.repo.registry)
    const url = new URL(target, origin + '/')
    if (!r.token && url.protocol === 'http:' && url.origin === origin.replace(/^https:/, 'http:'))
      url.protocol = new URL(origin).protocol
    return url
  }

  private isRegistry(r: RegistryRequest, url: URL): boolean {
    return url.origin === this.origin(r.repo.registry)
  }

  /** One attempt, redirects included: the response, or the refusal to decide on. */
  private async attempt(
    r: RegistryRequest,
    start: URL,
    attempt: number,
    generation: number,
    stop: AbortSignal | undefined
  ): Promise<RegistryResponse | Refusal> {
    const timeout = this.retry.timeoutFor(attempt, this.opts.requestTimeoutMs)
    const body = await r.body?.(attempt)
    let url = start
    try {
      for (let hop = 0; ; hop++) {
        const ex = await this.transport.exchange(
          r.method,
          url,
          this.headersFor(r, url),
          body,
          timeout,
          stop
        )
        this.opts.onResponse?.(url.toString(), ex.headers)
        const location = header(ex.headers, 'location')
        if (this.follows(r, ex.status) && location) {
          await discardBody(ex, timeout)
          if (hop >= MAX_REDIRECTS)
            throw this.error(r, `too many redirects (over ${MAX_REDIRECTS})`)
          url = this.redirectTarget(r, url, location)
          continue
        }
        if (r.expect === 'any' ? !isRetryableStatus(ex.status) : r.expect.includes(ex.status))
          return await this.accept(r, ex, url, timeout)
        const refusal = await readErrorBody(ex, timeout)
        return { status: ex.status, headers: ex.headers, url, body: refusal, generation }
      }
    } finally {
      // A registry that answers before reading a streamed body leaves its source open.
      if (isStream(body) && !body.readableEnded) body.destroy()
    }
  }

  /**
   * The Authorization header for `url`, set here and nowhere else: the registry's credentials go
   * to the registry's own origin only, a token request's to the realm it was sent to, and no
   * redirect or upload Location on another origin gets any.
   */
  private headersFor(r: RegistryRequest, url: URL): Record<string, string> {
    const credential = r.token
      ? url.origin === new URL(r.url).origin && r.token.credential
      : this.isRegistry(r, url) && this.auth.credential(r.repo.registry)
    return credential ? { ...r.headers, authorization: credential } : { ...r.headers }
  }

  /** Redirects are followed for reads only, unless the caller wants to see them. */
  private follows(r: RegistryRequest, status: number): boolean {
    if (!REDIRECTS.has(status)) return false
    if (r.expect !== 'any' && r.expect.includes(status)) return false
    return r.method === 'GET' || r.method === 'HEAD'
  }

  private redirectTarget(r: RegistryRequest, from: URL, location: string): URL {
    let next: URL
    try {
      next = new URL(location, from)
    } catch {
      throw this.error(r, `the registry redirected to an invalid URL`)
    }
    if (next.protocol !== 'https:' && next.protocol !== 'http:')
      throw this.error(
        r,
        `the registry redirected to a ${next.protocol} URL, which is not followed`
      )
    return next
  }

  private async accept(
    r: RegistryRequest,
    ex: Exchange,
    url: URL,
    timeout: number
  ): Promise<RegistryResponse> {
    const out = { status: ex.status, headers: ex.headers, url: url.toString() }
    const read = r.read ?? 'none'
    if (read === 'stream') return { ...out, body: new Uint8Array(), stream: ex.body }
    if (read === 'none' || r.method === 'HEAD') {
      await discardBody(ex, timeout)
      return { ...out, body: new Uint8Array() }
    }
    try {
      return { ...out, body: await readBody(ex, read.maxBytes, timeout) }
    } catch (e) {
      if (!(e instanceof BodyTooLargeError)) throw e
      throw this.error(
        r,
        `${r.what} on registry ${r.repo.registry} is larger than ${mib(read.maxBytes)}, the limit for ${read.limitName}`,
        { cause: e }
      )
    }
  }

  /**
   * Whether a 400 to a loopback registry over plain HTTP is Go's answer to HTTP on a TLS port. A
   * HEAD answer has no body to tell by, so /v2/ is asked with a GET.
   */
  private async speaksTls(r: RegistryRequest, url: URL, out: Refusal): Promise<boolean> {
    if (out.status !== 400 || r.token || url.protocol !== 'http:') return false
    if (!isLoopback(r.repo.registry) || url.host !== apiHost(r.repo.registry)) return false
    // Another request found the registry speaking TLS after this one was sent over HTTP.
    if (this.origin(r.repo.registry).startsWith('https:')) return true
    if (TLS_HINT.test(Buffer.from(out.body).toString('utf8'))) return true
    if (r.method !== 'HEAD') return false
    const probe = await this.send({
      repo: r.repo,
      method: 'GET',
      url: `${url.origin}/v2/`,
      what: 'GET /v2/',
      expect: 'any',
      read: { maxBytes: 64 * 1024, limitName: 'error bodies' }
    }).catch(() => undefined)
    return !!probe && TLS_HINT.test(Buffer.from(probe.body).toString('utf8'))
  }

  private async backOff(
    r: RegistryRequest,
    url: URL,
    attempt: number,
    failure: Failure & { cause?: unknown }
  ): Promise<void> {
    const what = `${r.label ?? `${r.method} ${url.pathname}`} on ${url.host}`
    const details = { ...this.details(r), status: failure.status, cause: failure.cause }
    if (r.once) throw new RegistryError(`${what} failed: ${failure.reason}`, details)
    const delayMs = this.retry.delayAfter(attempt, failure, what, details)
    this.retryCount++
    this.opts.onRetry?.({
      url: url.toString(),
      attempt: attempt + 1,
      delayMs,
      reason: failure.reason
    })
    await this.retry.sleep(delayMs)
  }

  private statusText(out: Refusal): {
    reason: string
    status: number
    code?: string
    detail?: string
  } {
    const { code, text, detail } = describeErrorBody(Buffer.from(out.body).toString('utf8'))
    const reason = `HTTP ${out.status}${text ? ` (${text})` : ''}`
    return { reason, status: out.status, code, detail }
  }

  /** "app/x (GET /v2/app/x/manifests/1)", for network errors. */
  private where(r: RegistryRequest): string {
    return `${repoName(r.repo)} (${r.method} ${r.url.split('?')[0]})`
  }

  private details(r: RegistryRequest): RegistryErrorDetails {
    return { registry: r.repo.registry, repository: r.repo.repository, request: this.asked(r) }
  }

  /** "GET manifest app:1", or the caller's label. */
  private asked(r: RegistryRequest): string {
    return r.label ?? `${r.method} ${r.what}`
  }

  private error(
    r: RegistryRequest,
    message: string,
    more: RegistryErrorDetails = {}
  ): RegistryError {
    return new RegistryError(message, { ...this.details(r), ...more })
  }

  /** A status the caller did not expect, not worth retrying. */
  private refused(r: RegistryRequest, out: Refusal): RegistryError {
    const { reason, status, code, detail } = this.statusText(out)
    const error = this.error(r, `${this.asked(r)} in ${repoName(r.repo)} failed: ${reason}`, {
      status,
      code,
      detail
    })
    const advice = adviceFor(error, r.method)
    if (advice) error.message += `: ${advice}`
    return error
  }

  /** Attempt after attempt timed out: the registry takes connections but does not answer. */
  private silent(r: RegistryRequest, url: URL, attempts: number, e: unknown): RegistryError {
    const who = r.token ? `token server ${url.host}` : `registry ${r.repo.registry}`
    return this.error(
      r,
      `${this.asked(r)} in ${repoName(r.repo)}: ${who} did not answer in time, ${attempts} times (${seconds(this.opts.requestTimeoutMs)} each); last error: ${describeFailure(e)}`,
      { cause: e }
    )
  }

  private outOfTime(r: RegistryRequest, url: URL, e: unknown): RegistryError {
    const who = r.token
      ? `token server ${url.host} of registry ${r.repo.registry}`
      : `registry ${r.repo.registry}`
    return this.error(
      r,
      `${this.asked(r)} in ${repoName(r.repo)}: the step's time budget (input timeout) ran out while waiting for ${who}`,
      { cause: e }
    )
  }

  /** A failure that is not an HTTP status: TLS, an unreachable host, or one of our own errors. */
  private failure(r: RegistryRequest, url: URL, e: unknown): Error {
    if (e instanceof RegistryError) return e
    // Worded by the transport: it names the proxy and the host it was to reach.
    if (e instanceof ProxyError)
      return this.error(r, `${this.asked(r)} in ${repoName(r.repo)}: ${e.message}`, { cause: e })
    const err = e as {
      code?: string
      message?: string
      cause?: { code?: string; message?: string }
    }
    const code = err.cause?.code ?? err.code ?? ''
    const msg = err.cause?.message ?? err.message ?? String(e)
    const host = r.token
      ? `token server ${url.host} of registry ${r.repo.registry}`
      : `registry ${r.repo.registry}`
    if (/CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO_VERIFY/i.test(code + msg)) {
      return this.error(
        r,
        `TLS error talking to ${host} for ${this.where(r)}: ${msg}. Trust its CA with NODE_EXTRA_CA_CERTS, or list it in insecure-registries`,
        { cause: e }
      )
    }
    return this.error(
      r,
      `cannot reach ${host} for ${this.where(r)}: ${code ? code + ' ' : ''}${msg}`,
      {
        cause: e
      }
    )
  }
}

function isStream(body: Body | undefined): body is Readable {
  return body !== undefined && typeof body !== 'string' && !(body instanceof Uint8Array)
}

function seconds(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${Math.round(ms / 1000)} s`
}

function mib(bytes: number): string {
  return `${bytes / 1024 / 1024} MiB`
}
