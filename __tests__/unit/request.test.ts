// The one request path, rule by rule, against small servers on loopback: which origin gets
// credentials, the 401 refresh, redirects, the limiter, body caps, errors and the TLS switch.
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import {
  createServer,
  type IncomingMessage,
  type RequestListener,
  type Server,
  type ServerResponse
} from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import net, { type AddressInfo } from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { StaticCredentials } from '../../src/registry/credentials.js'
import { RegistryError, RetriesExhaustedError } from '../../src/registry/errors.js'
import { RequestPath, type RegistryRequest } from '../../src/registry/request.js'
import { upload } from '../../src/registry/upload.js'
import { makeCerts } from '../helpers/registry.js'

const USER = 'alice'
const PASSWORD = 'Secret-Passw0rd'
const BASIC = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`

interface Seen {
  method: string
  url: string
  authorization?: string
}

interface TestServer {
  host: string
  url: string
  seen: Seen[]
  handle: RequestListener
  close(): Promise<void>
}

/** An HTTP server on loopback that records what it receives and answers with `handle`. */
async function serve(): Promise<TestServer> {
  const s: TestServer = {
    host: '',
    url: '',
    seen: [],
    handle: (_req, res) => void res.writeHead(404).end(),
    close: () => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r())))
  }
  const server: Server = createServer((req, res) => {
    s.seen.push({
      method: req.method ?? '',
      url: req.url ?? '',
      authorization: req.headers.authorization
    })
    s.handle(req, res)
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  s.host = `127.0.0.1:${(server.address() as AddressInfo).port}`
  s.url = `http://${s.host}`
  return s
}

let registry: TestServer
let other: TestServer
let auth: TestServer
/** Tokens the token server hands out, in order; the registry accepts only `valid` ones. */
let tokens: string[]
let valid: Set<string>

beforeAll(async () => {
  ;[registry, other, auth] = await Promise.all([serve(), serve(), serve()])
})
afterAll(async () => {
  await Promise.all([registry.close(), other.close(), auth.close()])
})
afterEach(() => {
  for (const s of [registry, other, auth]) {
    s.seen.length = 0
    s.handle = (_req, res) => void res.writeHead(404).end()
  }
})

/** A token server on `auth` and a registry on `registry` that challenges for its tokens. */
function tokenAuth(issued: string[], accepted: string[]): void {
  tokens = [...issued]
  valid = new Set(accepted)
  auth.handle = (_req, res) => {
    const token = tokens.shift() ?? 'none-left'
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token }))
  }
}

/** Whether `req` carries a token the registry accepts; if not, answers the 401 challenge. */
function authorised(req: IncomingMessage, res: ServerResponse): boolean {
  const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1]
  if (token && valid.has(token)) return true
  res
    .writeHead(401, {
      'www-authenticate': `Bearer realm="${auth.url}/token",service="test",scope="repository:app:pull"`,
      'content-type': 'application/json'
    })
    .end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] }))
  return false
}

function path_(opts: Partial<ConstructorParameters<typeof RequestPath>[0]> = {}): RequestPath {
  return new RequestPath({
    credentials: new StaticCredentials({
      explicit: new Map([[registry.host, { username: USER, password: PASSWORD }]])
    }),
    maxConcurrency: 8,
    retries: 2,
    requestTimeoutMs: 5000,
    insecureHosts: new Set(),
    baseDelayMs: 1,
    sleep: () => Promise.resolve(),
    ...opts
  })
}

const repo = (): RegistryRequest['repo'] => ({ registry: registry.host, repository: 'app' })

function get(p: RequestPath, url: string, more: Partial<RegistryRequest> = {}) {
  return p.send({
    repo: repo(),
    method: 'GET',
    url,
    what: 'blob x',
    expect: [200],
    read: { maxBytes: 1024 * 1024, limitName: 'tests' },
    ...more
  })
}

const text = (b: Uint8Array): string => Buffer.from(b).toString('utf8')

