import { describe, expect, it } from '@jest/globals'
import {
  mask,
  NoProxy,
  parseProxy,
  proxyFor,
  readProxyEnv,
  type BadProxy,
  type Proxy
} from '../../src/registry/proxy.js'

const u = (s: string): URL => new URL(s)
/** The variable and URL a request to `url` goes through, or 'direct'. */
function via(env: NodeJS.ProcessEnv, url: string): string {
  const p = proxyFor(readProxyEnv(env), u(url))
  if (!p) return 'direct'
  return 'problem' in p ? `${p.from}: ${p.problem}` : `${p.from} ${p.url.href}`
}
const good = (p: Proxy | BadProxy | undefined): Proxy => {
  if (!p || 'problem' in p) throw new Error(`not a usable proxy: ${JSON.stringify(p)}`)
  return p
}

describe('proxy variables', () => {
  it('takes HTTPS_PROXY for https URLs and HTTP_PROXY for http URLs, in either case', () => {
    const env = { HTTPS_PROXY: 'http://secure:3128', http_proxy: 'http://plain:8080' }
    expect(via(env, 'https://ghcr.io/v2/')).toBe('HTTPS_PROXY http://secure:3128/')
    expect(via(env, 'http://registry.example:5000/v2/')).toBe('http_proxy http://plain:8080/')
    expect(via({ HTTP_PROXY: 'http://plain:8080' }, 'https://ghcr.io/v2/')).toBe('direct')
    expect(via({ HTTPS_PROXY: 'http://secure:3128' }, 'http://registry.example/v2/')).toBe('direct')
  })

  it('prefers the lowercase variable when both are set, as the runner does', () => {
    const env = { https_proxy: 'http://lower:1', HTTPS_PROXY: 'http://upper:2' }
    expect(via(env, 'https://ghcr.io/')).toBe('https_proxy http://lower:1/')
  })

  it('treats empty and blank values as unset, falling back to the other case', () => {
    expect(via({ https_proxy: '', HTTPS_PROXY: 'http://upper:2' }, 'https://ghcr.io/')).toBe(
      'HTTPS_PROXY http://upper:2/'
    )
    expect(via({ https_proxy: '  ', HTTPS_PROXY: '' }, 'https://ghcr.io/')).toBe('direct')
    expect(via({}, 'https://ghcr.io/')).toBe('direct')
    // An empty no_proxy does not hide NO_PROXY either.
    expect(
      via({ HTTPS_PROXY: 'http://p:1', no_proxy: '', NO_PROXY: 'ghcr.io' }, 'https://ghcr.io/')
    ).toBe('direct')
  })

  it('reads a value without a scheme as http://, and trims it', () => {
    expect(via({ HTTPS_PROXY: ' proxy.corp:3128 ' }, 'https://ghcr.io/')).toBe(
      'HTTPS_PROXY http://proxy.corp:3128/'
    )
    expect(good(parseProxy('HTTPS_PROXY', 'https://proxy.corp')).url.href).toBe(
      'https://proxy.corp/'
    )
  })

  it('turns credentials into Proxy-Authorization and keeps them out of the URL', () => {
    const p = good(parseProxy('HTTPS_PROXY', 'http://alice:p%40ss%3Aw0rd@proxy.corp:3128/'))
    expect(p.url.href).toBe('http://proxy.corp:3128/')
    expect(p.token).toBe(`Basic ${Buffer.from('alice:p@ss:w0rd').toString('base64')}`)
    expect(p.secrets).toEqual(['p@ss:w0rd', 'p%40ss%3Aw0rd'])
    expect(p.shown).toBe('http://alice:***@proxy.corp:3128')
    expect(JSON.stringify({ ...p, token: undefined, secrets: undefined })).not.toContain('p%40ss')
    const userOnly = good(parseProxy('HTTPS_PROXY', 'http://alice@proxy.corp:3128'))
    expect(userOnly.token).toBe(`Basic ${Buffer.from('alice:').toString('base64')}`)
    expect(userOnly.secrets).toEqual([])
    expect(good(parseProxy('HTTPS_PROXY', 'http://proxy.corp:3128')).token).toBeUndefined()
  })

  it('names unusable values without showing their password', () => {
    const socks = parseProxy('HTTPS_PROXY', 'socks5://bob:hunter22@proxy:1080') as BadProxy
    expect(socks.problem).toBe(
      'HTTPS_PROXY names a socks5: proxy (socks5://bob:***@proxy:1080): only http:// and https:// proxies are supported'
    )
    const broken = parseProxy('https_proxy', 'http://bob:hunter22@proxy:port') as BadProxy
    expect(broken.problem).toBe('https_proxy is not a URL: ***@proxy:port')
    const escaped = parseProxy('HTTP_PROXY', 'http://bob:%E0%A4%A@proxy:3128') as BadProxy
    expect(escaped.problem).toBe(
      'HTTP_PROXY has badly escaped credentials: http://bob:***@proxy:3128'
    )
    for (const p of [socks, broken, escaped]) expect(p.problem).not.toMatch(/hunter22|%E0/)
  })

  it('masks the password, and shows no path, when naming a proxy', () => {
    expect(mask(u('http://user:pass@proxy:3128/some/path?q=1'))).toBe('http://user:***@proxy:3128')
    expect(mask(u('http://user@proxy:3128'))).toBe('http://user@proxy:3128')
    expect(mask(u('http://proxy:3128/'))).toBe('http://proxy:3128')
    expect(mask(u('https://:token@proxy'))).toBe('https://:***@proxy')
  })
})

