// Hostile registries: small fake servers on 127.0.0.1 and proxy rules that answer for a real
// registry, what they received, and the assertions every hostile-registry test makes about a run
// of the action (no secret printed or sent elsewhere, no injected workflow command).
import { expect } from '@jest/globals'
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type ServerResponse
} from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import type { ActionRun } from './action.js'
import type { ProxyRule, TestProxy } from './proxy.js'

export const b64 = (s: string): string => Buffer.from(s).toString('base64')

/** A request as a server received it. */
export interface Received {
  /** Who received it: a fake server's or a proxy's host. */
  host: string
  method: string
  url: string
  headers: IncomingHttpHeaders
  /** The body, up to 64 KiB (fake servers only; proxies forward bodies unread). */
  body: string
}

// ---------------------------------------------------------------------------------------------
// Fake servers

export type FakeHandler = (
  req: IncomingMessage,
  res: ServerResponse,
  server: FakeServer
) => void | Promise<void>

export interface FakeServer {
  /** '127.0.0.1:PORT' */
  host: string
  /** 'http://127.0.0.1:PORT' */
  url: string
  requests: Received[]
  /** Drops every connection (ending streams and requests held open) and closes the server. */
  stop(): Promise<void>
}

const MAX_RECORDED_BODY = 64 * 1024

/**
 * An HTTP server on 127.0.0.1 that records every request (body read first, up to 64 KiB) and
 * hands it to `handler`. A handler that never answers holds the request until stop().
 */
export async function startFake(handler: FakeHandler): Promise<FakeServer> {
  const sockets = new Set<Socket>()
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    let size = 0
    req.on('data', (c: Buffer) => {
      if (size < MAX_RECORDED_BODY) chunks.push(c)
      size += c.length
    })
    req.on('end', () => {
      fake.requests.push({
        host: fake.host,
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).subarray(0, MAX_RECORDED_BODY).toString('latin1')
      })
      Promise.resolve(handler(req, res, fake)).catch(() => res.destroy())
    })
  })
  server.on('connection', (s) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const port = (server.address() as AddressInfo).port
  let stopped: Promise<void> | undefined
  const fake: FakeServer = {
    host: `127.0.0.1:${port}`,
    url: `http://127.0.0.1:${port}`,
    requests: [],
    stop: () =>
      (stopped ??= new Promise<void>((r) => {
        for (const s of sockets) s.destroy()
        server.close(() => r())
      }))
  }
  return fake
}

/** Headers of a registry that wants a Bearer token from `realm` for every /v2/ request. */
export function bearerChallenge(realm: string, scope?: string): Record<string, string> {
  const s = scope ? `,scope="${scope}"` : ''
  return {
    'content-type': 'application/json',
    'docker-distribution-api-version': 'registry/2.0',
    'www-authenticate': `Bearer realm="${realm}",service="hostile"${s}`
  }
}

/** The 401 a token-auth registry answers to a request without a (valid) token. */
export function challenge(res: ServerResponse, realm: string, url: string): void {
  const name = /^\/v2\/(.+?)\/(?:manifests|blobs|tags|referrers)\//.exec(url)?.[1]
  res.writeHead(401, bearerChallenge(realm, name ? `repository:${name}:pull` : undefined))
  res.end(
    JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] })
  )
}

/**
 * Writes `total` bytes of `fill` to `res` (chunked unless the caller set Content-Length),
 * respecting backpressure and never holding more than one 1 MiB chunk; stops when the client
 * goes away. `prefix` comes first (counted in `total`).
 */
export function streamBytes(res: ServerResponse, total: number, prefix = '', fill = 0x61): void {
  const chunk = Buffer.alloc(1024 * 1024, fill)
  let left = total
  let closed = false
  res.on('close', () => (closed = true))
  const head = Buffer.from(prefix)
  if (head.length) {
    res.write(head)
    left -= head.length
  }
  const pump = (): void => {
    while (!closed && left > 0) {
      const n = Math.min(left, chunk.length)
      left -= n
      const more = res.write(n === chunk.length ? chunk : chunk.subarray(0, n))
      if (!more) {
        res.once('drain', pump)
        return
      }
    }
    if (!closed) res.end()
  }
  pump()
}

/**
 * Sends `body` one byte every `intervalMs` after the headers (a slow-loris answer); stops when
 * the client goes away or the server is stopped.
 */
export function drip(
  res: ServerResponse,
  headers: Record<string, string>,
  body: Buffer,
  intervalMs = 1000
): void {
  res.writeHead(200, { ...headers, 'content-length': String(body.length) })
  res.flushHeaders()
  let i = 0
  const timer = setInterval(() => {
    if (res.destroyed || i >= body.length) {
      clearInterval(timer)
      if (!res.destroyed) res.end()
      return
    }
    res.write(body.subarray(i, i + 1))
    i++
  }, intervalMs)
  res.on('close', () => clearInterval(timer))
}

// ---------------------------------------------------------------------------------------------
// Proxy rules

/** Records every request a proxy receives, headers included (the proxy itself keeps only paths). */
export function recordRequests(proxy: TestProxy): Received[] {
  const received: Received[] = []
  proxy.rules.unshift((req) => {
    received.push({
      host: proxy.host,
      method: req.method ?? '',
      url: req.url ?? '',
      headers: { ...req.headers },
      body: ''
    })
    return false
  })
  return received
}

