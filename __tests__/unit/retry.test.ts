// Retries of the request path against a local HTTP server: statuses, Retry-After, resets,
// truncated bodies, stalls, the retry count and the time budget. Sleeping is on a fake clock.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { RegistryError, RetriesExhaustedError } from '../../src/registry/errors.js'
import {
  RequestPath,
  type RegistryRequest,
  type RequestPathOptions
} from '../../src/registry/request.js'
import { RetryPolicy } from '../../src/registry/retry.js'
import { StaticCredentials } from '../../src/registry/credentials.js'

type Handler = (req: IncomingMessage, res: ServerResponse, n: number) => void

let server: Server
let base: string
const handlers = new Map<string, Handler>()
const hits = new Map<string, number>()

beforeAll(async () => {
  server = createServer((req, res) => {
    const n = (hits.get(req.url ?? '') ?? 0) + 1
    hits.set(req.url ?? '', n)
    const h = handlers.get(req.url ?? '')
    if (h) h(req, res, n)
    else res.writeHead(404).end()
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})
afterAll(async () => {
  server.closeAllConnections()
  await new Promise((r) => server.close(r))
})

/** A request path on a fake clock: sleeping advances it and is recorded. */
function transport(opts: Partial<RequestPathOptions> = {}): {
  t: RequestPath & { get(url: string, method?: RegistryRequest['method']): Promise<Response> }
  delays: number[]
  clock: { now: number }
  opts: RequestPathOptions
} {
  const clock = { now: Date.parse('2026-01-01T00:00:00Z') }
  const delays: number[] = []
  const all: RequestPathOptions = {
    credentials: new StaticCredentials({}),
    maxConcurrency: 4,
    retries: 4,
    requestTimeoutMs: 5000,
    insecureHosts: new Set(),
    baseDelayMs: 100,
    random: () => 0.5,
    now: () => clock.now,
    sleep: (ms) => {
      delays.push(ms)
      clock.now += ms
      return Promise.resolve()
    },
    ...opts
  }
  const t = Object.assign(new RequestPath(all), {
    /** GETs `url` (a full URL on the test server) and returns status and body as text. */
    async get(url: string, method: RegistryRequest['method'] = 'GET'): Promise<Response> {
      const res = await t.send({
        repo: { registry: new URL(base).host, repository: 'app' },
        method,
        url,
        what: 'test',
        expect: [200],
        read: { maxBytes: 1024, limitName: 'tests' }
      })
      return { status: res.status, text: Buffer.from(res.body).toString() }
    }
  })
  return { t, delays, clock, opts: all }
}

interface Response {
  status: number
  text: string
}

/** Answers `failures` times with `fail`, then 200 "ok". */
function flaky(path: string, failures: number, fail: Handler): string {
  handlers.set(path, (req, res, n) => {
    if (n <= failures) return fail(req, res, n)
    res.writeHead(200, { 'content-type': 'text/plain' }).end('ok')
  })
  return base + path
}

describe('retries', () => {
  it('retries 503 and 429 with exponential backoff and jitter, and counts retries', async () => {
    const url = flaky('/backoff', 3, (_q, res) => res.writeHead(503).end())
    const { t, delays } = transport({ random: () => 0 })
    const res = await t.get(url)
    expect(res.status).toBe(200)
    // Equal jitter: between half and all of base * 2^i.
    expect(delays).toEqual([50, 100, 200])
    expect(t.retryCount).toBe(3)
    await t.close()

    const { t: t2, delays: d2 } = transport({ random: () => 0.999999, maxRetryDelayMs: 300 })
    const url2 = flaky('/backoff-cap', 4, (_q, res) => res.writeHead(429).end())
    expect((await t2.get(url2)).status).toBe(200)
    expect(d2).toEqual([100, 200, 300, 300])
    await t2.close()
  })

  it('honours Retry-After in seconds and as an HTTP date, up to the cap', async () => {
    const { t, delays, clock } = transport({ maxRetryDelayMs: 10_000 })
    const inSeconds = flaky('/ra-seconds', 1, (_q, res) =>
      res.writeHead(429, { 'retry-after': '3' }).end()
    )
    await t.get(inSeconds)
    const asDate = flaky('/ra-date', 1, (_q, res) =>
      res.writeHead(503, { 'retry-after': new Date(clock.now + 7000).toUTCString() }).end()
    )
    await t.get(asDate)
    const tooLong = flaky('/ra-long', 1, (_q, res) =>
      res.writeHead(429, { 'retry-after': '120' }).end()
    )
    await t.get(tooLong)
    expect(delays).toEqual([3000, 7000, 10_000])
    await t.close()
  })

  it('retries connection resets, truncated bodies and stalled responses', async () => {
    const reset = flaky('/reset', 2, (req) => req.socket.destroy())
    const truncated = flaky('/truncated', 1, (req, res) => {
      res.writeHead(200, { 'content-length': '100' })
      res.write('x'.repeat(40), () => req.socket.destroy())
    })
    const stalled = flaky('/stall', 1, (req) => req.resume())
    const reasons: string[] = []
    const { t: t2 } = transport({ requestTimeoutMs: 200, onRetry: (r) => reasons.push(r.reason) })
    for (const url of [reset, truncated, stalled]) {
      const res = await t2.get(url)
      expect(res.text).toBe('ok')
    }
    expect(reasons).toEqual([
      'ECONNRESET (the registry closed the connection without an answer)',
      'ECONNRESET (the registry closed the connection without an answer)',
      'ECONNRESET (the connection closed before the end of the answer)',
      'UND_ERR_HEADERS_TIMEOUT (Headers Timeout Error)'
    ])
    await t2.close()
  })

  it('does not retry 400, 403 or 404: they fail at once with the status', async () => {
    const { t } = transport()
    for (const status of [400, 403, 404]) {
      const url = flaky(`/status-${status}`, 1, (_q, res) => res.writeHead(status).end())
      const err = await t.get(url).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(RegistryError)
      expect((err as RegistryError).status).toBe(status)
    }
    expect(t.retryCount).toBe(0)
    await t.close()
  })

  it('says the retry budget is exhausted, after how many attempts, naming host and request', async () => {
    const url = flaky('/v2/app/manifests/1.0', 99, (_q, res) => {
      res.writeHead(503, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ errors: [{ code: 'UNAVAILABLE', message: 'try later' }] }))
    })
    const { t } = transport({ retries: 2 })
    const err = await t.get(url).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(RetriesExhaustedError)
    expect((err as Error).message).toBe(
      `GET /v2/app/manifests/1.0 on ${new URL(base).host} failed after 3 attempt(s): the retry budget is exhausted (retries: 2); last error: HTTP 503 (UNAVAILABLE: try later)`
    )
    expect((err as RetriesExhaustedError).status).toBe(503)
  })
})

