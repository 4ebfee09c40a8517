import { afterAll, describe, expect, it } from '@jest/globals'
import { getEventListeners } from 'node:events'
import { createServer, type Server } from 'node:http'
import {
  createServer as createNetServer,
  type AddressInfo,
  type Server as NetServer,
  type Socket
} from 'node:net'
import { PassThrough, Readable } from 'node:stream'
import { parseChallenges } from '../../src/registry/challenge.js'
import { retryAfterMs } from '../../src/registry/retry.js'
import { dockerConfigCredential } from '../../src/registry/credentials.js'
import {
  describeFailure,
  discardBody,
  drop,
  isTransientError,
  ProxyError,
  readBody,
  Transport
} from '../../src/registry/transport.js'

describe('WWW-Authenticate', () => {
  it('parses Bearer challenges with quoted and bare params', () => {
    expect(
      parseChallenges(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"'
      )
    ).toEqual([
      {
        scheme: 'bearer',
        params: {
          realm: 'https://auth.docker.io/token',
          service: 'registry.docker.io',
          scope: 'repository:library/alpine:pull'
        }
      }
    ])
    expect(parseChallenges('Basic realm="Registry Realm"')).toEqual([
      { scheme: 'basic', params: { realm: 'Registry Realm' } }
    ])
    expect(parseChallenges(undefined)).toEqual([])
  })
})

describe('Retry-After', () => {
  it('reads seconds and HTTP dates', () => {
    expect(retryAfterMs('3')).toBe(3000)
    const now = Date.parse('2026-01-01T00:00:00Z')
    expect(retryAfterMs('Thu, 01 Jan 2026 00:00:05 GMT', now)).toBe(5000)
    expect(retryAfterMs('soon')).toBeUndefined()
  })
})

describe('docker config', () => {
  it('reads auth entries, with Docker Hub under its historical key', () => {
    const cfg = {
      auths: {
        'https://index.docker.io/v1/': { auth: Buffer.from('me:secret').toString('base64') },
        'ghcr.io': { username: 'u', password: 'p' }
      }
    }
    expect(dockerConfigCredential(cfg, 'docker.io')).toEqual({ username: 'me', password: 'secret' })
    expect(dockerConfigCredential(cfg, 'ghcr.io')).toEqual({ username: 'u', password: 'p' })
    expect(dockerConfigCredential(cfg, 'quay.io')).toBeUndefined()
  })
})

