// HTTP exchanges: HTTP/2 where an HTTPS registry offers it, else HTTP/1.1 on keep-alive
// connections per origin (Node's own clients for both), undici through a proxy; a timeout per
// exchange, the proxy variables, and body reads that never hold more than their cap. No rules
// about registries here: see request.ts.
import type { Readable } from 'node:stream'
import { Http1Pool } from './http1.js'
import { Http2Sessions } from './http2.js'
import { RegistryError } from './errors.js'
import { proxyFor, readProxyEnv, type Proxy, type ProxyEnv } from './proxy.js'
import { bodyTimeout, headersTimeout } from './timeouts.js'
import type { Dispatcher, PoolOptions, ProxyAgent } from './undici.js'

export type Method = 'GET' | 'HEAD' | 'PUT' | 'POST' | 'PATCH' | 'DELETE'
export type Headers = Record<string, string | string[] | undefined>
export type Body = Uint8Array | string | Readable

export interface Exchange {
  status: number
  headers: Headers
  /** The answer's body (see response-body.ts), or undici's through a proxy. */
  body: Readable
}

/** One request as the protocol clients (http1.ts, http2.ts) send it. */
export interface WireRequest {
  method: string
  url: URL
  headers: Record<string, string>
  body?: Body
  /** Inactivity while sending, and the wait for the answer. */
  timeoutMs: number
  /** The longest gap in the body while its reader waits. */
  bodyGapMs: number
  /** Aborts the request and its body at any stage. */
  signal?: AbortSignal
}

/** Error bodies are kept up to this size; the rest is discarded unread. */
export const MAX_ERROR_BODY_BYTES = 64 * 1024

/**
 * Response headers are read up to this size. Google Artifact Registry sends about 21 KB, past
 * Node's 16 KiB default: "Parse Error: Header overflow"
 * (https://github.com/actions/attest-build-provenance/issues/606).
 */
export const MAX_HEADER_BYTES = 256 * 1024

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
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
  // An HTTP/2 stream reset (REFUSED_STREAM after a GOAWAY among them) or a broken session.
  'ERR_HTTP2_STREAM_ERROR',
  'ERR_HTTP2_SESSION_ERROR',
  'ERR_HTTP2_GOAWAY_SESSION',
  'ERR_HTTP2_INVALID_SESSION',
  'ERR_HTTP2_STREAM_CANCEL'
])

/**
 * The proxy from HTTP(S)_PROXY could not be used: not reachable, or it refused the tunnel. The
 * message names the proxy (password masked) and the host it was to reach; `code` is the network
 * error's, so refused connections and timeouts are retried as they are without a proxy.
 */
export class ProxyError extends Error {
  override name = 'ProxyError'
  readonly code?: string
  /** The proxy's answer to CONNECT (or 407 to a plain-HTTP request). */
  readonly status?: number

  constructor(message: string, details: { code?: string; status?: number; cause?: unknown } = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause })
    this.code = details.code
    this.status = details.status
  }

  /** A proxy that refused the connection, timed out, or could not reach the registry for now. */
  get transient(): boolean {
    if (this.status !== undefined) return this.status >= 502 && this.status <= 504
    return !!this.code && TRANSIENT_CODES.has(this.code)
  }
}

/** Network errors that, behind a proxy, can only be about the proxy: we connect to nothing else. */
const PROXY_UNREACHABLE = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ETIMEDOUT',
  'UND_ERR_CONNECT_TIMEOUT'
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
  if (e instanceof ProxyError) return e.transient
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
  if (e instanceof ProxyError) return e.message
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
  /** Where HTTP(S)_PROXY and NO_PROXY are read, once: process.env unless given. */
  env?: NodeJS.ProcessEnv
  /** Called with each secret read here (a proxy password), for the runner to mask. */
  onSecret?: (secret: string) => void
  /** HTTP/2 where an HTTPS registry offers it; default: unless MULTIARCH_MERGE_HTTP2=false. */
  http2?: boolean
}

export class Transport {
  requestCount = 0
  private readonly proxies: ProxyEnv
  /** Direct HTTP/1.1, per scheme and certificate check; created on first use. */
  private readonly pools = new Map<string, Http1Pool>()
  /** Through each proxy (undici, loaded only then), verifying TLS or not. */
  private readonly dispatchers = new Map<string, Promise<ProxyAgent>>()
  private readonly pool: PoolOptions
  /** HTTPS registries reached directly; through a proxy, HTTP/1.1 only. */
  private readonly h2?: Http2Sessions