describe('NO_PROXY', () => {
  const bypasses = (list: string, url: string): boolean => new NoProxy(list).bypasses(u(url))

  it('matches exact names and their subdomains, with or without a leading dot', () => {
    for (const entry of ['example.com', '.example.com', '*.example.com', 'EXAMPLE.com']) {
      expect(bypasses(entry, 'https://example.com/')).toBe(true)
      expect(bypasses(entry, 'https://a.example.com/')).toBe(true)
      expect(bypasses(entry, 'https://a.b.EXAMPLE.com:8443/')).toBe(true)
      expect(bypasses(entry, 'https://notexample.com/')).toBe(false)
      expect(bypasses(entry, 'https://example.com.evil.net/')).toBe(false)
    }
    expect(bypasses('registry', 'http://registry:5000/')).toBe(true)
    expect(bypasses('registry', 'http://registry.local:5000/')).toBe(false)
  })

  it('matches host:port entries on that port only, default ports included', () => {
    expect(bypasses('myserver.local:443', 'https://myserver.local/')).toBe(true)
    expect(bypasses('myserver.local:443', 'https://myserver.local:443/')).toBe(true)
    expect(bypasses('myserver.local:443', 'https://a.myserver.local/')).toBe(true)
    expect(bypasses('myserver.local:443', 'https://myserver.local:5000/')).toBe(false)
    expect(bypasses('myserver.local:443', 'http://myserver.local/')).toBe(false)
    expect(bypasses('myserver.local:80', 'http://myserver.local/')).toBe(true)
  })

  it('matches IP addresses exactly, with ports, and CIDR ranges', () => {
    expect(bypasses('10.1.2.3', 'https://10.1.2.3:5000/')).toBe(true)
    expect(bypasses('10.1.2.3:5000', 'https://10.1.2.3:5000/')).toBe(true)
    expect(bypasses('10.1.2.3:5000', 'https://10.1.2.3:5001/')).toBe(false)
    expect(bypasses('10.1.2.3', 'https://10.1.2.30/')).toBe(false)
    // An address is no domain: "2.3" does not cover 10.1.2.3.
    expect(bypasses('2.3', 'https://10.1.2.3/')).toBe(false)
    expect(bypasses('10.0.0.0/8', 'https://10.200.3.4/')).toBe(true)
    expect(bypasses('10.0.0.0/8', 'https://11.0.0.1/')).toBe(false)
    expect(bypasses('fd00::/8', 'https://[fd12::1]:5000/')).toBe(true)
    expect(bypasses('fd00::1', 'https://[fd00::1]/')).toBe(true)
    expect(bypasses('fd00:0:0:0:0:0:0:1', 'https://[fd00::1]/')).toBe(true)
    expect(bypasses('[fd00::1]:5000', 'https://[fd00::1]:5000/')).toBe(true)
    expect(bypasses('[fd00::1]:5000', 'https://[fd00::1]/')).toBe(false)
  })

  it('reads * as no proxy at all, and ignores white space and empty entries', () => {
    expect(bypasses('*', 'https://ghcr.io/')).toBe(true)
    expect(bypasses(' foo.com , ,*', 'https://ghcr.io/')).toBe(true)
    expect(bypasses(' foo.com ,\tghcr.io ,', 'https://ghcr.io/')).toBe(true)
    expect(bypasses(' , ', 'https://ghcr.io/')).toBe(false)
    expect(bypasses('', 'https://ghcr.io/')).toBe(false)
  })

  it('always bypasses loopback hosts, unless the list has <-loopback>', () => {
    for (const url of [
      'http://localhost:5000/',
      'http://127.0.0.1:5000/',
      'https://127.1.2.3/',
      'http://[::1]:5000/'
    ]) {
      expect(bypasses('', url)).toBe(true)
      expect(bypasses('example.com', url)).toBe(true)
      expect(bypasses('<-loopback>', url)).toBe(false)
      expect(bypasses('example.com, <-LOOPBACK>', url)).toBe(false)
    }
    expect(bypasses('<-loopback>,127.0.0.1:5000', 'http://127.0.0.1:5000/')).toBe(true)
    expect(bypasses('<-loopback>,*', 'http://127.0.0.1:5000/')).toBe(true)
    // Only loopback: the rest of the machine's addresses are names like any other.
    expect(bypasses('', 'http://10.0.0.1/')).toBe(false)
    expect(bypasses('', 'http://localhost.example.com/')).toBe(false)
  })

  it('is read from no_proxy before NO_PROXY', () => {
    const env = {
      HTTPS_PROXY: 'http://p:1',
      no_proxy: 'lower.example',
      NO_PROXY: 'upper.example'
    }
    expect(via(env, 'https://lower.example/')).toBe('direct')
    expect(via(env, 'https://upper.example/')).toBe('HTTPS_PROXY http://p:1/')
  })

  it('applies to unusable proxy values too: only requests that need them fail', () => {
    const env = { HTTPS_PROXY: 'socks5://proxy:1080', NO_PROXY: 'ghcr.io' }
    expect(via(env, 'https://ghcr.io/')).toBe('direct')
    expect(via(env, 'https://quay.io/')).toMatch(/^HTTPS_PROXY: HTTPS_PROXY names a socks5: proxy/)
  })
})
