// HTTP/2 where the registry offers it: the real Distribution registry over TLS negotiates h2
// (ALPN), and a TCP relay in front counts the TLS connections the merge opens. Behaviours no
// Distribution registry has (a server that ends its connections, one that never answers) come
// from a Node HTTP/2 server in front of it.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { createHash } from 'node:crypto'
import { readFile, mkdtemp, rm } from 'node:fs/promises'
import {
  createSecureServer,
  type Http2SecureServer,
  type Http2Session,
  type IncomingHttpHeaders,
  type ServerHttp2Session
} from 'node:http2'
import { Agent, createServer as createHttpsServer, request as httpsRequest } from 'node:https'
import { createServer, connect, type Server, type Socket } from 'node:net'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { TLSSocket } from 'node:tls'
import { runAction } from '../helpers/action.js'
import { mergeWith } from '../helpers/merge.js'
import {
  blobExists,
  getManifest,
  pushImage,
  pushRandomImage,
  type PushedImage
} from '../helpers/oci.js'
import { makeCerts, startRegistry, type TestRegistry } from '../helpers/registry.js'
import { isTransientError, Transport } from '../../src/registry/transport.js'

/** Relays TCP to the registry as it is (TLS is not terminated) and counts TLS connections. */
interface Relay {
  host: string
  tlsConnections: number
  stop(): Promise<void>
  /** Ends every connection towards the client (a FIN), as a middlebox dropping them would. */
  cut(): void
}

