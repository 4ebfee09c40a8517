// HTTP/2 to HTTPS registries that offer it, with Node's own http2: every request to an origin
// shares one TLS connection, each stream with its own flow control, so a paused download holds
// nothing else up. Not undici's h2 client: in undici 7 it sends a POST or PUT only when nothing
// else is in flight on the connection, opens a connection per request while the first handshake
// runs (nodejs/undici#4143), and a 100 MiB copy through it grew without bound in our trial.
import type { ClientHttp2Session, ClientHttp2Stream, OutgoingHttpHeaders } from 'node:http2'
import { Readable } from 'node:stream'
import type { TLSSocket } from 'node:tls'
import { http2 } from './builtins.js'
import { dialTls } from './dial.js'
import { ResponseBody } from './response-body.js'
import { headersTimeout, reasonOf } from './timeouts.js'
import type { Exchange, WireRequest } from './transport.js'

/** RST_STREAM codes (RFC 9113, section 7). */
const REFUSED_STREAM = 0x7
const CANCEL = 0x8

/**
 * A stream's receive window: what a paused body may hold unread. 4 MiB keeps a download at
 * 80 MB/s over a 50 ms round trip, where HTTP/2's default 64 KiB would cap it near 1.3 MB/s.
 */
const STREAM_WINDOW = 4 * 1024 * 1024
const SESSION_WINDOW = 32 * 1024 * 1024
/** An idle session closes after this long (undici's keepAliveTimeout here too). */
const IDLE_MS = 30_000

/** Headers HTTP/2 forbids (RFC 9113, section 8.2.2); Node throws on them. */
const CONNECTION_HEADERS = new Set([
  'connection',
  'host',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade'
])

export interface Http2Options {
  /** Handshake timeout, and the longest a body may go without data. */
  requestTimeoutMs: number
  maxHeaderBytes: number
  /** Whether `host` (host:port) is the user's insecure registry: its certificate is not verified. */
  insecure(host: string): boolean
}

/** How often a request the registry did not process is sent again before its failure counts. */
const MAX_UNPROCESSED_RESENDS = 3

export interface Http2Request extends WireRequest {
  session: ClientHttp2Session
  /** Called when the request or its body times out: the connection may be dead. */
  onStall?: () => void
}

/**
 * The HTTP/2 sessions of one run, one per HTTPS origin that chose h2 in its handshake (ALPN). The
 * first request to an origin makes the handshake and the others wait for it; an origin that
 * chooses HTTP/1.1 keeps that answer for the run, and its first socket goes to undici's pool.
 */
export class Http2Sessions {
  /** Per origin: its session, or undefined once it chose HTTP/1.1. */
  private readonly sessions = new Map<string, Promise<ClientHttp2Session | undefined>>()
  /** A handshake's socket that chose HTTP/1.1, waiting for undici to take it (`takeSocket`). */
  private readonly spare = new Map<string, TLSSocket>()
  constructor(private readonly opts: Http2Options) {}

  /** The session for `url`'s origin, opened if need be; undefined where it speaks HTTP/1.1. */
  async session(url: URL, stop?: AbortSignal): Promise<ClientHttp2Session | undefined> {
    for (;;) {
      let pending = this.sessions.get(url.origin)
      if (!pending) {
        pending = this.open(url)
        this.sessions.set(url.origin, pending)
        const opened = pending
        // A failed handshake is forgotten: the request fails (and is retried) as any would.
        opened.catch(() => this.forget(url.origin, opened))
      }
      const session = await untilAborted(pending, stop)
      if (!session || (!session.closed && !session.destroyed)) return session
      // Closed since (GOAWAY, idle, a broken connection): the next request opens another.
      this.forget(url.origin, pending)
    }
  }

  /**
   * `requestH2` on `session`, the origin's. A request the registry did not process (a stream it
   * refused, or a session that went away before the stream started) goes again on a new
   * connection, as RFC 9113, section 8.7 allows, when its body can be sent again: servers end
   * connections after so many requests (nginx's keepalive_requests) and that is no failure.
   */
  async send(
    session: ClientHttp2Session,
    request: Omit<Http2Request, 'session'>,
    stop?: AbortSignal
  ): Promise<Exchange> {
    const replayable = !(request.body instanceof Readable)
    for (let attempt = 1; ; attempt++) {
      const used = session
      // A silent stream may mean a dead connection (a NAT that forgot it): closed, it takes no
      // new stream, and `session()` opens another, as HTTP/1.1 would open a new socket.
      const onStall = (): void => {
        if (!used.closed) used.close()
      }
      try {
        return await requestH2({ ...request, session, onStall })
      } catch (e) {
        if (!replayable || attempt > MAX_UNPROCESSED_RESENDS || !unprocessed(e)) throw e
        const next = await this.session(request.url, stop)
        if (!next) throw e
        session = next
      }
    }
  }