  constructor(private readonly opts: TransportOptions) {
    this.pool = {
      keepAliveTimeout: 30_000,
      connections: maxConnections(opts.maxConcurrency),
      headersTimeout: opts.requestTimeoutMs,
      bodyTimeout: opts.requestTimeoutMs,
      maxHeaderSize: MAX_HEADER_BYTES
    }
    const env = opts.env ?? process.env
    this.proxies = readProxyEnv(env)
    if (opts.http2 ?? env.MULTIARCH_MERGE_HTTP2 !== 'false')
      this.h2 = new Http2Sessions({
        requestTimeoutMs: opts.requestTimeoutMs,
        maxHeaderBytes: MAX_HEADER_BYTES,
        insecure: (host) => opts.insecureHosts.has(host)
      })
    const secrets = [this.proxies.http, this.proxies.https].flatMap((p) =>
      p && 'secrets' in p ? p.secrets : []
    )
    new Set(secrets).forEach((s) => opts.onSecret?.(s))
  }

  /** An HTTPS registry whose certificate is not verified (the user's `insecure-registries`). */
  private insecure(url: URL): boolean {
    return url.protocol === 'https:' && this.opts.insecureHosts.has(url.host)
  }

  private http1(url: URL): Http1Pool {
    const insecure = this.insecure(url)
    const key = `${url.protocol}${insecure ? ' insecure' : ''}`
    let pool = this.pools.get(key)
    if (!pool) {
      const h2 = this.h2
      pool = new Http1Pool({
        maxSockets: maxConnections(this.opts.maxConcurrency),
        connectTimeoutMs: this.opts.requestTimeoutMs,
        maxHeaderBytes: MAX_HEADER_BYTES,
        insecure,
        // An origin that chose HTTP/1.1 in the handshake offering h2 gets that connection first.
        takeSocket: h2 && ((origin) => h2.takeSocket(origin))
      })
      this.pools.set(key, pool)
    }
    return pool
  }

  private viaProxy(proxy: Proxy, url: URL): Promise<ProxyAgent> {
    const insecure = this.insecure(url)
    const key = `${proxy.from}${insecure ? ' insecure' : ''}`
    let dispatcher = this.dispatchers.get(key)
    if (!dispatcher) {
      dispatcher = this.proxyAgent(proxy, insecure)
      this.dispatchers.set(key, dispatcher)
    }
    return dispatcher
  }

  /**
   * HTTPS through a CONNECT tunnel; plain HTTP as absolute-URI requests to the proxy, as curl and
   * docker send them (proxies often allow CONNECT to port 443 only). The registry's TLS options
   * go in `requestTls`: undici ignores `connect` for the tunnelled connection.
   */
  private async proxyAgent(proxy: Proxy, insecure: boolean): Promise<ProxyAgent> {
    const { Pool, ProxyAgent } = await import('./undici.js')
    const timeout = this.opts.requestTimeoutMs
    const pool = this.pool
    return new ProxyAgent({
      ...pool,
      uri: proxy.url.href,
      token: proxy.token,
      proxyTunnel: false,
      requestTls: insecure ? { timeout, rejectUnauthorized: false } : { timeout },
      proxyTls: { timeout },
      // The pools undici makes per origin, and for plain HTTP to the proxy, get our limits
      // (header size, timeouts); the one that sends CONNECT gets the timeouts.
      factory: (origin, o) => new Pool(origin, { ...pool, ...o }),
      clientFactory: (origin, o) => new Pool(origin, { ...o, headersTimeout: timeout })
    })
  }

  /** One exchange; the body is left as a stream, which the caller must read or discard. */
  async exchange(
    method: Method,
    url: URL,
    headers: Record<string, string>,
    body: Body | undefined,
    timeoutMs: number,
    /** Aborts the exchange, its body included, whatever stage it is at (the step's deadline). */
    stop?: AbortSignal
  ): Promise<Exchange> {
    this.requestCount++
    const proxy = proxyFor(this.proxies, url)
    if (proxy && 'problem' in proxy) throw new ProxyError(proxy.problem)
    // A native timer for the whole wait (Node's are per inactivity, undici's tick about every
    // half second). Not with a streamed body: its upload may take longer.
    const replayable = body === undefined || typeof body === 'string' || body instanceof Uint8Array
    const ac = replayable ? new AbortController() : undefined
    const timer = ac && setTimeout(() => ac.abort(headersTimeout()), timeoutMs)
    const signals = [ac?.signal, stop].filter((x): x is AbortSignal => x !== undefined)
    const signal = signals.length > 1 ? AbortSignal.any(signals) : signals[0]
    const request = { method, url, headers, body, timeoutMs, signal }
    const bodyGapMs = this.opts.requestTimeoutMs
    try {
      if (proxy) return await this.proxied(await this.viaProxy(proxy, url), proxy, request)
      const h2 = url.protocol === 'https:' ? this.h2 : undefined
      const session = await h2?.session(url, stop)
      if (h2 && session) return await h2.send(session, { ...request, bodyGapMs }, stop)
      return await this.http1(url).request({ ...request, bodyGapMs })
    } catch (e) {
      throw (proxy && asProxyError(e, proxy, url)) || e
    } finally {
      clearTimeout(timer)
    }
  }

