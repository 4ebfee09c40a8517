// HTTP transport: keep-alive pools per origin (undici), bounded concurrency, retries with backoff.
import { Agent, request, type Dispatcher } from 'undici'
import { Limiter } from '../util/limiter.js'

export interface TransportOptions {
  maxConcurrency: number
  /** Retries after the first attempt for transient failures (429, 5xx, resets, timeouts). */
  retries: number
  /** Per-request timeout for headers and for gaps in a body, in milliseconds. */
  requestTimeoutMs: number
  /** Hosts whose TLS certificates are not verified (the user's `insecure-registries`). */
  insecureHosts: Set<string>
  /** Longest wait honoured from Retry-After, and the cap of the exponential backoff. */
  maxRetryDelayMs?: number
  baseDelayMs?: number
  /** Called for every retry, for logs and counters. */
  onRetry?: (info: { url: string; attempt: number; delayMs: number; reason: string }) => void
  /** Called with each response's headers (rate-limit figures). */
  onResponse?: (url: string, headers: Record<string, string | string[] | undefined>) => void
  sleep?: (ms: number) => Promise<void>
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

/** Delay from a Retry-After header (seconds or HTTP date), or undefined. */
export function retryAfterMs(value: string | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000
  const t = Date.parse(value)
  return Number.isNaN(t) ? undefined : Math.max(0, t - now)
}

export function isTransientError(e: unknown): boolean {
  const code = (e as { code?: string })?.code
  if (code && RETRY_CODES.has(code)) return true
  const cause = (e as { cause?: { code?: string } })?.cause
  return !!cause?.code && RETRY_CODES.has(cause.code)
}

export class Transport {
  readonly limiter: Limiter
  private readonly secure: Agent
  private readonly insecure: Agent
  retryCount = 0
  requestCount = 0

  constructor(readonly opts: TransportOptions) {
    this.limiter = new Limiter(opts.maxConcurrency)
    const common = {
      keepAliveTimeout: 30_000,
      connections: opts.maxConcurrency,
      headersTimeout: opts.requestTimeoutMs,
      bodyTimeout: opts.requestTimeoutMs
    }
    this.secure = new Agent(common)
    this.insecure = new Agent({ ...common, connect: { rejectUnauthorized: false } })
  }

  private dispatcherFor(url: string): Agent {
    const u = new URL(url)
    return u.protocol === 'https:' && this.opts.insecureHosts.has(u.host)
      ? this.insecure
      : this.secure
  }

  /** One attempt, body left as a stream: the caller must consume or dump it. */
  async sendOnce(
    req: Omit<HttpRequest, 'body'> & { body?: HttpRequest['body'] | NodeJS.ReadableStream }
  ): Promise<StreamResponse> {
    this.requestCount++
    const res = await request(req.url, {
      method: req.method,
      headers: req.headers,
      body: req.body as Dispatcher.DispatchOptions['body'],
      dispatcher: this.dispatcherFor(req.url)
    })
    this.opts.onResponse?.(req.url, res.headers)
    return Object.assign(res, { url: req.url })
  }

  /** Sends a replayable request, buffering the body, retrying transient failures. */
  async send(req: HttpRequest, maxBodyBytes = 64 * 1024 * 1024): Promise<HttpResponse> {
    return this.withRetries(req.url, async () => {
      return this.limiter.run(async () => {
        const res = await this.sendOnce(req)
        const body =
          req.method === 'HEAD' ? new Uint8Array() : await readCapped(res, maxBodyBytes, req.url)
        if (req.method === 'HEAD') await res.body.dump()
        return { status: res.statusCode, headers: res.headers, body, url: req.url }
      })
    })
  }

  /**
   * Runs `attempt` again on transient failures. An attempt signals a retryable HTTP status by
   * returning a response with that status; errors from the network are retried by their code.
   */
  async withRetries<T extends { status: number; headers: HttpResponse['headers'] }>(
    url: string,
    attempt: () => Promise<T>
  ): Promise<T> {
    const base = this.opts.baseDelayMs ?? 500
    const cap = this.opts.maxRetryDelayMs ?? 30_000
    const sleep = this.opts.sleep ?? ((ms: number) => new Promise((r) => setTimeout(r, ms)))
    for (let i = 0; ; i++) {
      let reason: string
      let hinted: number | undefined
      try {
        const res = await attempt()
        if (!RETRY_STATUS.has(res.status) || i >= this.opts.retries) return res
        reason = `HTTP ${res.status}`
        hinted = retryAfterMs(header(res.headers, 'retry-after'))
      } catch (e) {
        if (!isTransientError(e) && !(e instanceof TruncatedBodyError)) throw e
        if (i >= this.opts.retries) throw e
        reason = (e as { code?: string }).code ?? (e as Error).message
      }
      // Full jitter on an exponential backoff; Retry-After wins when the server sends it.
      const backoff = Math.min(cap, base * 2 ** i)
      const delay =
        hinted !== undefined
          ? Math.min(cap, hinted)
          : Math.round(backoff / 2 + (Math.random() * backoff) / 2)
      this.retryCount++
      this.opts.onRetry?.({ url, attempt: i + 1, delayMs: delay, reason })
      await sleep(delay)
    }
  }

  async close(): Promise<void> {
    await Promise.all([this.secure.close(), this.insecure.close()])
  }
}

export class TruncatedBodyError extends Error {}

async function readCapped(
  res: Dispatcher.ResponseData,
  max: number,
  url: string
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
  try {
    for await (const chunk of res.body) {
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
  }
  const body = Buffer.concat(chunks)
  if (!Number.isNaN(declared) && body.length !== declared) {
    throw new TruncatedBodyError(
      `response from ${new URL(url).host} was cut short (${body.length} of ${declared} bytes)`
    )
  }
  return body
}

export class BodyTooLargeError extends Error {}
