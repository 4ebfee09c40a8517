// A fault-injecting proxy in front of a real registry (built on proxy.ts's rules; 127.0.0.1 only).
//
// Faults come by rule (`inject`: the next N requests matching a method and path) or by seeded
// chance (`rate`). A chance decision depends only on the seed and the request's identity: its
// method, its path with upload-session ids and state stripped, and how many times that identity
// was seen before. So a run makes the same decisions whatever order concurrent requests arrive in.
//
// Optionally the proxy plays a Bearer token server (`tokenAuth`): /v2/ requests need a token
// from its /token endpoint, which is faulted like anything else (a slow token endpoint).
import {
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type ServerResponse
} from 'node:http'
import { startProxy, type TestProxy } from './proxy.js'

export type FaultKind =
  | '429' // Too Many Requests with Retry-After
  | '503'
  | 'reset' // the connection is destroyed before anything is forwarded
  | 'reset-body' // forwarded; the response is cut mid-body (or lost, when it has none)
  | 'stall' // never answered: the client's request timeout must fire
  | 'stall-body' // forwarded; half the body (or nothing) is sent, then the connection hangs

export const ALL_FAULTS: FaultKind[] = ['429', '503', 'reset', 'reset-body', 'stall', 'stall-body']

export interface FaultOptions {
  seed?: number
  /** Chance that a request is faulted (0 to 1). */
  rate?: number
  /** Relative weights of the kinds chosen by chance (default: each kind once). */
  weights?: Partial<Record<FaultKind, number>>
  /** Retry-After sent with 429s: seconds or an HTTP date (default '0'). */
  retryAfter?: string
  /** How long a stall holds the connection before dropping it (default 30 s). */
  stallMs?: number
  /** Which requests chance may fault (default: all). */
  eligible?: (method: string, path: string) => boolean
  /** Require Bearer tokens from the proxy's own /token endpoint. */
  tokenAuth?: boolean
}

export interface Injection {
  kind: FaultKind
  method?: string
  path: RegExp
  /** How many matching requests to fault (default 1; Infinity for a permanent fault). */
  times?: number
}

export interface FaultProxy extends TestProxy {
  options: FaultOptions
  /** Faults injected so far, by kind. */
  injected: Record<FaultKind, number>
  totalInjected(): number
  /** Faults the next matching requests; returns a function that removes the rule. */
  inject(rule: Injection): () => void
  clearInjections(): void
}

/** FNV-1a: a 32-bit hash of a string, to seed the PRNG per decision. */
function hash32(s: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return h >>> 0
}

/** mulberry32: a small seeded PRNG giving floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** A request's identity for decisions: upload ids and state vary from run to run. */
export function identity(method: string, url: string): string {
  const u = new URL(url, 'http://x')
  const path = u.pathname.replace(/\/blobs\/uploads\/[^/]+$/, '/blobs/uploads/*')
  u.searchParams.delete('_state')
  const query = u.searchParams.toString()
  return `${method} ${path}${query ? `?${query}` : ''}`
}

interface Buffered {
  status: number
  headers: IncomingHttpHeaders
  body: Buffer
}