describe('credentials go to the registry origin only', () => {
  it('follows a redirect to another origin without the Authorization header', async () => {
    tokenAuth(['t1'], ['t1'])
    registry.handle = (req, res) => {
      if (!authorised(req, res)) return
      res.writeHead(307, { location: `${other.url}/bucket/x?sig=1` }).end()
    }
    other.handle = (_req, res) => void res.writeHead(200).end('blob bytes')
    const p = path_()
    try {
      const res = await get(p, '/v2/app/blobs/sha256:x')
      expect(text(res.body)).toBe('blob bytes')
      expect(res.url).toBe(`${other.url}/bucket/x?sig=1`)
    } finally {
      await p.close()
    }
    expect(registry.seen.map((s) => s.authorization)).toEqual([undefined, 'Bearer t1'])
    expect(other.seen).toEqual([
      { method: 'GET', url: '/bucket/x?sig=1', authorization: undefined }
    ])
    // The token realm got the Basic credentials, once.
    expect(auth.seen.map((s) => s.authorization)).toEqual([BASIC])
  })

  it('sends no credentials to an upload Location on another origin, and takes its 401 as final', async () => {
    tokenAuth(['t1'], ['t1'])
    registry.handle = (req, res) => {
      if (!authorised(req, res)) return
      if (req.method === 'POST')
        return void res.writeHead(202, { location: `${other.url}/upload/1?state=a` }).end()
      res.writeHead(404).end()
    }
    // A host that asks for credentials at a realm of its own choosing.
    other.handle = (req, res) => {
      if (req.method === 'DELETE') return void res.writeHead(204).end()
      res
        .writeHead(401, { 'www-authenticate': `Basic realm="${other.url}/steal"` })
        .end('who are you?')
    }
    const p = path_()
    try {
      const err = await upload((r) => p.send(r), {
        target: repo(),
        digest: 'sha256:' + 'a'.repeat(64),
        size: 3,
        label: 'upload of blob a',
        open: () => Buffer.from('abc')
      }).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(RegistryError)
      expect((err as RegistryError).status).toBe(401)
    } finally {
      await p.close()
    }
    expect(other.seen.filter((s) => s.method === 'PUT')).toHaveLength(1)
    expect(other.seen.every((s) => s.authorization === undefined)).toBe(true)
    expect(other.seen.some((s) => s.url.startsWith('/steal'))).toBe(false)
    // One token, for the POST: the foreign 401 asked for nothing.
    expect(auth.seen).toHaveLength(1)
  })

  it('takes a 401 from another origin (a Link to another host) as an error, asking no token endpoint', async () => {
    tokenAuth(['t1'], ['t1'])
    other.handle = (_req, res) =>
      void res.writeHead(401, { 'www-authenticate': `Bearer realm="${other.url}/token"` }).end()
    const p = path_()
    try {
      const err = (await get(p, `${other.url}/v2/app/referrers/x`).catch(
        (e: unknown) => e
      )) as RegistryError
      expect(err.status).toBe(401)
      expect(err.message).toContain(`in ${registry.host}/app failed: HTTP 401`)
    } finally {
      await p.close()
    }
    expect(auth.seen).toEqual([])
    expect(other.seen.map((s) => s.url)).toEqual(['/v2/app/referrers/x'])
  })

  it('sends the Basic credentials to the token realm only, not to a redirect it makes', async () => {
    tokenAuth([], [])
    auth.handle = (_req, res) => void res.writeHead(302, { location: `${other.url}/token2` }).end()
    other.handle = (_req, res) =>
      void res.writeHead(200, { 'content-type': 'application/json' }).end('{"token":"t9"}')
    valid.add('t9')
    registry.handle = (req, res) => {
      if (authorised(req, res)) res.writeHead(200).end('ok')
    }
    const p = path_()
    try {
      expect(text((await get(p, '/v2/app/manifests/1')).body)).toBe('ok')
    } finally {
      await p.close()
    }
    expect(auth.seen.map((s) => s.authorization)).toEqual([BASIC])
    expect(other.seen.map((s) => s.authorization)).toEqual([undefined])
  })
})

describe('401', () => {
  it('refreshes an expired token once and retries', async () => {
    tokenAuth(['expired', 'fresh'], ['fresh'])
    registry.handle = (req, res) => {
      if (authorised(req, res)) res.writeHead(200).end('ok')
    }
    const p = path_()
    try {
      expect(text((await get(p, '/v2/app/manifests/1')).body)).toBe('ok')
    } finally {
      await p.close()
    }
    expect(registry.seen.map((s) => s.authorization)).toEqual([
      undefined,
      'Bearer expired',
      'Bearer fresh'
    ])
    expect(auth.seen).toHaveLength(2)
  })

  it('fails after one refresh when the registry keeps refusing, naming registry and repository', async () => {
    tokenAuth(['t1', 't2', 't3'], [])
    registry.handle = (req, res) => void authorised(req, res)
    const p = path_()
    try {
      const err = (await get(p, '/v2/app/manifests/1').catch((e: unknown) => e)) as RegistryError
      expect(err).toBeInstanceOf(RegistryError)
      expect(err.status).toBe(401)
      expect(err.message).toMatch(
        new RegExp(
          `^registry ${registry.host} refused ${registry.host}/app \\(GET /v2/app/manifests/1\\) as ${USER}: check the credentials`
        )
      )
    } finally {
      await p.close()
    }
    // Anonymous, first token, refreshed token: then it stops.
    expect(registry.seen).toHaveLength(3)
    expect(auth.seen).toHaveLength(2)
  })
})