  /** The socket of a handshake that chose HTTP/1.1, once, if it is still open. */
  takeSocket(origin: string): TLSSocket | undefined {
    const socket = this.spare.get(origin)
    this.spare.delete(origin)
    if (!socket || socket.destroyed || !socket.writable) return undefined
    socket.removeListener('error', ignore)
    return socket
  }

  async close(): Promise<void> {
    for (const socket of this.spare.values()) socket.destroy()
    this.spare.clear()
    const sessions = await Promise.all(
      [...this.sessions.values()].map((p) => p.catch(() => undefined))
    )
    this.sessions.clear()
    const open = sessions.filter((s): s is ClientHttp2Session => !!s && !s.destroyed)
    await Promise.all(
      open.map(
        (s) =>
          new Promise<void>((resolve) => {
            // A session a GOAWAY already closed ignores close(): wait for its end all the same.
            s.once('close', () => resolve())
            if (!s.closed) s.close()
            // Streams still open (a body nobody read) must not keep the process alive.
            setTimeout(() => s.destroy(), 1000).unref()
          })
      )
    )
  }

  private forget(origin: string, pending: Promise<unknown>): void {
    if (this.sessions.get(origin) === pending) this.sessions.delete(origin)
  }

  /** A TLS handshake offering h2 first; its answer decides how the origin is spoken to. */
  private open(url: URL): Promise<ClientHttp2Session | undefined> {
    const host = url.hostname.replace(/^\[(.*)\]$/, '$1')
    return new Promise((resolve, reject) => {
      const socket = dialTls({
        host,
        port: Number(url.port || 443),
        alpn: ['h2', 'http/1.1'],
        insecure: this.opts.insecure(url.host),
        timeoutMs: this.opts.requestTimeoutMs
      })
      socket.once('error', reject)
      socket.once('secureConnect', () => {
        socket.removeListener('error', reject)
        socket.setNoDelay(true)
        if (socket.alpnProtocol === 'h2') {
          resolve(this.start(url, socket))
          return
        }
        // As undici's own connector sets its sockets up; errors until then have no one to tell.
        socket.setKeepAlive(true, 60_000)
        socket.on('error', ignore)
        this.spare.get(url.origin)?.destroy()
        this.spare.set(url.origin, socket)
        resolve(undefined)
      })
    })
  }

  private start(url: URL, socket: TLSSocket): ClientHttp2Session {
    socket.setKeepAlive(true, 60_000)
    const session = http2().connect(url.origin, {
      createConnection: () => socket,
      settings: {
        enablePush: false,
        initialWindowSize: STREAM_WINDOW,
        maxHeaderListSize: this.opts.maxHeaderBytes,
        // nghttp2 takes at most 8 CONTINUATION frames after HEADERS: with 16 KiB frames a
        // header block over ~144 KiB would fail the whole session.
        maxFrameSize: 64 * 1024
      },
      maxHeaderListPairs: 1024,
      // Node's cap on what a session may hold (MB), streams' windows included.
      maxSessionMemory: 128
    })
    session.once('connect', () => session.setLocalWindowSize(SESSION_WINDOW))
    // Idle connections close, as undici's keep-alive ones do: a middlebox may drop them quietly.
    session.setTimeout(IDLE_MS, () => session.close())
    // A session's failure reaches each of its streams, which is where requests see it.
    session.on('error', ignore)
    return session
  }
}

/**
 * One request on its session. The timeouts fail it as undici's headers and body timeouts do, with
 * the same errors, so that retries and messages are the same on either protocol.
 */