export async function startFaultProxy(
  upstreamUrl: string,
  options: FaultOptions = {}
): Promise<FaultProxy> {
  const upstream = new URL(upstreamUrl)
  const base = await startProxy(upstreamUrl)
  const injected = Object.fromEntries(ALL_FAULTS.map((k) => [k, 0])) as Record<FaultKind, number>
  const seen = new Map<string, number>()
  const injections: Array<Required<Injection>> = []
  const tokens = new Set<string>()

  const byChance = (method: string, url: string): FaultKind | undefined => {
    const o = proxy.options
    if (!o.rate || (o.eligible && !o.eligible(method, url))) return undefined
    const id = identity(method, url)
    const n = (seen.get(id) ?? 0) + 1
    seen.set(id, n)
    const rand = mulberry32(hash32(`${o.seed ?? 0}|${id}|${n}`))
    if (rand() >= o.rate) return undefined
    const weights = ALL_FAULTS.map((k) => o.weights?.[k] ?? (o.weights ? 0 : 1))
    let pick = rand() * weights.reduce((a, b) => a + b, 0)
    for (const [i, w] of weights.entries()) if ((pick -= w) < 0) return ALL_FAULTS[i]
    return undefined
  }

  const byRule = (method: string, url: string): FaultKind | undefined => {
    const rule = injections.find(
      (r) => r.times > 0 && (!r.method || r.method === method) && r.path.test(url)
    )
    if (!rule) return undefined
    rule.times--
    return rule.kind
  }

  const hang = (req: IncomingMessage): void => {
    req.resume()
    setTimeout(() => req.socket.destroy(), proxy.options.stallMs ?? 30_000).unref()
  }

  /** Sends a response, or the faulted part of it. */
  const deliver = (
    req: IncomingMessage,
    res: ServerResponse,
    r: Buffered,
    fault?: FaultKind
  ): void => {
    if (!fault) {
      res.writeHead(r.status, r.headers).end(r.body)
      return
    }
    if (r.body.length < 2 || req.method === 'HEAD') {
      // Nothing to cut: the response is lost after the request took effect.
      if (fault === 'reset-body') req.socket.destroy()
      else hang(req)
      return
    }
    res.writeHead(r.status, r.headers)
    res.write(r.body.subarray(0, r.body.length >> 1), () => {
      if (fault === 'reset-body') req.socket.destroy()
      else hang(req)
    })
  }

  const tokenAuth = (req: IncomingMessage, res: ServerResponse, fault?: FaultKind): boolean => {
    const path = req.url ?? ''
    if (path.startsWith('/token')) {
      const token = `t${tokens.size + 1}.${Date.now()}`
      tokens.add(token)
      const body = Buffer.from(JSON.stringify({ token, expires_in: 300 }))
      req.resume()
      const headers = { 'content-type': 'application/json', 'content-length': String(body.length) }
      deliver(req, res, { status: 200, headers, body }, fault)
      return true
    }
    const auth = req.headers.authorization ?? ''
    if (auth.startsWith('Bearer ') && tokens.has(auth.slice(7))) {
      delete req.headers.authorization
      return false
    }
    const name = /^\/v2\/(.+?)\/(?:manifests|blobs|tags|referrers)\//.exec(path)?.[1]
    const write = !['GET', 'HEAD'].includes(req.method ?? '')
    const scope = name ? `,scope="repository:${name}:${write ? 'pull,push' : 'pull'}"` : ''
    req.resume()
    res.writeHead(401, {
      'content-type': 'application/json',
      'www-authenticate': `Bearer realm="${proxy.url}/token",service="fault-proxy"${scope}`
    })
    res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'token required' }] }))
    return true
  }

  const rule = async (req: IncomingMessage, res: ServerResponse): Promise<boolean> => {
    const method = req.method ?? ''
    const url = req.url ?? ''
    const fault = byRule(method, url) ?? byChance(method, url)
    if (fault) injected[fault]++
    switch (fault) {
      case '429':
      case '503': {
        req.resume()
        const code = fault === '429' ? 'TOOMANYREQUESTS' : 'UNAVAILABLE'
        const headers: Record<string, string> = { 'content-type': 'application/json' }
        if (fault === '429') headers['retry-after'] = proxy.options.retryAfter ?? '0'
        res.writeHead(Number(fault), headers)
        res.end(JSON.stringify({ errors: [{ code, message: 'injected by the fault proxy' }] }))
        return true
      }
      case 'reset':
        req.socket.destroy()
        return true
      case 'stall':
        hang(req)
        return true
    }
    if (proxy.options.tokenAuth && tokenAuth(req, res, fault)) return true
    if (!fault) return false
    deliver(req, res, await forward(upstream, req), fault)
    return true
  }

  base.rules.unshift(rule)
  const proxy: FaultProxy = Object.assign(base, {
    options,
    injected,
    totalInjected: () => Object.values(injected).reduce((a, b) => a + b, 0),
    inject(r: Injection): () => void {
      const entry = { method: '', times: 1, ...r }
      injections.push(entry)
      return () => {
        const i = injections.indexOf(entry)
        if (i !== -1) injections.splice(i, 1)
      }
    },
    clearInjections: () => {
      injections.length = 0
    }
  })
  return proxy
}

/** Forwards a request upstream (its body piped, or `body` when already read) and buffers the answer. */
export function forward(upstream: URL, req: IncomingMessage, body?: Buffer): Promise<Buffered> {
  return new Promise((resolve, reject) => {
    const out = httpRequest(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: req.headers
      },
      (up) => {
        const chunks: Buffer[] = []
        up.on('data', (c: Buffer) => chunks.push(c))
        up.on('end', () =>
          resolve({
            status: up.statusCode ?? 502,
            headers: up.headers,
            body: Buffer.concat(chunks)
          })
        )
        up.on('error', reject)
      }
    )
    out.on('error', reject)
    if (body) out.end(body)
    else req.pipe(out)
  })
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => resolve(Buffer.concat(chunks)))
    req.on('error', reject)
  })
}

function status(upstream: URL, method: string, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const r = httpRequest(
      { host: upstream.hostname, port: upstream.port, method, path, headers: { accept: ACCEPT } },
      (res) => {
        res.resume()
        res.on('end', () => resolve(res.statusCode ?? 0))
      }
    )
    r.on('error', reject)
    r.end()
  })
}

const ACCEPT = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json'
].join(', ')

export interface IndexPutWatch {
  /** Index PUTs by tag that reached the proxy. */
  puts: number
  /** One line per child (or child blob) missing from the repository when its index was PUT. */
  violations: string[]
}

/**
 * Checks, before forwarding, that every manifest an index PUT by tag names is already in the
 * repository upstream (whose blobs the registry checked when it was PUT). Push it after the
 * fault rule.
 */
export function watchIndexPuts(proxy: TestProxy, upstreamUrl: string): IndexPutWatch {
  const upstream = new URL(upstreamUrl)
  const watch: IndexPutWatch = { puts: 0, violations: [] }
  proxy.rules.push(async (req, res) => {
    const m = /^\/v2\/(.+)\/manifests\/([^/:]+)$/.exec(req.url ?? '')
    const type = req.headers['content-type'] ?? ''
    if (req.method !== 'PUT' || !m || !/index|list/.test(type)) return false
    watch.puts++
    const body = await readBody(req)
    const [, name, tag] = m
    const doc = JSON.parse(body.toString('utf8')) as { manifests: Array<{ digest: string }> }
    for (const { digest } of doc.manifests) {
      if ((await status(upstream, 'HEAD', `/v2/${name}/manifests/${digest}`)) !== 200) {
        watch.violations.push(`${name}:${tag} PUT while child ${digest} is missing`)
      }
    }
    const r = await forward(upstream, req, body)
    res.writeHead(r.status, r.headers).end(r.body)
    return true
  })
  return watch
}