describe('redirects', () => {
  function chain(hops: number): void {
    registry.handle = (req, res) => {
      const n = Number(/\/hop\/(\d+)/.exec(req.url ?? '')?.[1] ?? hops)
      if (n === 0) return void res.writeHead(200).end('end')
      res.writeHead(302, { location: `/hop/${n - 1}` }).end()
    }
  }

  it('follows up to five for reads, and refuses a sixth', async () => {
    const p = path_()
    try {
      chain(5)
      expect(text((await get(p, '/hop/5')).body)).toBe('end')
      chain(6)
      await expect(get(p, '/hop/6')).rejects.toThrow(/too many redirects \(over 5\)/)
    } finally {
      await p.close()
    }
  })

  it('does not follow a redirect of a PUT, nor one the caller wants to see', async () => {
    registry.handle = (_req, res) => void res.writeHead(307, { location: `${other.url}/put` }).end()
    const p = path_()
    try {
      const put = await p
        .send({
          repo: repo(),
          method: 'PUT',
          url: '/v2/app/manifests/1',
          what: 'manifest 1',
          expect: [201],
          body: () => '{}'
        })
        .catch((e: unknown) => e)
      expect((put as RegistryError).status).toBe(307)
      const head = await p.send({
        repo: repo(),
        method: 'HEAD',
        url: '/v2/app/blobs/x',
        what: 'blob x',
        expect: [200, 307]
      })
      expect(head.status).toBe(307)
    } finally {
      await p.close()
    }
    expect(other.seen).toEqual([])
  })

  it('refuses a redirect to a scheme other than http(s)', async () => {
    registry.handle = (_req, res) =>
      void res.writeHead(302, { location: 'file:///etc/passwd' }).end()
    const p = path_()
    try {
      await expect(get(p, '/v2/app/blobs/x')).rejects.toThrow(/redirected to a file: URL/)
    } finally {
      await p.close()
    }
  })
})

describe('the limiter', () => {
  it('keeps at most max-concurrency requests in flight', async () => {
    let active = 0
    let peak = 0
    registry.handle = (_req, res) => {
      peak = Math.max(peak, ++active)
      setTimeout(() => {
        active--
        res.writeHead(200).end('ok')
      }, 30)
    }
    const p = path_({ maxConcurrency: 2 })
    try {
      await Promise.all(Array.from({ length: 6 }, () => get(p, '/v2/app/manifests/1')))
    } finally {
      await p.close()
    }
    expect(peak).toBe(2)
  })

  it('exempts token requests and the source GET of a PUT that holds the only slot', async () => {
    tokenAuth(['t1'], ['t1'])
    let received = ''
    registry.handle = (req, res) => {
      if (!authorised(req, res)) return
      if (req.method === 'GET') return void res.writeHead(200).end('streamed')
      req.on('data', (c: Buffer) => (received += c.toString()))
      req.on('end', () => res.writeHead(201).end())
    }
    const p = path_({ maxConcurrency: 1 })
    try {
      const res = await p.send({
        repo: repo(),
        method: 'PUT',
        url: '/v2/app/blobs/uploads/1?digest=x',
        what: 'blob x',
        expect: [201],
        headers: { 'content-length': '8' },
        body: async () => {
          const src = await get(p, '/v2/app/blobs/x', { read: 'stream', unlimited: true })
          return src.stream!
        }
      })
      expect(res.status).toBe(201)
    } finally {
      await p.close()
    }
    expect(received).toBe('streamed')
  }, 10_000)
})