async function startRelay(upstream: string): Promise<Relay> {
  const [host, port] = upstream.split(':')
  const sockets = new Set<Socket>()
  const relay: Relay = {
    host: '',
    tlsConnections: 0,
    stop: () => Promise.resolve(),
    cut: () => sockets.forEach((s) => s.end())
  }
  const server: Server = createServer((down) => {
    const up = connect(Number(port), host)
    sockets.add(down)
    down.on('close', () => up.destroy())
    // A TLS connection opens with a handshake record (0x16); the plain-HTTP tries a loopback
    // registry first gets are not counted.
    down.once('data', (first: Buffer) => {
      if (first[0] === 0x16) relay.tlsConnections++
    })
    down.pipe(up).pipe(down)
    down.on('error', () => up.destroy())
    up.on('error', () => down.destroy())
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  relay.host = `127.0.0.1:${(server.address() as AddressInfo).port}`
  relay.stop = () =>
    new Promise<void>((r) => {
      server.close(() => r())
      server.emit('close')
    })
  return relay
}

/**
 * A port in front of a TLS server on `tlsPort` that answers plain HTTP as Go's TLS servers do
 * (the registry among them), which is how a loopback registry is found to speak TLS.
 */
async function tlsPort(tlsPort: number): Promise<{ host: string; stop(): Promise<void> }> {
  const sockets = new Set<Socket>()
  const port: Server = createServer((socket) => {
    sockets.add(socket)
    socket.on('error', () => undefined)
    socket.once('data', (first: Buffer) => {
      if (first[0] !== 0x16) {
        socket.end(
          'HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\nClient sent an HTTP request to an HTTPS server.\n'
        )
        return
      }
      const up = connect(tlsPort, '127.0.0.1')
      up.on('error', () => socket.destroy())
      socket.on('close', () => up.destroy())
      up.write(first)
      socket.pipe(up).pipe(socket)
    })
  })
  await new Promise<void>((r) => port.listen(0, '127.0.0.1', r))
  return {
    host: `127.0.0.1:${(port.address() as AddressInfo).port}`,
    stop: () =>
      new Promise<void>((r) => {
        sockets.forEach((s) => s.destroy())
        port.close(() => r())
      })
  }
}

interface Front {
  host: string
  /** HTTP/2 sessions (connections) opened to the front. */
  sessions: number
  /** Streams (requests) received, on every session. */
  streams: number
  stop(): Promise<void>
}

/**
 * A Node HTTP/2 server (h2 only) in front of `upstream`, a TLS registry: `endAfter` closes each
 * session gracefully (GOAWAY, then the streams under way finish) after that many streams, as
 * nginx ends a connection after `keepalive_requests` requests, HTTP/2 ones included since 1.19.7
 * (https://nginx.org/en/docs/http/ngx_http_core_module.html#keepalive_requests); `silent`
 * accepts every stream and never answers; `headerBytes` adds that much of headers to every answer;
 * `stallBody` answers requests for those paths with their headers and half the body, then nothing.
 */
async function startFront(
  upstream: TestRegistry,
  opts: { endAfter?: number; silent?: boolean; headerBytes?: number; stallBody?: RegExp }
): Promise<Front> {
  const dir = await mkdtemp(join(tmpdir(), 'mm-h2-front-'))
  const certs = await makeCerts(dir)
  const agent = new Agent({ keepAlive: true, ca: await readFile(upstream.caFile ?? '') })
  const front: Front = { host: '', sessions: 0, streams: 0, stop: () => Promise.resolve() }
  const perSession = new Map<Http2Session, number>()
  const server: Http2SecureServer = createSecureServer({
    key: await readFile(certs.key),
    cert: await readFile(certs.cert),
    maxSendHeaderBlockLength: 256 * 1024
  })
  server.on('session', (session: ServerHttp2Session) => {
    front.sessions++
    perSession.set(session, 0)
    session.on('error', () => undefined)
  })
  server.on('stream', (stream, headers: IncomingHttpHeaders) => {
    stream.on('error', () => undefined)
    front.streams++
    const n = (perSession.get(stream.session!) ?? 0) + 1
    perSession.set(stream.session!, n)
    if (opts.endAfter && n === opts.endAfter) stream.session!.close()
    if (opts.silent) return
    const forwarded: Record<string, string | string[]> = {}
    for (const [k, v] of Object.entries(headers))
      if (!k.startsWith(':') && v !== undefined) forwarded[k] = v
    // The registry builds upload Locations from Host: the front's, so they come back here.
    forwarded.host = String(headers[':authority'])
    const up = httpsRequest(
      {
        host: '127.0.0.1',
        port: Number(upstream.host.split(':')[1]),
        method: String(headers[':method']),
        path: String(headers[':path']),
        headers: forwarded,
        agent
      },
      (answer) => {
        const back: Record<string, string | string[]> = { ':status': String(answer.statusCode) }
        for (let i = 0; i < (opts.headerBytes ?? 0) / 400; i++)
          back[`x-filler-${i}`] = 'f'.repeat(390)
        for (const [k, v] of Object.entries(answer.headers))
          if (v !== undefined && !['connection', 'keep-alive', 'transfer-encoding'].includes(k))
            back[k] = v
        stream.respond(back)
        if (opts.stallBody?.test(String(headers[':path']))) {
          const half = Number(answer.headers['content-length'] ?? 0) >> 1
          answer.once('data', (chunk: Buffer) => stream.write(chunk.subarray(0, half)))
          return
        }
        answer.pipe(stream)
      }
    )
    up.on('error', () => stream.destroy())
    stream.pipe(up)
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const port = await tlsPort((server.address() as AddressInfo).port)
  front.host = port.host
  front.stop = async () => {
    for (const session of perSession.keys()) session.destroy()
    await port.stop()
    await new Promise<void>((r) => server.close(() => r()))
    agent.destroy()
    await rm(dir, { recursive: true, force: true })
  }
  return front
}

/** The sha256 digest of everything `body` yields. */
async function digestOf(body: AsyncIterable<unknown>): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of body) hash.update(chunk as Buffer)
  return `sha256:${hash.digest('hex')}`
}

let reg: TestRegistry
let reg2: TestRegistry
let images: PushedImage[]

beforeAll(async () => {
  ;[reg, reg2] = await Promise.all([startRegistry({ tls: true }), startRegistry({ tls: true })])
  images = []
  for (const [i, arch] of ['amd64', 'arm64', 'ppc64le', 's390x', '386', 'riscv64'].entries())
    images.push(await pushImage(reg, 'h2/src', { arch, seed: `h2-${i}`, layers: 3 }))
})
afterAll(async () => {
  await Promise.all([reg?.stop(), reg2?.stop()])
})

describe('HTTP/2', () => {
  it.each([
    ['multiplexes every request of a merge on one TLS connection', true],
    ['opens a pool of HTTP/1.1 connections when turned off', false]
  ])('%s', async (_title, http2) => {
    const relay = await startRelay(reg.host)
    try {
      const target = `h2/rel-${String(http2)}`
      const r = await mergeWith(
        {
          tags: `${relay.host}/${target}:1\n${relay.host}/${target}:latest`,
          sources: images.map((i) => `${relay.host}/h2/src@${i.digest}`).join('\n'),
          'insecure-registries': relay.host
        },
        { http2 }
      )
      expect((await getManifest(reg, target, 'latest'))?.digest).toBe(r.index.digest)
      expect((await getManifest(reg, target, '1'))?.digest).toBe(r.index.digest)
      // Six sources copied across repositories: dozens of requests, many at once.
      expect(r.requests).toBeGreaterThan(20)
      if (http2) expect(relay.tlsConnections).toBe(1)
      else expect(relay.tlsConnections).toBeGreaterThan(3)
    } finally {
      await relay.stop()
    }
  })

  it('falls back to HTTP/1.1 where the registry does not offer h2', async () => {
    // Node's https server speaks HTTP/1.1 only (no ALPN h2): a front for the registry, as a
    // load balancer that terminates TLS would be.
    const dir = await mkdtemp(join(tmpdir(), 'mm-h1-'))
    const certs = await makeCerts(dir)
    const ca = await readFile(reg.caFile ?? '')
    const protocols: Array<string | false> = []
    const front = createHttpsServer(
      { key: await readFile(certs.key), cert: await readFile(certs.cert) },
      (req, res) => {
        const up = httpsRequest(
          {
            host: '127.0.0.1',
            port: Number(reg.host.split(':')[1]),
            method: req.method,
            path: req.url,
            headers: req.headers,
            agent: false,
            ca
          },
          (answer) => {
            res.writeHead(answer.statusCode ?? 502, answer.headers)
            answer.pipe(res)
          }
        )
        up.on('error', () => res.destroy())
        req.pipe(up)
      }
    )
    const idle = new Set<TLSSocket>()
    front.on('secureConnection', (socket: TLSSocket) => {
      protocols.push(socket.alpnProtocol ?? false)
      idle.add(socket)
    })
    front.on('request', (req: { socket: TLSSocket }) => idle.delete(req.socket))
    // Plain HTTP on the TLS port gets Go's answer, as from the registry itself, which is how a
    // loopback registry is found to speak TLS.
    await new Promise<void>((r) => front.listen(0, '127.0.0.1', r))
    const frontPort = (front.address() as AddressInfo).port
    const port = await tlsPort(frontPort)
    const host = port.host
    try {
      const r = await mergeWith({
        tags: `${host}/h2/rel-h1:1`,
        sources: images.map((i) => `${host}/h2/src@${i.digest}`).join('\n'),
        'insecure-registries': host
      })
      expect((await getManifest(reg, 'h2/rel-h1', '1'))?.digest).toBe(r.index.digest)
      // Every connection chose HTTP/1.1, several at once.
      expect(protocols.length).toBeGreaterThan(1)
      expect(new Set(protocols)).toEqual(new Set(['http/1.1']))
      // The handshake that asked for h2 carried requests over HTTP/1.1 too: none was wasted.
      expect(idle.size).toBe(0)
    } finally {
      front.closeAllConnections()
      front.close()
      await port.stop()
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('streams a copy between two registries, one connection to each', async () => {
    const [ra, rb] = await Promise.all([startRelay(reg.host), startRelay(reg2.host)])
    try {
      const big = await Promise.all([
        pushRandomImage(reg, 'h2/big', { os: 'linux', architecture: 'amd64' }, 24),
        pushRandomImage(reg, 'h2/big', { os: 'linux', architecture: 'arm64' }, 24)
      ])
      const r = await mergeWith({
        tags: `${rb.host}/h2/copied:1`,
        sources: big.map((b) => `${ra.host}/h2/big@${b.digest}`).join('\n'),
        'insecure-registries': `${ra.host}\n${rb.host}`
      })
      expect((await getManifest(reg2, 'h2/copied', '1'))?.digest).toBe(r.index.digest)
      for (const b of big) expect(await blobExists(reg2, 'h2/copied', b.layer)).toBe(true)
      expect(r.log.filter((l) => l.startsWith('retry'))).toEqual([])
      expect([ra.tlsConnections, rb.tlsConnections]).toEqual([1, 1])
    } finally {
      await Promise.all([ra.stop(), rb.stop()])
    }
  })

  it('goes on over a new connection when the registry ends one (GOAWAY)', async () => {
    const front = await startFront(reg, { endAfter: 6 })
    try {
      const r = await mergeWith({
        tags: `${front.host}/h2/goaway:1`,
        sources: images.map((i) => `${front.host}/h2/src@${i.digest}`).join('\n'),
        'insecure-registries': front.host
      })
      expect((await getManifest(reg, 'h2/goaway', '1'))?.digest).toBe(r.index.digest)
      // Six sources mounted into a new repository: far more than six requests, so the front
      // ended several connections and the merge opened new ones.
      expect(front.streams).toBeGreaterThan(20)
      expect(front.sessions).toBeGreaterThanOrEqual(Math.ceil(front.streams / 6))
    } finally {
      await front.stop()
    }
  })

  it('names the registry that accepts streams and never answers', async () => {
    const front = await startFront(reg, { silent: true })
    try {
      const err = (await mergeWith(
        {
          tags: `${front.host}/h2/silent:1`,
          sources: `${front.host}/h2/src@${images[0].digest}`,
          'insecure-registries': front.host,
          retries: '1'
        },
        { requestTimeoutMs: 300, maxRetryDelayMs: 50 }
      ).catch((e: unknown) => e)) as Error
      expect(err).toBeInstanceOf(Error)
      expect(err.message).toContain(`registry ${front.host} did not answer in time`)
      expect(err.message).toContain('UND_ERR_HEADERS_TIMEOUT (Headers Timeout Error)')
      // A stream with no answer may mean a dead connection: the retry went on a new one.
      expect(front.sessions).toBe(2)
      expect(front.streams).toBeGreaterThan(1)
    } finally {
      await front.stop()
    }
  })

  it('reads answers with 100 KB of headers in 250 fields', async () => {
    // Google Artifact Registry sends about 21 KB of headers, past the 16 KiB Node's HTTP/1.1
    // allows by default (https://github.com/actions/attest-build-provenance/issues/606); Node's
    // HTTP/2 client resets a stream with more than 128 header fields unless told otherwise.
    const front = await startFront(reg, { headerBytes: 100_000 })
    try {
      const r = await mergeWith({
        tags: `${front.host}/h2/headers:1`,
        sources: images.map((i) => `${front.host}/h2/src@${i.digest}`).join('\n'),
        'insecure-registries': front.host
      })
      expect((await getManifest(reg, 'h2/headers', '1'))?.digest).toBe(r.index.digest)
      expect(front.sessions).toBe(1)
    } finally {
      await front.stop()
    }
  })

  it('the action (node dist/index.js) verifies the registry with NODE_EXTRA_CA_CERTS, one connection', async () => {
    const relay = await startRelay(reg.host)
    try {
      const run = await runAction(
        {
          tags: `${relay.host}/h2/action:1`,
          sources: images.map((i) => `${relay.host}/h2/src@${i.digest}`).join('\n')
        },
        { NODE_EXTRA_CA_CERTS: reg.caFile ?? '' }
      )
      expect(run.code).toBe(0)
      expect((await getManifest(reg, 'h2/action', '1'))?.digest).toBe(run.outputs.digest)
      expect(relay.tlsConnections).toBe(1)
    } finally {
      await relay.stop()
    }
  })

  it('names the registry whose answer stops half-way through its body', async () => {
    const front = await startFront(reg, { stallBody: /\/manifests\/sha256:/ })
    try {
      const err = (await mergeWith(
        {
          tags: `${front.host}/h2/stalled:1`,
          sources: `${front.host}/h2/src@${images[0].digest}`,
          'insecure-registries': front.host,
          retries: '1'
        },
        { requestTimeoutMs: 300, maxRetryDelayMs: 50 }
      ).catch((e: unknown) => e)) as Error
      expect(err).toBeInstanceOf(Error)
      expect(err.message).toContain(`${front.host}/h2/src@${images[0].digest}`)
      expect(err.message).toContain('UND_ERR_BODY_TIMEOUT (Body Timeout Error)')
      // The retry went on a new connection: the silent one may be dead.
      expect(front.sessions).toBe(2)
    } finally {
      await front.stop()
    }
  })

  it('reads a body its reader leaves paused longer than the request timeout', async () => {
    // A streamed copy pauses its download while the upload is slower: not a stalled registry.
    const relay = await startRelay(reg.host)
    const big = await pushRandomImage(reg, 'h2/paused', { os: 'linux', architecture: 'amd64' }, 8)
    const t = new Transport({
      maxConcurrency: 2,
      requestTimeoutMs: 300,
      insecureHosts: new Set([relay.host]),
      env: {}
    })
    try {
      const url = new URL(`https://${relay.host}/v2/h2/paused/blobs/${big.layer}`)
      const ex = await t.exchange('GET', url, {}, undefined, 300)
      expect(ex.status).toBe(200)
      ex.body.pause()
      await new Promise((r) => setTimeout(r, 1000))
      expect(await digestOf(ex.body)).toBe(big.layer)
      expect(relay.tlsConnections).toBe(1)
    } finally {
      await t.close()
      await relay.stop()
    }
  })

  it('fails a body cut short by a closed connection as a network error, to retry', async () => {
    const relay = await startRelay(reg.host)
    const big = await pushRandomImage(reg, 'h2/cut', { os: 'linux', architecture: 'amd64' }, 8)
    const t = new Transport({
      maxConcurrency: 2,
      requestTimeoutMs: 5000,
      insecureHosts: new Set([relay.host]),
      env: {}
    })
    try {
      const url = new URL(`https://${relay.host}/v2/h2/cut/blobs/${big.layer}`)
      const ex = await t.exchange('GET', url, {}, undefined, 5000)
      let read = 0
      const err = await (async () => {
        for await (const chunk of ex.body) {
          read += (chunk as Buffer).length
          if (read > 1024 * 1024) relay.cut()
        }
      })().catch((e: unknown) => e)
      expect(read).toBeLessThan(8 * 1024 * 1024)
      expect(err).toBeInstanceOf(Error)
      expect(isTransientError(err)).toBe(true)
      // The next request opens a new connection and gets the whole blob.
      const again = await t.exchange('GET', url, {}, undefined, 5000)
      expect(await digestOf(again.body)).toBe(big.layer)
      expect(relay.tlsConnections).toBe(2)
    } finally {
      await t.close()
      await relay.stop()
    }
  })
})