describe('Transport', () => {
  const servers: Array<Server | NetServer> = []
  afterAll(() => servers.forEach((s) => s.close()))
  const listen = async <S extends Server | NetServer>(s: S): Promise<number> => {
    servers.push(s)
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r))
    return (s.address() as AddressInfo).port
  }
  const transport = (env: NodeJS.ProcessEnv = {}, onSecret?: (s: string) => void): Transport =>
    new Transport({
      maxConcurrency: 2,
      requestTimeoutMs: 5000,
      insecureHosts: new Set(),
      env,
      onSecret
    })
  const get = async (t: Transport, url: string): Promise<{ status: number; body: string }> => {
    const ex = await t.exchange('GET', new URL(url), {}, undefined, 5000)
    return { status: ex.status, body: Buffer.from(await readBody(ex, 1024, 5000)).toString() }
  }

  // Google Artifact Registry sends ~21 KB of headers; Node's default limit is 16 KiB
  // (https://github.com/actions/attest-build-provenance/issues/606). The action reads at least
  // 64 KiB: 40 KB as many fields, 100 KB as many fields, and one field of 80 KB.
  it.each([
    ['40 KB in 40 fields', 40, 1000],
    ['100 KB in 100 fields', 100, 1000],
    ['80 KB in one field', 1, 80 * 1024]
  ])('reads large response headers: %s', async (_name, fields, bytes) => {
    const port = await listen(
      createServer((_req, res) => {
        for (let i = 0; i < fields; i++) res.setHeader(`x-filler-${i}`, 'a'.repeat(bytes))
        res.end('ok')
      })
    )
    const t = transport()
    try {
      const ex = await t.exchange('GET', new URL(`http://127.0.0.1:${port}/`), {}, undefined, 5000)
      for (let i = 0; i < fields; i++) expect(ex.headers[`x-filler-${i}`]).toBe('a'.repeat(bytes))
      expect(Buffer.from(await readBody(ex, 1024, 5000)).toString()).toBe('ok')
    } finally {
      await t.close()
    }
  })

  it('keeps the connection open after a HEAD', async () => {
    let connections = 0
    const server = createServer((req, res) => {
      res.setHeader('content-length', '2')
      res.end(req.method === 'HEAD' ? undefined : 'ok')
    })
    server.on('connection', () => connections++)
    const port = await listen(server)
    const t = transport()
    try {
      for (const method of ['HEAD', 'HEAD', 'GET', 'HEAD'] as const) {
        const ex = await t.exchange(
          method,
          new URL(`http://127.0.0.1:${port}/`),
          {},
          undefined,
          5000
        )
        if (method === 'HEAD') await discardBody(ex, 5000)
        else expect(Buffer.from(await readBody(ex, 1024, 5000)).toString()).toBe('ok')
        // undici hands a socket back to its pool a tick after the answer ends.
        await new Promise((r) => setImmediate(r))
      }
      expect(connections).toBe(1)
    } finally {
      await t.close()
    }
  })

  it('sends Host as the URL has it, Content-Length for whole bodies, and reads repeated headers', async () => {
    const seen: Array<{ method?: string; host?: string; length?: string; body: string }> = []
    const port = await listen(
      createServer((req, res) => {
        let body = ''
        req.on('data', (d: Buffer) => (body += d.toString()))
        req.on('end', () => {
          seen.push({
            method: req.method,
            host: req.headers.host,
            length: req.headers['content-length'],
            body
          })
          // Two challenges in two fields, as a registry offering Bearer and Basic may send them.
          res.setHeader('www-authenticate', ['Bearer realm="https://t.example/token"', 'Basic'])
          res.setHeader('x-once', 'one')
          res.end('ok')
        })
      })
    )
    const t = transport()
    try {
      const url = new URL(`http://127.0.0.1:${port}/v2/x/blobs/uploads/`)
      const empty = await t.exchange('POST', url, {}, undefined, 5000)
      expect(empty.headers['www-authenticate']).toEqual([
        'Bearer realm="https://t.example/token"',
        'Basic'
      ])
      expect(empty.headers['x-once']).toBe('one')
      await discardBody(empty, 5000)
      const put = await t.exchange('PUT', url, {}, new TextEncoder().encode('12345'), 5000)
      await discardBody(put, 5000)
      expect(seen).toEqual([
        { method: 'POST', host: `127.0.0.1:${port}`, length: '0', body: '' },
        { method: 'PUT', host: `127.0.0.1:${port}`, length: '5', body: '12345' }
      ])
    } finally {
      await t.close()
    }
  })

  it('waits for a reader that is slower than the request timeout, and fails a body cut short', async () => {
    const port = await listen(
      createServer((req, res) => {
        res.setHeader('content-length', '8')
        res.write('1234')
        if (req.url === '/cut') setTimeout(() => req.socket.destroy(), 50)
        else setTimeout(() => res.end('5678'), 50)
      })
    )
    const t = new Transport({
      maxConcurrency: 2,
      requestTimeoutMs: 200,
      insecureHosts: new Set(),
      env: {}
    })
    try {
      const slow = await t.exchange(
        'GET',
        new URL(`http://127.0.0.1:${port}/whole`),
        {},
        undefined,
        200
      )
      // Unread for twice the request timeout: the registry is not the one stalling.
      await new Promise((r) => setTimeout(r, 400))
      expect(Buffer.from(await readBody(slow, 1024, 200)).toString()).toBe('12345678')
      const cut = await t.exchange(
        'GET',
        new URL(`http://127.0.0.1:${port}/cut`),
        {},
        undefined,
        200
      )
      const err = await readBody(cut, 1024, 200).catch((e: unknown) => e)
      expect(isTransientError(err)).toBe(true)
      expect(describeFailure(err)).toBe(
        'ECONNRESET (the connection closed before the end of the answer)'
      )
    } finally {
      await t.close()
    }
  })

  it('fails a streamed upload whose answer comes a byte at a time, and one shorter than its Content-Length', async () => {
    const dripping = new Set<Socket>()
    const port = await listen(
      createNetServer((socket) => {
        dripping.add(socket)
        // Once the request is in, the answer's head trickles, a byte at a time, never whole.
        socket.once('data', () => {
          socket.write('HTTP/1.1 200 OK\r\nX-Slow: ')
          const drip = setInterval(() => socket.write('X'), 50)
          socket.on('close', () => clearInterval(drip))
        })
        socket.on('error', () => undefined)
      })
    )
    const t = new Transport({
      maxConcurrency: 1,
      requestTimeoutMs: 300,
      insecureHosts: new Set(),
      env: {}
    })
    // Bounded, so that a regression fails here rather than hanging the run.
    const settled = (p: Promise<unknown>): Promise<unknown> =>
      Promise.race([
        p.catch((e: unknown) => e),
        new Promise((r) => setTimeout(() => r(new Error('neither answered nor failed')), 3000))
      ])
    try {
      const url = new URL(`http://127.0.0.1:${port}/upload`)
      const upload = (length: string): Promise<unknown> =>
        settled(
          t.exchange(
            'PUT',
            url,
            { 'content-length': length },
            Readable.from([Buffer.from('12345')]),
            300
          )
        )
      expect(describeFailure(await upload('5'))).toBe(
        'UND_ERR_HEADERS_TIMEOUT (Headers Timeout Error)'
      )
      const short = await upload('10')
      expect(describeFailure(short)).toBe(
        'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH (the upload sent 5 bytes where its Content-Length said 10)'
      )
      expect(isTransientError(short)).toBe(true)
    } finally {
      dripping.forEach((s) => s.destroy())
      await t.close()
    }
  })

  describe('connections left behind', () => {
    /** A server that counts its open connections. */
    const counted = async (
      handler: Parameters<typeof createServer>[1]
    ): Promise<{ port: number; open: () => number }> => {
      let open = 0
      const server = createServer(handler)
      server.on('connection', (s) => {
        open++
        s.on('close', () => open--)
      })
      return { port: await listen(server), open: () => open }
    }
    /** Waits (up to 2 s) for `check` to hold; the outcome is asserted, not the time. */
    const until = async (check: () => boolean): Promise<void> => {
      for (let i = 0; i < 40 && !check(); i++) await new Promise((r) => setTimeout(r, 50))
    }
    // maxConcurrency 1: six connections per origin, all of them lost before the fix.
    const small = (): Transport =>
      new Transport({
        maxConcurrency: 1,
        requestTimeoutMs: 1000,
        insecureHosts: new Set(),
        env: {}
      })

    it('closes the connection of an answer dropped unread, even when every byte has come', async () => {
      const srv = await counted((_req, res) => {
        res.setHeader('content-length', '90000')
        res.end(Buffer.alloc(90_000, 97))
      })
      const t = small()
      try {
        const url = new URL(`http://127.0.0.1:${srv.port}/blob`)
        for (let i = 0; i < 7; i++) {
          const ex = await t.exchange('GET', url, {}, undefined, 1000)
          // Every byte arrives, and nobody reads them.
          await new Promise((r) => setTimeout(r, 50))
          drop(ex.body)
        }
        await until(() => srv.open() === 0)
        expect(srv.open()).toBe(0)
        const ex = await t.exchange('GET', url, {}, undefined, 1000)
        expect((await readBody(ex, 100_000, 1000)).length).toBe(90_000)
      } finally {
        await t.close()
      }
    })

    it('closes a connection whose upload was answered early, once the answer is read', async () => {
      const srv = await counted((req, res) => {
        // Answered before the body is read, the connection kept (Node's server and nginx do).
        res.statusCode = req.method === 'PUT' ? 401 : 200
        res.end(req.method === 'PUT' ? 'denied' : 'ok')
      })
      const t = small()
      try {
        const url = new URL(`http://127.0.0.1:${srv.port}/upload`)
        const source = new PassThrough()
        source.write(Buffer.alloc(1000))
        const headers = { 'content-length': '1000000' }
        const ex = await t.exchange('PUT', url, headers, source, 1000)
        expect(ex.status).toBe(401)
        await discardBody(ex, 1000)
        source.destroy() // as request.ts does once the answer is in
        await until(() => srv.open() === 0)
        expect(srv.open()).toBe(0)
      } finally {
        await t.close()
      }
    })

    it('lets an exchange in flight finish before close() returns', async () => {
      let seen = 0
      const srv = await counted((_req, res) => {
        seen++
        setTimeout(() => res.end('ok'), 200)
      })
      const t = small()
      let status: number | undefined
      const pending = t
        .exchange('GET', new URL(`http://127.0.0.1:${srv.port}/slow`), {}, undefined, 1000)
        .then((ex) => (status = ex.status))
      await until(() => seen === 1)
      await t.close()
      // Another merge's request, as when one merge of a run failed: answered, not cut off.
      expect(status).toBe(200)
      await pending
      await until(() => srv.open() === 0)
      expect(srv.open()).toBe(0)
    })

    it('leaves no listener on the step signal for uploads that failed', async () => {
      const srv = await counted((req) => req.socket.destroy())
      const t = small()
      const stop = new AbortController()
      try {
        for (let i = 0; i < 12; i++) {
          const body = Readable.from([Buffer.alloc(10)])
          const url = new URL(`http://127.0.0.1:${srv.port}/x`)
          const headers = { 'content-length': '10' }
          const failed = await t
            .exchange('PUT', url, headers, body, 1000, stop.signal)
            .catch((e: unknown) => e)
          expect(isTransientError(failed)).toBe(true)
        }
        expect(getEventListeners(stop.signal, 'abort')).toHaveLength(0)
      } finally {
        await t.close()
      }
    })
  })

  it('names the proxy when it answers CONNECT with 502, and retries that', async () => {
    const connects: string[] = []
    const port = await listen(
      createNetServer((socket) => {
        socket.once('data', (d) => {
          connects.push(d.toString().split('\r\n')[0])
          socket.end('HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n')
        })
      })
    )
    const secrets: string[] = []
    const t = transport(
      { HTTPS_PROXY: `http://me:Hunter-22@127.0.0.1:${port}`, NO_PROXY: '<-loopback>' },
      (s) => secrets.push(s)
    )
    try {
      const e = await get(t, 'https://127.0.0.1:1/v2/').catch((x: unknown) => x)
      expect(e).toBeInstanceOf(ProxyError)
      expect((e as ProxyError).message).toBe(
        `the proxy http://me:***@127.0.0.1:${port} (from HTTPS_PROXY) could not connect to 127.0.0.1:1: it answered CONNECT with 502`
      )
      expect(isTransientError(e)).toBe(true)
      expect(describeFailure(e)).toBe((e as ProxyError).message)
      expect(connects).toEqual(['CONNECT 127.0.0.1:1 HTTP/1.1'])
      expect(secrets).toEqual(['Hunter-22'])
    } finally {
      await t.close()
    }
  })

  it('fails only the requests that need an unusable proxy', async () => {
    const port = await listen(createServer((_req, res) => res.end('direct')))
    const t = transport({ HTTPS_PROXY: 'socks5://proxy:1080', HTTP_PROXY: '' })
    try {
      expect(await get(t, `http://127.0.0.1:${port}/`)).toEqual({ status: 200, body: 'direct' })
      const e = await get(t, 'https://registry.example/v2/').catch((x: unknown) => x)
      expect(e).toBeInstanceOf(ProxyError)
      expect(isTransientError(e)).toBe(false)
      expect((e as Error).message).toMatch(/^HTTPS_PROXY names a socks5: proxy/)
    } finally {
      await t.close()
    }
  })
})