describe('body caps', () => {
  it('refuses a body over its cap, naming what and the limit', async () => {
    registry.handle = (_req, res) => void res.writeHead(200).end(Buffer.alloc(1024 * 1024 + 1))
    const p = path_()
    try {
      await expect(
        get(p, '/v2/app/manifests/1', {
          what: 'manifest app:1',
          read: { maxBytes: 1024 * 1024, limitName: 'manifests' }
        })
      ).rejects.toThrow(
        `manifest app:1 on registry ${registry.host} is larger than 1 MiB, the limit for manifests`
      )
    } finally {
      await p.close()
    }
  })

  it('caps token responses at 1 MiB', async () => {
    tokenAuth([], [])
    auth.handle = (_req, res) =>
      void res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(`{"token":"${'x'.repeat(2 * 1024 * 1024)}"}`)
    registry.handle = (req, res) => void authorised(req, res)
    const p = path_()
    try {
      await expect(get(p, '/v2/app/manifests/1')).rejects.toThrow(
        /larger than 1 MiB, the limit for token responses/
      )
    } finally {
      await p.close()
    }
  })

  it('keeps the first 64 KiB of an error body and closes the connection on the rest', async () => {
    let finished: boolean | undefined
    registry.handle = (_req, res) => {
      res.writeHead(400, { 'content-type': 'text/plain' })
      const chunk = Buffer.alloc(64 * 1024, 'e')
      let sent = 0
      const more = (): void => {
        // 400 MiB, were it read to the end.
        while (sent < 6400) {
          sent++
          if (!res.write(chunk)) return void res.once('drain', more)
        }
        res.end()
      }
      res.on('close', () => (finished = res.writableFinished))
      res.write('bad request: ')
      more()
    }
    const p = path_()
    try {
      const err = (await get(p, '/v2/app/manifests/1').catch((e: unknown) => e)) as RegistryError
      expect(err.status).toBe(400)
      expect(err.message).toMatch(/failed: HTTP 400 \(bad request: e+\)$/)
    } finally {
      await p.close()
    }
    await new Promise((r) => setTimeout(r, 100))
    expect(finished).toBe(false)
  })
})

describe('errors', () => {
  it('carry status, code, registry, repository and request', async () => {
    registry.handle = (_req, res) =>
      void res.writeHead(403, { 'content-type': 'application/json' }).end(
        JSON.stringify({
          errors: [{ code: 'DENIED', message: 'requested access to the resource is denied' }]
        })
      )
    const p = path_()
    try {
      const err = (await get(p, '/v2/app/manifests/1', { what: 'manifest app:1' }).catch(
        (e: unknown) => e
      )) as RegistryError
      expect(err).toMatchObject({
        name: 'RegistryError',
        status: 403,
        code: 'DENIED',
        registry: registry.host,
        repository: 'app',
        request: 'GET manifest app:1',
        message: `GET manifest app:1 in ${registry.host}/app failed: HTTP 403 (DENIED: requested access to the resource is denied)`
      })
    } finally {
      await p.close()
    }
  })

  it('carry the network error as cause, naming the registry', async () => {
    const closed = await serve()
    await closed.close()
    const p = path_({ retries: 0 })
    try {
      const err = (await p
        .send({
          repo: { registry: closed.host, repository: 'app' },
          method: 'GET',
          url: '/v2/',
          what: 'v2',
          expect: [200]
        })
        .catch((e: unknown) => e)) as RegistryError
      expect(err).toBeInstanceOf(RegistryError)
      expect(err.registry).toBe(closed.host)
      expect(err.message).toMatch(/ECONNREFUSED/)
      expect(err.cause).toMatchObject({ code: 'ECONNREFUSED' })
    } finally {
      await p.close()
    }
  })
})

describe('failing fast', () => {
  it('gives a registry that does not answer a few attempts, not every retry', async () => {
    registry.handle = () => undefined // takes the request, never answers
    const p = path_({ retries: 10, requestTimeoutMs: 200 })
    try {
      const err = (await get(p, '/v2/app/manifests/1').catch((e: unknown) => e)) as RegistryError
      expect(err.message).toMatch(
        new RegExp(
          `^GET blob x in ${registry.host}/app: registry ${registry.host} did not answer in time, 5 times \\(200 ms each\\)`
        )
      )
    } finally {
      await p.close()
    }
    expect(registry.seen).toHaveLength(5)
  })

  it('tries a refused connection once more, no more', async () => {
    const closed = await serve()
    await closed.close()
    const retries: number[] = []
    const p = path_({ retries: 10, onRetry: (x) => retries.push(x.attempt) })
    try {
      await expect(
        p.send({
          repo: { registry: closed.host, repository: 'app' },
          method: 'GET',
          url: '/v2/',
          what: 'v2',
          expect: [200]
        })
      ).rejects.toThrow(/cannot reach registry .*ECONNREFUSED/)
    } finally {
      await p.close()
    }
    expect(retries).toEqual([1])
  })

  it('does not retry a request whose body source already spent its retries', async () => {
    registry.handle = (_req, res) => void res.writeHead(201).end()
    let opened = 0
    const spent = new RetriesExhaustedError(
      'GET /v2/src/blobs/x on elsewhere failed after 3 attempt(s)',
      { cause: Object.assign(new Error('reset'), { code: 'ECONNRESET' }) },
      3,
      false
    )
    const p = path_()
    try {
      const err = await p
        .send({
          repo: repo(),
          method: 'PUT',
          url: '/v2/app/blobs/uploads/1',
          what: 'blob x',
          expect: [201],
          body: () => {
            opened++
            throw spent
          }
        })
        .catch((e: unknown) => e)
      expect(err).toBe(spent)
    } finally {
      await p.close()
    }
    expect(opened).toBe(1)
  })
})

