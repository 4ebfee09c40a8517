// A proxy with timings (when each request arrived and when its response was sent), and what kind
// of Distribution API call each request is.
import { performance } from 'node:perf_hooks'
import { startProxy, type TestProxy } from '../__tests__/helpers/proxy.js'
import { DELAY_MS } from './settings.js'

export interface Hit {
  method: string
  path: string
  /** performance.now() when the request reached the proxy (before the delay). */
  arrived: number
  /** performance.now() when the response was fully written; undefined if it never was. */
  done?: number
}

/** What the measures read from a probe's front: the HTTP proxy here, or the TLS front (tls-probe.ts). */
export type ProbeFront = Pick<TestProxy, 'host' | 'requests' | 'maxInFlight' | 'reset' | 'stop'>

export interface Probe<F extends ProbeFront = TestProxy> {
  proxy: F
  hits: Hit[]
}

/** A new proxy in front of `upstream`, adding `delayMs` (BENCH_DELAY_MS by default) to every request. */
export async function startProbe(upstream: string, delayMs = DELAY_MS): Promise<Probe> {
  const proxy = await startProxy(upstream, { delayMs })
  const hits: Hit[] = []
  // Rules run after the proxy's delay, so the arrival is the rule's time less the delay.
  proxy.rules.push((req, res) => {
    const hit: Hit = {
      method: req.method ?? '',
      path: req.url ?? '',
      arrived: performance.now() - proxy.delayMs
    }
    hits.push(hit)
    res.on('finish', () => (hit.done = performance.now()))
    return false
  })
  return { proxy, hits }
}

export function resetProbe(p: Probe<ProbeFront>): void {
  p.proxy.reset()
  p.hits.length = 0
}

/** What kind of Distribution API call a request is, for the request mix. */
export function kindOf(method: string, url: string): string {
  const p = url.split('?')[0]
  if (/^\/v2\/?$/.test(p)) return `${method} /v2/`
  if (p.includes('/manifests/')) return `${method} manifest`
  if (p.includes('/blobs/uploads/')) {
    if (method === 'POST') return url.includes('mount=') ? 'POST mount' : 'POST upload'
    return `${method} upload`
  }
  if (p.includes('/blobs/')) return `${method} blob`
  if (p.includes('/tags/list')) return `${method} tags`
  return `${method} other`
}
