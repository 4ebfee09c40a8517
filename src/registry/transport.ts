// HTTP transport: keep-alive pools per origin (undici), bounded concurrency, retries with backoff.
import { Agent, errors, request, type Dispatcher } from 'undici'
import { Limiter } from '../util/limiter.js'
import { RegistryError, describeErrorBody } from './errors.js'

export interface TransportOptions {
  maxConcurrency: number
  /** Retries after the first attempt for transient failures (429, 5xx, resets, timeouts). */
  retries: number
  /** Per-request timeout for connecting, for headers and for gaps in a body, in milliseconds. */
  requestTimeoutMs: number
  /** Hosts whose TLS certificates are not verified (the user's `insecure-registries`). */
  insecureHosts: Set<string>
  /**
   * Overall budget (epoch ms): no retry is scheduled whose delay would end past it, and a retry
   * waits for headers no longer than what is left of it. First attempts are not refused, so that
   * a run that is late still finishes what it started (the tags of every repository).
   */
  deadline?: number
  /** Longest wait honoured from Retry-After, and the cap of the exponential backoff. */
  maxRetryDelayMs?: number
  baseDelayMs?: number
  /** Called for every retry, for logs and counters; `url` is always a full URL. */
  onRetry?: (info: { url: string; attempt: number; delayMs: number; reason: string }) => void
  /** Called with each response's headers (rate-limit figures). */
  onResponse?: (url: string, headers: Record<string, string | string[] | undefined>) => void
  sleep?: (ms: number) => Promise<void>
  /** Clock and jitter source, replaceable in tests. */
  now?: () => number
  random?: () => number
}

export interface HttpRequest {
  method: 'GET' | 'HEAD' | 'PUT' | 'POST' | 'PATCH' | 'DELETE'
  url: string
  headers?: Record<string, string>
  /** A replayable body; streamed bodies go through `sendOnce`. */
  body?: Uint8Array | string
}

export interface HttpResponse {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: Uint8Array
  url: string
}

export type StreamResponse = Dispatcher.ResponseData & { url: string }

/** What a retried operation asks for, for messages: method and URL, or a label for composites. */
export interface Operation {
  method: string
  url: string
  label?: string
}

/** What `withRetries` needs to see of an attempt's outcome. */
export interface AttemptResult {
  status: number
  headers: HttpResponse['headers']
  body?: Uint8Array
}

const RETRY_STATUS = new Set([408, 429, 500, 502, 503, 504])
const RETRY_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CLOSED',
  'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH',
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH'
])

export function header(h: HttpResponse['headers'], name: string): string | undefined {
  const v = h[name.toLowerCase()]
  return Array.isArray(v) ? v[0] : v
}

export function isRetryableStatus(status: number): boolean {
  return RETRY_STATUS.has(status)
}

/** Delay from a Retry-After header (seconds or HTTP date), or undefined. */
export function retryAfterMs(value: string | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000
  const t = Date.parse(value)
  return Number.isNaN(t) ? undefined : Math.max(0, t - now)
}

export function isTransientError(e: unknown): boolean {
  if (e instanceof TruncatedBodyError) return true
  const code = (e as { code?: string })?.code
  if (code && RETRY_CODES.has(code)) return true
  const cause = (e as { cause?: { code?: string } })?.cause
  return !!cause?.code && RETRY_CODES.has(cause.code)
}

/** Retries or the time budget ran out; the message names the operation, host and attempts. */
export class RetriesExhaustedError extends RegistryError {
  constructor(
    message: string,
    status: number | undefined,
    readonly attempts: number,
    readonly budgetExhausted: boolean
  ) {
    super(message, status)
  }
}

export class TruncatedBodyError extends Error {}
export class BodyTooLargeError extends Error {}

function describeOperation(op: Operation | string): string {
  if (typeof op === 'string') return `request for ${new URL(op).pathname} on ${new URL(op).host}`
  const u = new URL(op.url)
  return `${op.label ?? `${op.method} ${u.pathname}`} on ${u.host}`
}