describe('deadline', () => {
  it('schedules no retry whose delay would end past the deadline', async () => {
    const url = flaky('/v2/app/blobs/uploads/', 99, (_q, res) => res.writeHead(502).end())
    const start = Date.parse('2026-01-01T00:00:00Z')
    const { t, delays, clock } = transport({ retries: 20, deadline: start + 1000 })
    const err = (await t.get(url, 'POST').catch((e: unknown) => e)) as Error
    // 75 + 150 + 300 = 525 ms slept; the next (600) would end at 1125 ms, past the deadline.
    expect(delays).toEqual([75, 150, 300])
    expect(clock.now).toBeLessThanOrEqual(start + 1000)
    expect(err).toBeInstanceOf(RetriesExhaustedError)
    expect((err as RetriesExhaustedError).budgetExhausted).toBe(true)
    expect(err.message).toBe(
      `POST /v2/app/blobs/uploads/ on ${new URL(base).host} failed after 4 attempt(s): the time budget (input timeout) is exhausted (475 ms left, the next retry would wait 600 ms); last error: HTTP 502`
    )
  })

  it('gives up at once when Retry-After asks for more than the budget leaves', async () => {
    const url = flaky('/ra-budget', 99, (_q, res) =>
      res.writeHead(429, { 'retry-after': '30' }).end()
    )
    const start = Date.parse('2026-01-01T00:00:00Z')
    const { t, delays } = transport({ deadline: start + 10_000, maxRetryDelayMs: 60_000 })
    const err = (await t.get(url).catch((e: unknown) => e)) as Error
    expect(delays).toEqual([])
    expect(err.message).toMatch(
      /failed after 1 attempt\(s\): the time budget \(input timeout\) is exhausted \(10000 ms left, the next retry would wait 30000 ms \(the registry asked to wait 30000 ms\)\); last error: HTTP 429/
    )
  })

  it('gives a retry no longer to answer than the budget leaves', () => {
    const start = Date.parse('2026-01-01T00:00:00Z')
    const clock = { now: start }
    const p = new RetryPolicy({ retries: 4, deadline: start + 3000, now: () => clock.now })
    expect(p.timeoutFor(0, 5000)).toBe(5000)
    expect(p.timeoutFor(1, 5000)).toBe(3000)
    clock.now += 2900
    expect(p.timeoutFor(2, 5000)).toBe(100)
    clock.now += 1000
    expect(p.timeoutFor(3, 5000)).toBe(1)
  })
})
