// The HTTPS scenarios' probe: a front that terminates TLS and speaks h2 or HTTP/1.1, as each
// connection's ALPN chooses, before a plain-HTTP registry. Like probe.ts's proxy, it adds the
// scenario's delay to every request and records each one (a Hit); it also charges each new
// connection the round trips a real network would, and counts the TLS connections and the
// protocol each chose.
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import http, { type IncomingHttpHeaders } from 'node:http'
import http2 from 'node:http2'
import net, { type AddressInfo } from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import type { TLSSocket } from 'node:tls'
import type { ProxiedRequest } from '../__tests__/helpers/proxy.js'
import { makeCerts } from '../__tests__/helpers/registry.js'
import type { Hit, Probe, ProbeFront } from './probe.js'
import { DELAY_MS } from './settings.js'

export interface TlsFront extends ProbeFront {
  url: string
  /** TLS connections opened since the last reset. */
  tls: number
  /** Of those, how many chose each protocol (ALPN: `h2`, `http/1.1`; `none` without ALPN). */
  alpn: Map<string, number>
  /**
   * Plain-HTTP connections: the client tries a loopback registry over HTTP first and gets Go's
   * 400, as from a TLS registry itself. Their requests are in `requests`, not in `tls`.
   */
  plain: number
}

export type TlsProbe = Probe<TlsFront>

/** The front's certificate (for 127.0.0.1), and the CA file a client trusts it with. */
export interface TlsCerts {
  key: Buffer
  cert: Buffer
  caFile: string
  remove(): Promise<void>
}

export async function makeTlsCerts(): Promise<TlsCerts> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mm-bench-tls-'))
  const c = await makeCerts(dir)
  return {
    key: await readFile(c.key),
    cert: await readFile(c.cert),
    caFile: c.caFile,
    remove: () => rm(dir, { recursive: true, force: true })
  }
}

/** Headers that belong to one connection (RFC 9110 §7.6.1), and h2's pseudo-headers: not forwarded. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'te',
  'trailer',
  'http2-settings'
])

function forwardable(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  const out: IncomingHttpHeaders = {}
  for (const [k, v] of Object.entries(headers))
    if (!k.startsWith(':') && !HOP_BY_HOP.has(k)) out[k] = v
  return out
}

/** Go's answer to plain HTTP on a TLS port, word for word (net/http's server). */
const GO_TLS_ANSWER =
  'HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n'

/** Go's HTTP/2 server's upload window, per stream and per connection (x/net/http2's defaults). */
const GO_WINDOW = 1 << 20

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** A new TLS front before `upstream` (plain HTTP), adding `delayMs` to every request. */
export async function startTlsProbe(
  upstream: string,
  certs: TlsCerts,
  delayMs = DELAY_MS
): Promise<TlsProbe> {
  const up = new URL(upstream)
  const agent = new http.Agent({ keepAlive: true })
  const hits: Hit[] = []
  const requests: ProxiedRequest[] = []
  const sockets = new Set<net.Socket>() // the gate's and the TLS server's, for stop()
  let inFlight = 0

  const record = (method: string, url: string): Hit => {
    const hit: Hit = { method, path: url, arrived: performance.now() }
    hits.push(hit)
    requests.push({ method, path: url })
    return hit
  }

  // Both protocols reach this handler (allowHTTP1); it uses only what their requests and
  // responses have in common.
  const forward = async (
    req: http2.Http2ServerRequest | http.IncomingMessage,
    res: http2.Http2ServerResponse | http.ServerResponse
  ): Promise<void> => {
    const hit = record(req.method ?? '', req.url ?? '')
    front.maxInFlight = Math.max(front.maxInFlight, ++inFlight)
    res.on('finish', () => (hit.done = performance.now()))
    res.on('close', () => inFlight--)
    await sleep(delayMs)
    const headers = forwardable(req.headers)
    // The registry builds its Locations from Host and X-Forwarded-Proto: they point at the front.
    headers.host = (req.headers[':authority'] as string | undefined) ?? req.headers.host
    headers['x-forwarded-proto'] = 'https'
    const out = http.request(
      { host: up.hostname, port: up.port, method: req.method, path: req.url, headers, agent },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, forwardable(answer.headers))
        answer.pipe(res as NodeJS.WritableStream)
      }
    )
    out.on('error', () => req.destroy())
    // The client gave up on it: so does the registry's side.
    res.on('close', () => {
      if (hit.done === undefined) out.destroy()
    })
    req.pipe(out)
  }

  const tls = http2.createSecureServer(
    {
      key: certs.key,
      cert: certs.cert,
      allowHTTP1: true,
      // Go's HTTP/2 server's defaults (the registry's, were it serving TLS itself): 250 streams,
      // 1 MiB of upload window per stream, and per connection (below).
      settings: { maxConcurrentStreams: 250, initialWindowSize: GO_WINDOW },
      // Node's default, 10 MB, counts the data queued to send, and five downloads with the
      // client's 4 MiB windows may queue more: the front must not refuse streams a registry takes.
      maxSessionMemory: 256
    },
    (req, res) => void forward(req, res).catch(() => req.destroy())
  )
  // HTTP/2's own default is 64 KiB for the whole connection, which several uploads would share.
  tls.on('session', (s: http2.ServerHttp2Session) =>
    s.once('connect', () => s.setLocalWindowSize(GO_WINDOW))
  )
  tls.on('secureConnection', (s: TLSSocket) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
    front.tls++
    const p = s.alpnProtocol || 'none'
    front.alpn.set(p, (front.alpn.get(p) ?? 0) + 1)
  })

  // The gate: the port the client connects to. Each new connection waits 2 × delay before the
  // TLS server gets it: the TCP and TLS 1.3 round trips a real network charges before the first
  // request can go (which then waits its own delay). The socket itself is handed over (no byte
  // relay, which would cost CPU in the 100 MiB copies); the first bytes are read to tell TLS
  // (a handshake record, 0x16) from plain HTTP, and put back for the TLS server to read.
  const gate = net.createServer({ pauseOnConnect: true }, (socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => socket.destroy())
    const onReadable = (): void => {
      const first = socket.read() as Buffer | null
      if (!first) return
      socket.removeListener('readable', onReadable)
      socket.unshift(first)
      if (first[0] === 0x16) {
        void sleep(2 * delayMs).then(() => {
          if (!socket.destroyed) tls.emit('connection', socket)
        })
        return
      }
      // Plain HTTP: one request, answered as Go answers it, after the connection's round trip
      // and the request's.
      front.plain++
      const line = /^([A-Z]+) (\S+) HTTP\//.exec(first.toString('latin1'))
      const hit = record(line?.[1] ?? '?', line?.[2] ?? '?')
      socket.resume()
      void sleep(2 * delayMs).then(() => {
        socket.end(GO_TLS_ANSWER, () => (hit.done = performance.now()))
      })
    }
    socket.on('readable', onReadable)
  })
  await new Promise<void>((r) => gate.listen(0, '127.0.0.1', r))
  const host = `127.0.0.1:${(gate.address() as AddressInfo).port}`

  const front: TlsFront = {
    host,
    url: `https://${host}`,
    requests,
    maxInFlight: 0,
    tls: 0,
    alpn: new Map(),
    plain: 0,
    reset() {
      requests.length = 0
      front.maxInFlight = inFlight
      front.tls = 0
      front.alpn.clear()
      front.plain = 0
    },
    stop: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy()
        agent.destroy()
        gate.close(() => r())
      })
  }
  return { proxy: front, hits }
}