function describeFailure(e: unknown): string {
  const err = e as { code?: string; message?: string; cause?: { code?: string; message?: string } }
  const code = err.code ?? err.cause?.code
  const msg = err.cause?.message ?? err.message ?? String(e)
  return code && !msg.includes(code) ? `${code} (${msg})` : msg
}

function describeStatus(res: AttemptResult): string {
  const text = res.body?.length
    ? describeErrorBody(Buffer.from(res.body).toString('utf8')).text
    : ''
  return `HTTP ${res.status}${text ? ` (${text})` : ''}`
}

export class Transport {
  readonly limiter: Limiter
  private readonly secure: Agent
  private readonly insecure: Agent
  private readonly now: () => number
  retryCount = 0
  requestCount = 0

  constructor(readonly opts: TransportOptions) {
    this.limiter = new Limiter(opts.maxConcurrency)
    this.now = opts.now ?? Date.now
    const common = {
      keepAliveTimeout: 30_000,
      // A streamed copy holds one slot but two connections to one origin (source GET paused
      // by backpressure, target PUT), and token requests bypass the limiter: with only one
      // connection per slot, a same-registry copy at full concurrency deadlocks.
      connections: opts.maxConcurrency * 2 + 4,
      headersTimeout: opts.requestTimeoutMs,
      bodyTimeout: opts.requestTimeoutMs
    }
    this.secure = new Agent({ ...common, connect: { timeout: opts.requestTimeoutMs } })
    this.insecure = new Agent({
      ...common,
      connect: { timeout: opts.requestTimeoutMs, rejectUnauthorized: false }
    })
  }

  private dispatcherFor(url: string): Agent {
    const u = new URL(url)
    return u.protocol === 'https:' && this.opts.insecureHosts.has(u.host)
      ? this.insecure
      : this.secure
  }

  /**
   * Headers timeout for attempt `attempt` (0 = first): a retry gets no more than what is left of
   * the budget, so a registry that stalls for good fails near the deadline, not one timeout after.
   */
  headersTimeoutFor(attempt: number): number {
    const { deadline, requestTimeoutMs } = this.opts
    if (attempt === 0 || deadline === undefined) return requestTimeoutMs
    return Math.max(1, Math.min(requestTimeoutMs, deadline - this.now()))
  }

  /** One attempt, body left as a stream: the caller must consume or dump it. */
  async sendOnce(
    req: Omit<HttpRequest, 'body'> & { body?: HttpRequest['body'] | NodeJS.ReadableStream },
    headersTimeout = this.opts.requestTimeoutMs
  ): Promise<StreamResponse> {
    this.requestCount++
    // undici's own timers tick about every half second, so a short timeout (or what is left of
    // the budget) gets a native timer too. Not with a streamed body: its upload may take longer.
    const replayable = typeof req.body === 'string' || req.body instanceof Uint8Array || !req.body
    const ac = replayable ? new AbortController() : undefined
    const timer = ac && setTimeout(() => ac.abort(new errors.HeadersTimeoutError()), headersTimeout)
    let res: Dispatcher.ResponseData
    try {
      res = await request(req.url, {
        method: req.method,
        headers: req.headers,
        body: req.body as Dispatcher.DispatchOptions['body'],
        dispatcher: this.dispatcherFor(req.url),
        headersTimeout,
        signal: ac?.signal
      })
    } finally {
      clearTimeout(timer)
    }
    this.opts.onResponse?.(req.url, res.headers)
    return Object.assign(res, { url: req.url })
  }

  /** Sends a replayable request, buffering the body, retrying transient failures. */
  async send(req: HttpRequest, maxBodyBytes = 64 * 1024 * 1024): Promise<HttpResponse> {
    return this.withRetries(req, async (attempt) => {
      return this.limiter.run(async () => {
        const res = await this.sendOnce(req, this.headersTimeoutFor(attempt))
        if (req.method === 'HEAD') {
          await res.body.dump()
          return {
            status: res.statusCode,
            headers: res.headers,
            body: new Uint8Array(),
            url: req.url
          }
        }
        const body = await readCapped(res, maxBodyBytes, req.url, this.headersTimeoutFor(attempt))
        return { status: res.statusCode, headers: res.headers, body, url: req.url }
      })
    })
  }

