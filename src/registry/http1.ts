// HTTP/1.1 with Node's own http client: keep-alive connections per origin, and the same timeouts,
// errors and body guarantees as the HTTP/2 path. Node's parser is native code, where undici's is
// WebAssembly compiled at every start (with undici's own code, about a third of start-up).
import type { Agent as HttpAgent, ClientRequest, IncomingMessage } from 'node:http'
import { isIP, type Socket } from 'node:net'
import type { TLSSocket } from 'node:tls'
import { http } from './builtins.js'
import { dialTcp, dialTls } from './dial.js'
import { ResponseBody } from './response-body.js'
import { headersTimeout, reasonOf } from './timeouts.js'
import type { Exchange, WireRequest } from './transport.js'

/** An idle connection closes after this long (or sooner, when the server's Keep-Alive says so). */
const IDLE_MS = 30_000

export interface Http1Options {
  /** Connections per origin. */
  maxSockets: number
  /** TCP and TLS connect timeout. */
  connectTimeoutMs: number
  maxHeaderBytes: number
  /** HTTPS: certificates are not verified (the user's insecure registry). */
  insecure: boolean
  /** HTTPS: a handshake's socket that already chose HTTP/1.1 for this origin (ALPN), if any. */
  takeSocket?: (origin: string) => TLSSocket | undefined
}

/** The keep-alive connections to HTTP/1.1 origins of one kind (plain HTTP, HTTPS, insecure). */
export class Http1Pool {
  private readonly agent: HttpAgent
  /** TLS sessions per host:port, for resumption on the next connection. */
  private readonly tlsSessions = new Map<string, Buffer>()

  constructor(private readonly opts: Http1Options) {
    this.agent = new (http().Agent)({
      keepAlive: true,
      keepAliveMsecs: 60_000,
      maxSockets: opts.maxSockets,
      timeout: IDLE_MS
    })
    // Connections are ours to make: HTTPS ones too (the agent is an http.Agent), a handshake's
    // socket taken over, and a connect timeout, which Node's agent does not have.
    this.agent.createConnection = (options: {
      host?: string
      port?: number | string
      https?: boolean
    }) => this.connect(String(options.host), Number(options.port), !!options.https)
  }

  request(r: WireRequest): Promise<Exchange> {
    const { method, url, body, timeoutMs, bodyGapMs, signal } = r
    const https = url.protocol === 'https:'
    return new Promise((resolve, reject) => {
      if (signal?.aborted) {
        reject(reasonOf(signal))
        return
      }
      let req: ClientRequest
      try {
        req = http().request({
          agent: this.agent,
          hostname: url.hostname.replace(/^\[(.*)\]$/, '$1'),
          port: Number(url.port || (https ? 443 : 80)),
          path: url.pathname + url.search,
          method,
          // Host as the URL has it (the default port left out), not as the agent would make it.
          headers: { ...r.headers, host: url.host },
          setHost: false,
          maxHeaderSize: this.opts.maxHeaderBytes,
          // Read by createConnection: the agent is an http.Agent for both.
          ...{ https }
        })
      } catch (e) {
        // A header value Node refuses (a control character): nothing was sent.
        reject(e instanceof Error ? e : new Error(String(e)))
        return
      }
      let answered: ResponseBody | undefined
      let response: IncomingMessage | undefined
      // The step's signal lives longer than any request: its listener goes with the exchange.
      const done = (): void => signal?.removeEventListener('abort', onAbort)
      const fail = (e: Error): void => {
        if (!answered) {
          done()
          reject(e)
        }
        // Once the answer is whole, what the connection does next is no concern of this exchange
        // (bytes after an answer to a HEAD, as Go's "HTTP request to an HTTPS server" sends).
        else if (!response?.complete) answered.destroy(e)
        req.destroy(e)
      }
      const onAbort = (): void => fail(reasonOf(signal))
      signal?.addEventListener('abort', onAbort, { once: true })
      // Node's "socket hang up" is the registry closing the connection before any answer.
      req.on('error', (e: Error) => fail(e.message === 'socket hang up' ? cutBeforeAnswer() : e))
      // Inactivity while sending or waiting for the answer; the body has its own gap timer.
      req.setTimeout(timeoutMs, () => {
        if (!answered) fail(headersTimeout())
      })
      // And once the request is sent, the whole answer's head within the timeout, as undici's
      // headers timeout: a registry sending its headers a byte at a time is no less stalled.
      let waiting: NodeJS.Timeout | undefined
      req.once('finish', () => {
        if (!answered) waiting = setTimeout(() => fail(headersTimeout()), timeoutMs)
      })
      req.once('close', () => {
        clearTimeout(waiting)
        if (!answered) fail(cutBeforeAnswer())
      })
      req.once('response', (res: IncomingMessage) => {
        response = res
        clearTimeout(waiting)
        req.setTimeout(0)
        answered = new ResponseBody({
          stream: res,
          complete: () => res.complete,
          // Node hands a connection back only once its answer was read to the end: one that
          // nobody reads to the end (even with every byte received) must close, or it is lost.
          cancel: () => {
            if (!res.readableEnded) res.destroy()
          },
          gapMs: bodyGapMs,
          cutCode: 'ECONNRESET'
        })
        answered.once('close', done)
        resolve({ status: res.statusCode ?? 0, headers: headersOf(res), body: answered })
      })

      if (body === undefined || typeof body === 'string' || body instanceof Uint8Array) {
        // Node sets Content-Length for a body given whole, as registries require.
        req.end(body)
        return
      }
      // A source shorter than the Content-Length it was sent with would leave the registry
      // waiting for the rest: the request fails at once, as undici's does.
      const declared = Number(r.headers['content-length'] ?? NaN)
      let sent = 0
      body.on('data', (chunk: Uint8Array) => (sent += chunk.length))
      body.once('end', () => {
        if (!answered && !Number.isNaN(declared) && sent !== declared)
          fail(lengthMismatch(sent, declared))
      })
      body.once('error', (e) => fail(e))
      body.once('close', () => {
        if (body.readableEnded) return
        // The source stopped early: a request not yet answered fails; one already answered (the
        // registry refused before reading it all) leaves its connection half-sent, which closes
        // once the answer is read (Node would neither reuse nor close it).
        if (!answered) fail(new Error('the upload stopped before its end'))
        else if (!req.writableFinished) {
          req.shouldKeepAlive = false
          if (response?.readableEnded) req.destroy()
          else response?.once('end', () => req.destroy())
        }
      })
      body.pipe(req)
    })
  }

