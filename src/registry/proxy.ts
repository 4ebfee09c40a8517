// The proxy variables as GitHub's runner and @actions/http-client read them: which proxy, if any,
// a URL goes through. Only parsing and matching here; transport.ts builds the connections.
//
// Sources followed:
// - https://docs.github.com/en/actions/hosting-your-own-runners/managing-self-hosted-runners/using-a-proxy-server-with-self-hosted-runners
//   (lowercase wins over uppercase; credentials in the URL; no_proxy entries with ports)
// - https://github.com/actions/runner/blob/main/src/Sdk/RunnerWebProxy.cs and
//   https://github.com/actions/toolkit/blob/main/packages/http-client/src/proxy.ts
//   (an empty lowercase value falls back to the uppercase one; a value without a scheme is
//   http://; loopback hosts never go through the proxy)
import { BlockList, isIP } from 'node:net'
import { isLoopback } from '../core/reference.js'

/** A proxy to use, from one variable. `url` carries no credentials: they are in `token`. */
export interface Proxy {
  /** The variable it came from, as set: "https_proxy" or "HTTPS_PROXY". */
  from: string
  url: URL
  /** The URL as messages show it: the password masked. */
  shown: string
  /** The Proxy-Authorization value, when the URL has credentials. */
  token?: string
  /** The password, decoded and as written, for the runner to mask in logs. */
  secrets: string[]
}

/** A proxy variable that cannot be used: requests that would go through it fail with `problem`. */
export interface BadProxy {
  from: string
  problem: string
}

export interface ProxyEnv {
  http?: Proxy | BadProxy
  https?: Proxy | BadProxy
  noProxy: NoProxy
}

interface NoProxyEntry {
  host: string
  port?: string
}

/**
 * The NO_PROXY list. Entries (comma-separated, trimmed, case-insensitive): `*` (no proxy at all),
 * `name` and `.name` and `*.name` (that host and every host under it), `name:port` (that port
 * only), IP addresses (`10.1.2.3`, `::1`, `[::1]:5000`) and CIDR ranges (`10.0.0.0/8`, as curl
 * 7.86+ and Go accept), and `<-loopback>` (see `bypasses`).
 */
export class NoProxy {
  readonly all: boolean
  /** `<-loopback>`: loopback hosts go through the proxy too. */
  readonly proxyLoopback: boolean
  private readonly entries: NoProxyEntry[] = []
  /** CIDR entries; created with the first (node:net's BlockList loads ~1.5 ms of modules). */
  private ranges?: BlockList

  constructor(list: string) {
    let all = false
    let proxyLoopback = false
    for (const raw of list.split(',')) {
      const item = raw.trim().toLowerCase()
      if (!item) continue
      if (item === '*') all = true
      else if (item === '<-loopback>') proxyLoopback = true
      else if (!this.addRange(item)) this.entries.push(parseEntry(item))
    }
    this.all = all
    this.proxyLoopback = proxyLoopback
  }

  /**
   * Whether `url` goes direct. Loopback hosts (localhost, 127.0.0.0/8, [::1]) always do, as the
   * runner (`uri.IsLoopback`), @actions/http-client and docker (Go's httpproxy) all decide: a
   * registry on this machine is never behind the corporate proxy. Chromium's `<-loopback>` bypass
   * rule (https://chromium.googlesource.com/chromium/src/+/HEAD/net/docs/proxy.md, "Overriding
   * the implicit bypass rules") turns that off, for a proxy that must see loopback traffic: the
   * tests use it to prove traffic to their 127.0.0.1 registries went through a real proxy. Other
   * tools read it as a host name that matches nothing.
   */
  bypasses(url: URL): boolean {
    if (this.all) return true
    if (!this.proxyLoopback && isLoopback(url.host)) return true
    const host = url.hostname.toLowerCase()
    const port = url.port || (url.protocol === 'https:' ? '443' : '80')
    const ip = unbracket(host)
    const family = isIP(ip)
    if (family && this.ranges?.check(ip, family === 4 ? 'ipv4' : 'ipv6')) return true
    return this.entries.some(
      (e) =>
        (e.port === undefined || e.port === port) &&
        (host === e.host || (!family && !isIP(unbracket(e.host)) && host.endsWith(`.${e.host}`)))
    )
  }