  private async proxied(
    dispatcher: Dispatcher,
    proxy: Proxy,
    r: Omit<WireRequest, 'bodyGapMs'> & { method: Method }
  ): Promise<Exchange> {
    const { method, url } = r
    const res = await dispatcher.request({
      origin: url.origin,
      path: url.pathname + url.search,
      method,
      headers: r.headers,
      body: r.body,
      headersTimeout: r.timeoutMs,
      signal: r.signal,
      // undici closes the connection after a HEAD unless told otherwise, in case a server sends
      // a body anyway (nodejs/undici#258); registries do not, and every tag and blob check
      // would cost a new connection (a TLS handshake on HTTPS). A body that comes with the
      // answer makes undici drop the connection; one that comes later fails the next request
      // on it with a parse error.
      ...(method === 'HEAD' ? { reset: false } : {})
    })
    // Only the proxy answers 407 to a plain-HTTP request sent through it.
    if (res.statusCode === 407 && url.protocol === 'http:') {
      drop(res.body)
      throw proxyRefusal(proxy, url, 407)
    }
    return { status: res.statusCode, headers: res.headers, body: res.body }
  }

  /** Closes every connection; each kind may wait a second for exchanges in flight, together. */
  async close(): Promise<void> {
    const proxied = async (d: Promise<ProxyAgent>): Promise<void> => {
      const made = await d.catch(() => undefined)
      await made?.close()
    }
    await Promise.all([
      ...[...this.pools.values()].map((pool) => pool.close()),
      ...[...this.dispatchers.values()].map(proxied),
      this.h2?.close()
    ])
  }
}

/**
 * Connections per origin. A streamed copy holds one slot but two connections to one origin
 * (source GET paused by backpressure, target PUT), and token requests bypass the limiter: with
 * only one connection per slot, a same-registry copy at full concurrency deadlocks.
 */
function maxConnections(maxConcurrency: number): number {
  return maxConcurrency * 2 + 4
}

/** A failure to reach or use the proxy, worded to name it; undefined for any other failure. */
function asProxyError(e: unknown, proxy: Proxy, url: URL): ProxyError | undefined {
  if (e instanceof ProxyError) return e
  const message = (e as { message?: string })?.message ?? ''
  // undici's words for a CONNECT answered with anything but 200, and for a 407 to plain HTTP.
  const status = /^Proxy response \((\d{3})\) !== 200/.exec(message)?.[1]
  if (status) return proxyRefusal(proxy, url, Number(status), e)
  if (/^Proxy Authentication Required \(407\)/.test(message))
    return proxyRefusal(proxy, url, 407, e)
  const err = e as { code?: string; cause?: { code?: string } }
  const code = err?.code ?? err?.cause?.code
  if (code === 'UND_ERR_PRX_TLS')
    return new ProxyError(
      `TLS error talking to the proxy ${proxy.shown} (from ${proxy.from}) to reach ${url.host}: ${describeFailure(e)}`,
      { code, cause: e }
    )
  if (!code || !PROXY_UNREACHABLE.has(code)) return undefined
  return new ProxyError(
    `could not reach the proxy ${proxy.shown} (from ${proxy.from}) to reach ${url.host}: ${describeFailure(e)}`,
    { code, cause: e }
  )
}

function proxyRefusal(proxy: Proxy, url: URL, status: number, cause?: unknown): ProxyError {
  const via = `the proxy ${proxy.shown} (from ${proxy.from})`
  const host = url.host
  // Only the proxy answers CONNECT: a 401 there is its refusal of the credentials, as tinyproxy
  // 1.11 answers (https://github.com/tinyproxy/tinyproxy/issues/532, fixed by its PR #549).
  const auth = status === 407 || status === 401
  const answer = `${status} ${status === 401 ? 'Unauthorized' : 'Proxy Authentication Required'}`
  const message = auth
    ? proxy.token
      ? `${via} refused its credentials to reach ${host}: ${answer}`
      : `${via} asks for credentials to reach ${host} (${answer}): put them in ${proxy.from} as http://user:password@host:port`
    : status === 403
      ? `${via} refused a tunnel to ${host}: 403 Forbidden (proxies often allow CONNECT to port 443 only)`
      : status >= 500
        ? `${via} could not connect to ${host}: it answered CONNECT with ${status}`
        : `${via} refused a tunnel to ${host}: it answered CONNECT with ${status}`
  return new ProxyError(message, { status, cause })
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
  stream: Readable,
  max: number,
  gapMs: number,
  keepHead = false
): Promise<Uint8Array | undefined> {
  const chunks: Buffer[] = []
  let total = 0
  const gap = setTimeout(() => stream.destroy(bodyTimeout()), gapMs)
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