/**
 * Answers GET and HEAD of `/v2/<repo>/manifests/<reference>` with `body` (exact bytes, given
 * media type and Docker-Content-Digest), as a registry holding a manifest it could never store.
 */
export function serveManifest(
  repo: string,
  reference: string,
  body: string | Buffer,
  mediaType: string,
  digest: string
): ProxyRule {
  const path = `/v2/${repo}/manifests/${reference}`
  return (req, res) => {
    if (req.url !== path || (req.method !== 'GET' && req.method !== 'HEAD')) return false
    req.resume()
    const bytes = Buffer.from(body)
    res.writeHead(200, {
      'content-type': mediaType,
      'content-length': String(bytes.length),
      'docker-content-digest': digest,
      'docker-distribution-api-version': 'registry/2.0'
    })
    res.end(req.method === 'HEAD' ? undefined : bytes)
    return true
  }
}

// ---------------------------------------------------------------------------------------------
// Assertions

/** The workflow commands the action itself issues (through @actions/core). */
export const OWN_COMMANDS = [
  '::add-mask::',
  '::group::',
  '::endgroup::',
  '::error::',
  '::warning::',
  '::notice::',
  '::debug::'
]

/** Lines as the runner reads them: it splits on \n, \r\n and a lone \r. */
export const linesOf = (text: string): string[] => text.split(/\r\n|\r|\n/)

/**
 * Lines the runner would take as a workflow command the action did not issue: one starting `::`
 * (after leading whitespace, which the runner trims) with another command, or the legacy `##[`
 * form anywhere in a line.
 */
export function foreignCommands(text: string): string[] {
  return linesOf(text).filter((line) => {
    const t = line.trimStart()
    return (
      (t.startsWith('::') && !OWN_COMMANDS.some((c) => t.startsWith(c))) || line.includes('##[')
    )
  })
}

export interface Leak {
  where: string
  text: string
}

/** Where each secret shows up in a run: printed (outside ::add-mask::), outputs, summary, or a request. */
export function leaks(run: ActionRun, secrets: string[], elsewhere: Received[] = []): Leak[] {
  const found: Leak[] = []
  for (const [where, text] of [
    ['stdout', run.stdout],
    ['stderr', run.stderr]
  ] as const) {
    for (const line of linesOf(text)) {
      if (line.startsWith('::add-mask::')) continue
      if (secrets.some((s) => line.includes(s))) found.push({ where, text: line })
    }
  }
  for (const [name, value] of Object.entries(run.outputs)) {
    if (secrets.some((s) => name.includes(s) || value.includes(s)))
      found.push({ where: `output ${name}`, text: value.slice(0, 500) })
  }
  if (secrets.some((s) => run.summary.includes(s)))
    found.push({ where: 'summary', text: run.summary.slice(0, 2000) })
  for (const r of elsewhere) {
    const text = `${r.method} ${r.url} ${JSON.stringify(r.headers)} ${r.body}`
    if (secrets.some((s) => text.includes(s)))
      found.push({ where: `request to ${r.host}`, text: text.slice(0, 500) })
  }
  return found
}

/**
 * What every hostile-registry test asserts about a run: no secret anywhere outside `::add-mask::`
 * lines (stdout, stderr, GITHUB_OUTPUT, the summary, and the requests `elsewhere`, which other
 * origins received), and no line that starts a workflow command the action does not issue.
 */
export function expectInert(run: ActionRun, secrets: string[], elsewhere: Received[] = []): void {
  for (const s of secrets) expect(s.length).toBeGreaterThan(8)
  expect(leaks(run, secrets, elsewhere)).toEqual([])
  expect(foreignCommands(run.stdout)).toEqual([])
  expect(foreignCommands(run.stderr)).toEqual([])
}

/** The `::error::` lines of a run. */
export const errorLines = (run: ActionRun): string[] =>
  linesOf(run.stdout).filter((l) => l.startsWith('::error::'))

/** The run failed (exit 1) with an `::error::` line holding one of `fragments`. */
export function expectFailureNaming(run: ActionRun, fragments: string[]): void {
  expect(run.killed).toBeUndefined()
  expect({ code: run.code, errors: errorLines(run) }).toEqual({
    code: 1,
    errors: expect.arrayContaining([
      expect.stringMatching(new RegExp(fragments.map(escapeRegExp).join('|')))
    ])
  })
}

/** Either outcome the hostile-content contract allows: success, or exit 1 naming the source. */
export function expectSuccessOrFailureNaming(run: ActionRun, fragments: string[]): void {
  expect(run.killed).toBeUndefined()
  if (run.code === 0) expect(errorLines(run)).toEqual([])
  else expectFailureNaming(run, fragments)
}

/** No crash of the process: no unhandled 'error' event, no stack trace on stderr. */
export function expectNoCrash(run: ActionRun): void {
  expect(run.stderr).not.toContain("Unhandled 'error' event")
  expect(linesOf(run.stderr).filter((l) => /^\s+at\s/.test(l))).toEqual([])
}

export const escapeRegExp = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

export const MiB = 1024 * 1024

/** Prints a run's figures for the record (time, peak RSS, exit code). */
export function report(name: string, ms: number, run: ActionRun, extra = ''): void {
  console.log(
    `[hostile] ${name}: ${ms} ms, peak RSS ${(run.peakRss / MiB).toFixed(1)} MiB, exit ${run.code}${
      run.killed ? ` (killed: ${run.killed})` : ''
    }${extra ? `, ${extra}` : ''}`
  )
}
