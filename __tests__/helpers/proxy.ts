// An HTTP proxy in front of a real registry, for what a real registry cannot be made to do:
// counting requests, adding latency, refusing mounts, injecting faults. Only ever on 127.0.0.1.
import {
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type ServerResponse
} from 'node:http'
import type { AddressInfo } from 'node:net'

export interface ProxiedRequest {
  method: string
  path: string
}

/**
 * A rule sees each request before it is forwarded. It may answer it itself (return true after
 * writing `res`), rewrite `req.url`, or do nothing (return false) to forward it unchanged.
 */
export type ProxyRule = (req: IncomingMessage, res: ServerResponse) => boolean | Promise<boolean>

export interface TestProxy {
  host: string
  url: string
  requests: ProxiedRequest[]
  rules: ProxyRule[]
  delayMs: number
  /** Requests being served now, and the most seen at once since the last reset. */
  inFlight: number
  maxInFlight: number
  count(method: string, pathPattern: RegExp): number
  reset(): void
  stop(): Promise<void>
}

export async function startProxy(
  upstreamUrl: string,
  opts: { delayMs?: number } = {}
): Promise<TestProxy> {
  const upstream = new URL(upstreamUrl)
  const requests: ProxiedRequest[] = []
  const rules: ProxyRule[] = []
  const server = createServer((req, res) => {
    requests.push({ method: req.method ?? '', path: req.url ?? '' })
    proxy.inFlight++
    proxy.maxInFlight = Math.max(proxy.maxInFlight, proxy.inFlight)
    res.on('close', () => proxy.inFlight--)
    const go = async (): Promise<void> => {
      if (proxy.delayMs > 0) await new Promise((r) => setTimeout(r, proxy.delayMs))
      for (const rule of rules) if (await rule(req, res)) return
      const out = httpRequest(
        {
          host: upstream.hostname,
          port: upstream.port,
          method: req.method,
          path: req.url,
          // The Host header is kept, so the registry builds upload Locations that point at the proxy.
          headers: req.headers
        },
        (up) => {
          res.writeHead(up.statusCode ?? 502, up.headers)
          up.pipe(res)
        }
      )
      out.on('error', () => res.destroy())
      req.pipe(out)
    }
    go().catch(() => res.destroy())
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const port = (server.address() as AddressInfo).port
  const proxy: TestProxy = {
    host: `127.0.0.1:${port}`,
    url: `http://127.0.0.1:${port}`,
    requests,
    rules,
    delayMs: opts.delayMs ?? 0,
    inFlight: 0,
    maxInFlight: 0,
    count: (method, pattern) =>
      requests.filter((r) => r.method === method && pattern.test(r.path)).length,
    reset: () => {
      requests.length = 0
      proxy.maxInFlight = proxy.inFlight
    },
    stop: () =>
      new Promise<void>((r) => {
        server.closeAllConnections()
        server.close(() => r())
      })
  }
  return proxy
}

/** Drops `mount`/`from` from blob upload POSTs: the registry then opens a plain upload session (202). */
export const refuseMounts: ProxyRule = (req) => {
  if (req.method === 'POST' && req.url?.includes('mount=')) {
    const u = new URL(req.url, 'http://x')
    u.searchParams.delete('mount')
    u.searchParams.delete('from')
    req.url = u.pathname + (u.search || '')
  }
  return false
}

/** Answers matching requests with a registry error instead of forwarding them. */
export function refuse(
  method: string,
  path: RegExp,
  status: number,
  code: string,
  message = 'refused by test'
): ProxyRule {
  return (req, res) => {
    if (req.method !== method || !path.test(req.url ?? '')) return false
    res.writeHead(status, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ errors: [{ code, message }] }))
    return true
  }
}