  /**
   * Runs `attempt` again on transient failures, with exponential backoff and jitter, or after
   * the server's Retry-After. An attempt signals a retryable HTTP status by returning a response
   * with that status; network errors are retried by their code. When retries or the budget run
   * out, RetriesExhaustedError says which and why.
   */
  async withRetries<T extends AttemptResult>(
    op: Operation | string,
    attempt: (attempt: number) => Promise<T>
  ): Promise<T> {
    const { retries, deadline } = this.opts
    const base = this.opts.baseDelayMs ?? 500
    const cap = this.opts.maxRetryDelayMs ?? 30_000
    const random = this.opts.random ?? Math.random
    const sleep = this.opts.sleep ?? ((ms: number) => new Promise((r) => setTimeout(r, ms)))
    for (let i = 0; ; i++) {
      let reason: string
      let hinted: number | undefined
      let status: number | undefined
      try {
        const res = await attempt(i)
        if (!RETRY_STATUS.has(res.status)) return res
        status = res.status
        reason = describeStatus(res)
        hinted = retryAfterMs(header(res.headers, 'retry-after'), this.now())
      } catch (e) {
        if (!isTransientError(e)) throw e
        reason = describeFailure(e)
      }
      const attempts = i + 1
      const what = describeOperation(op)
      if (i >= retries) {
        throw new RetriesExhaustedError(
          `${what} failed after ${attempts} attempt(s): the retry budget is exhausted (retries: ${retries}); last error: ${reason}`,
          status,
          attempts,
          false
        )
      }
      // Equal jitter on an exponential backoff; Retry-After wins (up to the cap) when sent.
      const backoff = Math.min(cap, base * 2 ** i)
      const delay =
        hinted !== undefined
          ? Math.min(cap, hinted)
          : Math.round(backoff / 2 + (random() * backoff) / 2)
      const left = deadline === undefined ? Infinity : deadline - this.now()
      if (delay >= left) {
        const asked = hinted !== undefined ? ` (the registry asked to wait ${hinted} ms)` : ''
        throw new RetriesExhaustedError(
          `${what} failed after ${attempts} attempt(s): the time budget is exhausted (${Math.max(0, Math.round(left))} ms left, the next retry would wait ${delay} ms${asked}); last error: ${reason}`,
          status,
          attempts,
          true
        )
      }
      this.retryCount++
      this.opts.onRetry?.({
        url: typeof op === 'string' ? op : op.url,
        attempt: attempts,
        delayMs: delay,
        reason
      })
      await sleep(delay)
    }
  }

  async close(): Promise<void> {
    await Promise.all([this.secure.close(), this.insecure.close()])
  }
}

/** Reads a whole body, up to `max` bytes, failing when no data comes for `gapMs`. */
async function readCapped(
  res: Dispatcher.ResponseData,
  max: number,
  url: string,
  gapMs: number
): Promise<Uint8Array> {
  const declared = Number(res.headers['content-length'] ?? NaN)
  if (declared > max) {
    await res.body.dump()
    throw new BodyTooLargeError(
      `response from ${new URL(url).host} is ${declared} bytes, over the ${max}-byte limit`
    )
  }
  const chunks: Buffer[] = []
  let total = 0
  const gap = setTimeout(() => res.body.destroy(new errors.BodyTimeoutError()), gapMs)
  try {
    for await (const chunk of res.body) {
      gap.refresh()
      total += (chunk as Buffer).length
      if (total > max) {
        res.body.destroy()
        throw new BodyTooLargeError(
          `response from ${new URL(url).host} is over the ${max}-byte limit`
        )
      }
      chunks.push(chunk as Buffer)
    }
  } catch (e) {
    if (e instanceof BodyTooLargeError) throw e
    if (isTransientError(e)) throw e
    throw new TruncatedBodyError(
      `connection to ${new URL(url).host} broke while reading the response: ${(e as Error).message}`
    )
  } finally {
    clearTimeout(gap)
  }
  const body = Buffer.concat(chunks)
  if (!Number.isNaN(declared) && body.length !== declared) {
    throw new TruncatedBodyError(
      `response from ${new URL(url).host} was cut short (${body.length} of ${declared} bytes)`
    )
  }
  return body
}