  /** `10.0.0.0/8`, `fd00::/8`: true when `item` is a CIDR range, now added. */
  private addRange(item: string): boolean {
    const m = /^\[?([^\]/]+)\]?\/(\d{1,3})$/.exec(item)
    const family = m ? isIP(m[1]) : 0
    if (!m || !family) return false
    const prefix = Number(m[2])
    if (prefix > (family === 4 ? 32 : 128)) return false
    this.ranges ??= new BlockList()
    this.ranges.addSubnet(m[1], prefix, family === 4 ? 'ipv4' : 'ipv6')
    return true
  }
}

function parseEntry(item: string): NoProxyEntry {
  // "[::1]:5000", "[::1]": a bracketed IPv6 address, with or without a port.
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(item)
  if (v6) return { host: bracketed(v6[1]), port: v6[2] }
  // A bare IPv6 address has more than one colon and no port.
  if (isIP(item) === 6) return { host: bracketed(item) }
  const hp = /^(.*):(\d+)$/.exec(item)
  const [name, port] = hp ? [hp[1], hp[2]] : [item, undefined]
  // ".example.com" and "*.example.com" mean the domain, as "example.com" does (curl, Go).
  return { host: name.replace(/^\*?\.+/, ''), port }
}

/** "[::1]" for "0:0:0:0:0:0:0:1": IPv6 as URL host names spell it. */
function bracketed(address: string): string {
  try {
    return new URL(`http://[${address}]`).hostname
  } catch {
    return `[${address}]`
  }
}

function unbracket(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host
}

/** The first non-empty of the lowercase and uppercase variable, trimmed. */
function pick(env: NodeJS.ProcessEnv, name: string): { from: string; value: string } | undefined {
  for (const from of [name.toLowerCase(), name.toUpperCase()]) {
    const value = env[from]?.trim()
    if (value) return { from, value }
  }
  return undefined
}

/** Reads the proxy variables once; no variable set means no proxy. */
export function readProxyEnv(env: NodeJS.ProcessEnv): ProxyEnv {
  const http = pick(env, 'http_proxy')
  const https = pick(env, 'https_proxy')
  return {
    http: http && parseProxy(http.from, http.value),
    https: https && parseProxy(https.from, https.value),
    noProxy: new NoProxy(pick(env, 'no_proxy')?.value ?? '')
  }
}

/** The proxy `url` goes through, or undefined to go direct. */
export function proxyFor(env: ProxyEnv, url: URL): Proxy | BadProxy | undefined {
  const proxy = url.protocol === 'https:' ? env.https : env.http
  return proxy && !env.noProxy.bypasses(url) ? proxy : undefined
}

export function parseProxy(from: string, value: string): Proxy | BadProxy {
  // "proxy:3128" and "user:pass@proxy:3128" are http:// (as @actions/http-client reads them).
  const text = /^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? value : `http://${value}`
  let url: URL
  try {
    url = new URL(text)
  } catch {
    return { from, problem: `${from} is not a URL: ${maskText(value)}` }
  }
  const shown = mask(url)
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    return {
      from,
      problem: `${from} names a ${url.protocol} proxy (${shown}): only http:// and https:// proxies are supported`
    }
  if (!url.hostname) return { from, problem: `${from} names no proxy host: ${shown}` }
  let user: string
  let password: string
  try {
    user = decodeURIComponent(url.username)
    password = decodeURIComponent(url.password)
  } catch {
    return { from, problem: `${from} has badly escaped credentials: ${shown}` }
  }
  const secrets = [...new Set([password, url.password].filter(Boolean))]
  const token =
    user || password ? `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` : undefined
  return { from, url: new URL(url.origin), shown, token, secrets }
}

/** "http://user:***@proxy:3128": the URL without its password, path or query. */
export function mask(url: URL): string {
  const user = url.username || url.password ? `${url.username}${url.password ? ':***' : ''}@` : ''
  return `${url.protocol}//${user}${url.host}`
}

/** For a value that is not even a URL: everything before the last "@" is hidden. */
function maskText(value: string): string {
  const at = value.lastIndexOf('@')
  return at < 0 ? value : `***${value.slice(at)}`
}