  /**
   * Closes idle connections now; exchanges still in flight (another merge's, when one failed)
   * get a second to finish, as on an HTTP/2 session, and their connections close as they end.
   */
  async close(): Promise<void> {
    const agent = this.agent
    const count = (pool: Record<string, Socket[] | undefined>): number =>
      Object.values(pool).reduce((n, sockets) => n + (sockets?.length ?? 0), 0)
    for (const sockets of Object.values(agent.freeSockets)) sockets?.forEach((s) => s.destroy())
    if (count(agent.sockets) === 0) return
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        agent.destroy()
        resolve()
      }, 1000)
      const check = (): void => {
        if (count(agent.sockets) > 0) return
        clearTimeout(timer)
        resolve()
      }
      agent.on('free', (socket: Socket) => {
        socket.destroy()
        setImmediate(check)
      })
      for (const sockets of Object.values(agent.sockets))
        sockets?.forEach((s) => s.once('close', () => setImmediate(check)))
    })
  }

  private connect(host: string, port: number, https: boolean): Socket {
    const timeoutMs = this.opts.connectTimeoutMs
    if (!https) return dialTcp(host, port, timeoutMs)
    const origin = new URL(`https://${isIP(host) === 6 ? `[${host}]` : host}:${port}`).origin
    const spare = this.opts.takeSocket?.(origin)
    if (spare) return spare
    const key = `${host}:${port}`
    const alpn = ['http/1.1']
    const session = this.tlsSessions.get(key)
    const socket = dialTls({ host, port, alpn, insecure: this.opts.insecure, timeoutMs, session })
    socket.on('session', (s: Buffer) => this.tlsSessions.set(key, s))
    return socket
  }
}

/** Headers as undici gave them: a string, or an array for a header sent more than once. */
function headersOf(res: IncomingMessage): Exchange['headers'] {
  const out: Exchange['headers'] = {}
  for (const [name, values] of Object.entries(res.headersDistinct))
    if (values) out[name] = values.length === 1 ? values[0] : values
  return out
}

/** The connection closed before any answer: transient, as a reset is. */
function cutBeforeAnswer(): Error {
  return Object.assign(new Error('the registry closed the connection without an answer'), {
    code: 'ECONNRESET'
  })
}

/** A streamed upload that ended short of (or past) its Content-Length; transient, as undici's. */
function lengthMismatch(sent: number, declared: number): Error {
  return Object.assign(
    new Error(`the upload sent ${sent} bytes where its Content-Length said ${declared}`),
    { code: 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH' }
  )
}
