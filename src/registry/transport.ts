// HTTP exchanges with undici: keep-alive pools per origin, a timeout per exchange, and body
// reads that never hold more than their cap. No rules about registries here: see request.ts.
import type { Readable } from 'node:stream'
import { Agent, errors, request, type Dispatcher } from 'undici'
import { RegistryError } from './errors.js'

export type Method = 'GET' | 'HEAD' | 'PUT' | 'POST' | 'PATCH' | 'DELETE'
export type Headers = Record<string, string | string[] | undefined>
export type Body = Uint8Array | string | Readable
export type ResponseBody = Dispatcher.ResponseData['body']

export interface Exchange {
  status: number
  headers: Headers
  body: ResponseBody
}

/** Error bodies are kept up to this size; the rest is discarded unread. */
export const MAX_ERROR_BODY_BYTES = 64 * 1024

const TRANSIENT_CODES = new Set([
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

/** The connection broke or stalled mid-body: worth another attempt. */
export class TruncatedBodyError extends Error {
  override name = 'TruncatedBodyError'
}
/** A body over its cap: never retried. */
export class BodyTooLargeError extends Error {
  override name = 'BodyTooLargeError'
}

export function header(h: Headers, name: string): string | undefined {
  const v = h[name.toLowerCase()]
  return Array.isArray(v) ? v[0] : v
}

/** Network failures worth another attempt (resets, timeouts, refused connections). */
export function isTransientError(e: unknown): boolean {
  if (e instanceof TruncatedBodyError) return true
  // Already decided (retries spent on a nested request, a refusal): its cause is history.
  if (e instanceof RegistryError) return false
  const code = (e as { code?: string })?.code
  if (code && TRANSIENT_CODES.has(code)) return true
  const cause = (e as { cause?: { code?: string } })?.cause
  return !!cause?.code && TRANSIENT_CODES.has(cause.code)
}

/** No answer in time (connect, headers or a body gap): a stalled registry, worth few attempts. */
export function isTimeout(e: unknown): boolean {
  const codes = ['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']
  const err = e as { code?: string; cause?: { code?: string } }
  return codes.includes(err?.code ?? '') || codes.includes(err?.cause?.code ?? '')
}

/** Nothing listens at the address: not worth many attempts. */
export function isConnectionRefused(e: unknown): boolean {
  const err = e as { code?: string; cause?: { code?: string } }
  return err?.code === 'ECONNREFUSED' || err?.cause?.code === 'ECONNREFUSED'
}

/** "CODE (message)" for a network error, as retry lines and messages show it. */
export function describeFailure(e: unknown): string {
  const err = e as { code?: string; message?: string; cause?: { code?: string; message?: string } }
  const code = err.code ?? err.cause?.code
  const msg = err.cause?.message ?? err.message ?? String(e)
  return code && !msg.includes(code) ? `${code} (${msg})` : msg
}

export interface TransportOptions {
  /** Sizes the connection pool per origin. */
  maxConcurrency: number
  /** Connect, headers and body-gap timeout of one exchange, in milliseconds. */
  requestTimeoutMs: number
  /** Hosts whose TLS certificates are not verified (the user's `insecure-registries`). */
  insecureHosts: Set<string>
}

export class Transport {
  requestCount = 0
  private readonly secure: Agent
  private readonly insecure: Agent

  constructor(private readonly opts: TransportOptions) {
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

  private dispatcherFor(url: URL): Agent {
    return url.protocol === 'https:' && this.opts.insecureHosts.has(url.host)
      ? this.insecure
      : this.secure
  }

  /** One exchange; the body is left as a stream, which the caller must read or discard. */
  async exchange(
    method: Method,
    url: URL,
    headers: Record<string, string>,
    body: Body | undefined,
    headersTimeout: number,
    /** Aborts the exchange, its body included, whatever stage it is at (the step's deadline). */
    stop?: AbortSignal
  ): Promise<Exchange> {
    this.requestCount++
    // undici's own timers tick about every half second, so a short timeout (or what is left of
    // the budget) gets a native timer too. Not with a streamed body: its upload may take longer.
    const replayable = body === undefined || typeof body === 'string' || body instanceof Uint8Array
    const ac = replayable ? new AbortController() : undefined
    const timer = ac && setTimeout(() => ac.abort(new errors.HeadersTimeoutError()), headersTimeout)
    const signals = [ac?.signal, stop].filter((x): x is AbortSignal => x !== undefined)
    try {
      const res = await request(url, {
        method,
        headers,
        body,
        dispatcher: this.dispatcherFor(url),
        headersTimeout,
        signal: signals.length > 1 ? AbortSignal.any(signals) : signals[0]
      })
      return { status: res.statusCode, headers: res.headers, body: res.body }
    } finally {
      clearTimeout(timer)
    }
  }

  async close(): Promise<void> {
    await Promise.all([this.secure.close(), this.insecure.close()])
  }
}

/**
 * Reads a whole body of at most `max` bytes, failing when no data comes for `gapMs`. Over the cap
 * it stops reading and closes the connection rather than draining what is left.
 */
export async function readBody(ex: Exchange, max: number, gapMs: number): Promise<Uint8Array> {
  const declared = Number(header(ex.headers, 'content-length') ?? NaN)
  if (declared > max) {
    drop(ex.body)
    throw new BodyTooLargeError(`the response is ${declared} bytes, over the ${max}-byte limit`)
  }
  const body = await readUpTo(ex.body, max, gapMs)
  if (body === undefined) throw new BodyTooLargeError(`the response is over the ${max}-byte limit`)
  if (!Number.isNaN(declared) && body.length !== declared) {
    throw new TruncatedBodyError(`the response was cut short (${body.length} of ${declared} bytes)`)
  }
  return body
}

/** The first 64 KiB of an error body; the rest is not read, and its connection is closed. */
export async function readErrorBody(ex: Exchange, gapMs: number): Promise<Uint8Array> {
  const kept = await readUpTo(ex.body, MAX_ERROR_BODY_BYTES, gapMs, true)
  return kept ?? new Uint8Array()
}

/** Stops reading a response and closes its connection; undici's abort error has no one to tell. */
export function drop(stream: Readable): void {
  stream.on('error', () => undefined)
  stream.destroy()
}

/** Reads and forgets a body nobody needs, within the error-body cap. */
export async function discardBody(ex: Exchange, gapMs: number): Promise<void> {
  await readUpTo(ex.body, MAX_ERROR_BODY_BYTES, gapMs, true)
}

/**
 * Reads `stream` up to `max` bytes. Past `max` it destroys the stream and returns the first
 * `max` bytes when `keepHead`, else undefined.
 */
async function readUpTo(
  stream: ResponseBody,
  max: number,
  gapMs: number,
  keepHead = false
): Promise<Uint8Array | undefined> {
  const chunks: Buffer[] = []
  let total = 0
  const gap = setTimeout(() => stream.destroy(new errors.BodyTimeoutError()), gapMs)
  try {
    for await (const chunk of stream) {
      gap.refresh()
      const buf = chunk as Buffer
      if (total + buf.length > max) {
        drop(stream)
        if (!keepHead) return undefined
        chunks.push(buf.subarray(0, max - total))
        return Buffer.concat(chunks)
      }
      total += buf.length
      chunks.push(buf)
    }
  } catch (e) {
    if (isTransientError(e)) throw e
    throw new TruncatedBodyError(
      `the connection broke while reading the response: ${(e as Error).message}`
    )
  } finally {
    clearTimeout(gap)
  }
  return Buffer.concat(chunks)
}