describe('scheme', () => {
  it('is HTTPS for registries, plain HTTP first for loopback ones', () => {
    const p = path_()
    expect(p.origin('ghcr.io')).toBe('https://ghcr.io')
    expect(p.origin('docker.io')).toBe('https://registry-1.docker.io')
    expect(p.origin('127.0.0.1:5000')).toBe('http://127.0.0.1:5000')
    expect(p.origin('localhost:5000')).toBe('http://localhost:5000')
    void p.close()
  })

  describe('a loopback registry that speaks TLS', () => {
    let dir: string
    let front: net.Server
    let secureServer: ReturnType<typeof createHttpsServer> | undefined
    let host: string
    const plain: string[] = []
    const tls: string[] = []
    let firstTls: () => void
    const sawTls = new Promise<void>((r) => (firstTls = r))

    beforeAll(async () => {
      dir = await mkdtemp(path.join(os.tmpdir(), 'mam-request-'))
      const certs = await makeCerts(dir)
      // Go's answer to plain HTTP on a TLS port; every answer after the first waits until a
      // request has come over TLS, so those requests were sent over HTTP before the switch.
      const http = createServer((req, res) => {
        plain.push(`${req.method} ${req.url}`)
        const answer = (): void =>
          void res
            .writeHead(400, { connection: 'close' })
            .end('Client sent an HTTP request to an HTTPS server.\n')
        if (plain.length === 1) answer()
        else void sawTls.then(answer)
      })
      const secure = createHttpsServer(
        { cert: await readFile(certs.cert), key: await readFile(certs.key) },
        (req, res) => {
          tls.push(`${req.method} ${req.url}`)
          firstTls()
          res.writeHead(200).end(req.method === 'HEAD' ? undefined : 'over tls')
        }
      )
      await new Promise<void>((r) => secure.listen(0, '127.0.0.1', r))
      const securePort = (secure.address() as AddressInfo).port
      secureServer = secure
      // One port for both, told apart by the first byte (0x16 opens a TLS handshake): plain
      // HTTP is served here, TLS is piped to the HTTPS server.
      front = net.createServer((socket) => {
        socket.once('data', (first) => {
          if (first[0] !== 0x16) {
            socket.pause()
            socket.unshift(first)
            http.emit('connection', socket)
            socket.resume()
            return
          }
          const inner = net.connect(securePort, '127.0.0.1', () => {
            inner.write(first)
            socket.pipe(inner).pipe(socket)
          })
          inner.on('error', () => socket.destroy())
          socket.on('error', () => inner.destroy())
        })
      })
      await new Promise<void>((r) => front.listen(0, '127.0.0.1', r))
      host = `127.0.0.1:${(front.address() as AddressInfo).port}`
    })
    afterAll(async () => {
      secureServer?.closeAllConnections()
      await new Promise((r) => secureServer?.close(r))
      await new Promise((r) => front.close(r))
      await rm(dir, { recursive: true, force: true })
    })

    it('switches to HTTPS, for requests sent over HTTP before another one switched', async () => {
      const p = path_({ insecureHosts: new Set([host]) })
      const r = { repo: { registry: host, repository: 'app' }, what: 'x', expect: [200] as const }
      try {
        const answers = await Promise.all([
          p.send({
            ...r,
            method: 'GET',
            url: '/v2/app/manifests/a',
            read: { maxBytes: 1024, limitName: 't' }
          }),
          p.send({
            ...r,
            method: 'GET',
            url: '/v2/app/manifests/b',
            read: { maxBytes: 1024, limitName: 't' }
          }),
          p.send({ ...r, method: 'HEAD', url: '/v2/app/manifests/c' })
        ])
        expect(answers.map((a) => a.status)).toEqual([200, 200, 200])
        expect(text(answers[0].body)).toBe('over tls')
        expect(p.origin(host)).toBe(`https://${host}`)
      } finally {
        await p.close()
      }
      // All three went out over HTTP first; each then went over TLS.
      expect(plain.filter((x) => x.includes('/manifests/'))).toHaveLength(3)
      expect(tls.filter((x) => x.includes('/manifests/')).sort()).toEqual([
        'GET /v2/app/manifests/a',
        'GET /v2/app/manifests/b',
        'HEAD /v2/app/manifests/c'
      ])
    })
  })
})