export function requestH2(request: Http2Request): Promise<Exchange> {
  const { session, method, url, headers, body, timeoutMs, bodyGapMs, signal, onStall } = request
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(reasonOf(signal))
      return
    }
    const sent: OutgoingHttpHeaders = {
      ':method': method,
      ':scheme': 'https',
      ':authority': url.host,
      ':path': url.pathname + url.search
    }
    for (const [name, value] of Object.entries(headers))
      if (!CONNECTION_HEADERS.has(name.toLowerCase())) sent[name.toLowerCase()] = value
    // As undici sends it for a body whose size is known; some registries require it.
    if (typeof body === 'string' || body instanceof Uint8Array)
      sent['content-length'] ??= String(Buffer.byteLength(body))

    let stream: ClientHttp2Stream
    try {
      stream = session.request(sent, { endStream: body === undefined })
    } catch (e) {
      // A session closed under us: ERR_HTTP2_INVALID_SESSION or GOAWAY_SESSION, retried.
      reject(e instanceof Error ? e : new Error(String(e)))
      return
    }
    let answered: ResponseBody | undefined
    const fail = (e: Error): void => {
      if (!answered) reject(stream.rstCode === REFUSED_STREAM ? refused(e) : e)
      else answered.destroy(e)
      stream.destroy(e)
    }
    const onAbort = (): void => {
      const reason = reasonOf(signal)
      // The exchange's own timer (undici's ticks are coarse) is a stall as much as ours.
      if (!answered && (reason as { code?: string }).code === 'UND_ERR_HEADERS_TIMEOUT') onStall?.()
      fail(reason)
    }
    signal?.addEventListener('abort', onAbort, { once: true })
    // Whoever reads the body sees its errors; none may go unheard before that.
    stream.on('error', (e: Error) => fail(e))
    // Inactivity while sending or waiting for the answer; the body has its own gap timer.
    stream.setTimeout(timeoutMs, () => {
      if (answered) return
      onStall?.()
      fail(headersTimeout())
    })
    stream.once('close', () => {
      signal?.removeEventListener('abort', onAbort)
      if (!answered) fail(streamError('the registry closed the HTTP/2 stream without an answer'))
    })
    stream.once('response', (received) => {
      if (answered) return
      stream.setTimeout(0)
      answered = new ResponseBody({
        stream,
        // Ended by the registry (END_STREAM) has no reset code; a closed connection has one.
        complete: () => !stream.rstCode,
        // Stops the registry sending what nobody will read (RST_STREAM CANCEL); the connection stays.
        cancel: () => {
          if (!stream.destroyed) stream.close(CANCEL)
        },
        gapMs: bodyGapMs,
        onStall,
        cutCode: 'ERR_HTTP2_STREAM_ERROR'
      })
      const out: Exchange['headers'] = {}
      for (const [name, value] of Object.entries(received))
        if (!name.startsWith(':')) out[name] = value
      resolve({ status: Number(received[':status']), headers: out, body: answered })
    })

    if (typeof body === 'string' || body instanceof Uint8Array) stream.end(body)
    else if (body) {
      body.once('error', (e) => fail(e))
      body.once('close', () => {
        if (body.readableEnded) return
        // The source stopped early: a request not yet answered fails; one already answered (the
        // registry refused before reading it all) just ends its half of the stream.
        if (!answered) fail(new Error('the upload stopped before its end'))
        else if (!stream.writableEnded) stream.end()
      })
      body.pipe(stream)
    }
  })
}

/** A transient HTTP/2 failure of our own wording, classed with Node's stream errors. */
function streamError(message: string): Error {
  return Object.assign(new Error(message), { code: 'ERR_HTTP2_STREAM_ERROR' })
}

function ignore(): void {}

const UNPROCESSED = Symbol('unprocessed')

function refused(e: Error): Error {
  return Object.assign(e, { [UNPROCESSED]: true })
}

/** The registry did not process the request: a refused stream, or a session closed before it. */
function unprocessed(e: unknown): boolean {
  const code = (e as { code?: string })?.code
  if (code === 'ERR_HTTP2_GOAWAY_SESSION' || code === 'ERR_HTTP2_INVALID_SESSION') return true
  return !!(e as Record<symbol, boolean>)?.[UNPROCESSED]
}

/** `p`, unless `stop` aborts first: then its reason. */
function untilAborted<T>(p: Promise<T>, stop?: AbortSignal): Promise<T> {
  if (!stop) return p
  if (stop.aborted) return Promise.reject(reasonOf(stop))
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(reasonOf(stop))
    stop.addEventListener('abort', onAbort, { once: true })
    p.then(resolve, reject).finally(() => stop.removeEventListener('abort', onAbort))
  })
}
