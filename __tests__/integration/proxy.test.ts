// The proxy variables against a real forward proxy (Debian's tinyproxy) in front of the real
// Distribution registry: tinyproxy's log shows what went through it. The registries are on
// 127.0.0.1, which never goes through a proxy (as the runner, @actions/http-client and docker
// decide), so NO_PROXY carries `<-loopback>` (src/registry/proxy.ts) wherever traffic must.
// What tinyproxy logged is read only once it has logged a marker sent after the merge
// (ForwardProxy.requests), so no count depends on when the log is read.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { createServer as createHttpServer, type ServerResponse } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { AddressInfo, Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runAction } from '../helpers/action.js'
import { refusingPort, startForwardProxy, type ForwardProxy } from '../helpers/forward-proxy.js'
import { mergeWith } from '../helpers/merge.js'
import { getManifest, pushImage, type PushedImage } from '../helpers/oci.js'
import { makeCerts, startRegistry, type TestRegistry } from '../helpers/registry.js'
import { Transport } from '../../src/registry/transport.js'

const PROXY_USER = 'proxy-user'
const PROXY_PASSWORD = 'Pr0xy-Secr3t_pw'
const port = (host: string): number => Number(host.split(':')[1])

let plain: TestRegistry
let tls: TestRegistry
let proxy: ForwardProxy
let authed: ForwardProxy
const images = new Map<TestRegistry, PushedImage[]>()

beforeAll(async () => {
  ;[plain, tls] = await Promise.all([startRegistry(), startRegistry({ tls: true })])
  for (const reg of [plain, tls])
    images.set(
      reg,
      await Promise.all(
        (['amd64', 'arm64'] as const).map((arch) => pushImage(reg, 'src/app', { arch, seed: 'px' }))
      )
    )
  // CONNECT only to the TLS registry's port, as proxies allow it to chosen ports only.
  ;[proxy, authed] = await Promise.all([
    startForwardProxy({ connectPorts: [port(tls.host)] }),
    startForwardProxy({
      connectPorts: [port(tls.host)],
      basicAuth: { user: PROXY_USER, password: PROXY_PASSWORD }
    })
  ])
})
afterAll(async () => {
  await Promise.all([proxy?.stop(), authed?.stop(), plain?.stop(), tls?.stop()])
})
beforeEach(async () => {
  await Promise.all([proxy.clear(), authed.clear()])
})

const sources = (reg: TestRegistry): string =>
  images
    .get(reg)!
    .map((m) => `${reg.host}/src/app@${m.digest}`)
    .join('\n')

/**
 * Merges the registry's two images into `dst/app:<tag>` with these proxy variables; `seen`
 * collects the secrets handed to the runner and the retry lines.
 */
function mergeVia(
  reg: TestRegistry,
  tag: string,
  env: NodeJS.ProcessEnv,
  seen: { secrets: string[]; retries: string[] } = { secrets: [], retries: [] }
): ReturnType<typeof mergeWith> {
  return mergeWith(
    {
      tags: `${reg.host}/dst/app:${tag}`,
      sources: sources(reg),
      'insecure-registries': reg === tls ? reg.host : ''
    },
    {
      env,
      onSecret: (s) => seen.secrets.push(s),
      onRetry: (r) => seen.retries.push(r.reason)
    }
  )
}

describe('through tinyproxy', () => {
  it('merges on a plain-HTTP registry through HTTP_PROXY: every request goes through the proxy', async () => {
    const r = await mergeVia(plain, 'http', { http_proxy: proxy.url, NO_PROXY: '<-loopback>' })
    expect((await getManifest(plain, 'dst/app', 'http'))?.digest).toBe(r.index.digest)
    const seen = await proxy.requests()
    // Absolute-URI requests, as curl and docker send plain HTTP to a proxy: one line each. An
    // exchange can fail before it reaches tinyproxy (it closes connections it let look
    // keep-alive) and is then retried: each retry may stand for one line fewer.
    expect(seen.length).toBeLessThanOrEqual(r.requests)
    expect(seen.length).toBeGreaterThanOrEqual(r.requests - r.retries)
    expect(seen.filter((l) => !l.includes(` http://${plain.host}/v2/`))).toEqual([])
    expect(seen).toContain(`PUT http://${plain.host}/v2/dst/app/manifests/http`)
  })

  it('merges on a TLS registry through HTTPS_PROXY (CONNECT), with insecure-registries applied inside the tunnel', async () => {
    const env = { HTTPS_PROXY: proxy.url, NO_PROXY: '<-loopback>' }
    const r = await mergeVia(tls, 'https', env)
    expect((await getManifest(tls, 'dst/app', 'https'))?.digest).toBe(r.index.digest)
    const seen = await proxy.requests()
    expect(seen.length).toBeGreaterThan(0)
    expect(new Set(seen)).toEqual(new Set([`CONNECT ${tls.host}`]))
  })

  it('still verifies the registry certificate through the tunnel', async () => {
    await expect(
      mergeWith(
        { tags: `${tls.host}/dst/app:untrusted`, sources: sources(tls) },
        { env: { HTTPS_PROXY: proxy.url, NO_PROXY: '<-loopback>' } }
      )
    ).rejects.toThrow(new RegExp(`TLS error talking to registry ${tls.host} .*certificate`))
    expect(await proxy.requests()).toContain(`CONNECT ${tls.host}`)
  })

  it.each([
    ['the registry host:port', () => plain.host],
    ['its address', () => '127.0.0.1'],
    ['*', () => '*']
  ])('goes direct to a host NO_PROXY names (%s)', async (_name, entry) => {
    const env = { HTTP_PROXY: proxy.url, NO_PROXY: `example.com, <-loopback> ,${entry()}` }
    const r = await mergeVia(plain, 'direct', env)
    expect((await getManifest(plain, 'dst/app', 'direct'))?.digest).toBe(r.index.digest)
    expect(await proxy.requests()).toEqual([])
  })

  it('goes direct to loopback registries when NO_PROXY has no <-loopback>', async () => {
    const env = { HTTP_PROXY: proxy.url, HTTPS_PROXY: proxy.url, NO_PROXY: 'example.com' }
    await mergeVia(plain, 'loopback', env)
    await mergeVia(tls, 'loopback', { HTTP_PROXY: proxy.url, HTTPS_PROXY: proxy.url })
    expect(await proxy.requests()).toEqual([])
  })

  it('authenticates with the credentials in the proxy URL, and hands the password to the runner to mask', async () => {
    const secrets: string[] = []
    const env = {
      HTTP_PROXY: authed.urlWithAuth!,
      HTTPS_PROXY: authed.urlWithAuth!,
      NO_PROXY: '<-loopback>'
    }
    const r = await mergeVia(tls, 'authed', env, { secrets, retries: [] })
    expect((await getManifest(tls, 'dst/app', 'authed'))?.digest).toBe(r.index.digest)
    const seen = await authed.requests()
    // The first requests, over plain HTTP (HTTP_PROXY), find the registry speaks TLS; the rest
    // go through CONNECT (HTTPS_PROXY).
    const plainHttp = seen.filter((l) => !l.startsWith('CONNECT '))
    expect(plainHttp.length).toBeGreaterThan(0)
    expect(plainHttp.filter((l) => !l.includes(` http://${tls.host}/v2/`))).toEqual([])
    expect(seen).toContain(`CONNECT ${tls.host}`)
    expect(secrets).toContain(PROXY_PASSWORD)
    expect(r.log.filter((l) => l.includes(PROXY_PASSWORD))).toEqual([])
  })

  // tinyproxy 1.11 answers wrong credentials with 401, not 407
  // (https://github.com/tinyproxy/tinyproxy/issues/532): to CONNECT only the proxy answers, so
  // that is its refusal; to a plain-HTTP request a 401 is the registry's to give, so that case
  // is not tried here.
  it.each([
    [
      'refuses wrong credentials',
      'HTTPS_PROXY',
      `${PROXY_USER}:Wr0ng-Passw0rd@`,
      'refused its credentials'
    ],
    ['asks for missing credentials', 'HTTPS_PROXY', '', 'asks for credentials'],
    ['asks for missing credentials', 'HTTP_PROXY', '', 'asks for credentials']
  ])('names the proxy when it %s (%s)', async (_name, variable, userinfo, words) => {
    const reg = variable === 'HTTPS_PROXY' ? tls : plain
    const url = `http://${userinfo}127.0.0.1:${authed.port}`
    const seen = { secrets: [], retries: [] }
    const env = { [variable]: url, NO_PROXY: '<-loopback>' }
    const e = await mergeVia(reg, 'refused', env, seen).catch((x: Error) => x)
    const shown = userinfo ? `http://${PROXY_USER}:***@127.0.0.1:${authed.port}` : url
    expect(e).toBeInstanceOf(Error)
    expect((e as Error).message).toContain(
      `the proxy ${shown} (from ${variable}) ${words} to reach ${reg.host}`
    )
    expect((e as Error).message).not.toContain('Wr0ng-Passw0rd')
    // A refusal is final: no retry line either.
    expect(seen.retries).toEqual([])
    expect((await authed.requests()).length).toBeGreaterThan(0)
  })

  it('names the proxy, masked, when nothing listens at its address', async () => {
    // A port that refuses connections and that nothing can take during the test.
    const port = await refusingPort()
    try {
      const dead = `http://${PROXY_USER}:${PROXY_PASSWORD}@127.0.0.1:${port.port}`
      const seen = { secrets: [], retries: [] }
      const env = { HTTPS_PROXY: dead, NO_PROXY: '<-loopback>' }
      const e = await mergeVia(tls, 'dead', env, seen).catch((x: Error) => x)
      expect(e).toBeInstanceOf(Error)
      const masked = dead.replace(PROXY_PASSWORD, '***')
      expect((e as Error).message).toMatch(
        new RegExp(
          `could not reach the proxy ${esc(masked)} \\(from HTTPS_PROXY\\) to reach ${esc(tls.host)}: .*ECONNREFUSED`
        )
      )
      expect((e as Error).message).not.toContain(PROXY_PASSWORD)
      // A refused connection gets one more try, whose line names the proxy too.
      expect(seen.retries.length).toBeGreaterThan(0)
      for (const line of seen.retries) expect(line).toContain(`could not reach the proxy ${masked}`)
    } finally {
      await port.release()
    }
  })

  it('names the proxy when its host name does not resolve', async () => {
    // .invalid never resolves (RFC 2606). Without a DNS server the answer is EAI_AGAIN, which is
    // retried: once is enough here.
    const e = await mergeWith(
      { tags: `${tls.host}/dst/app:dns`, sources: sources(tls), 'insecure-registries': tls.host },
      { env: { HTTPS_PROXY: 'http://proxy.invalid:3128', NO_PROXY: '<-loopback>' }, retries: 1 }
    ).catch((x: Error) => x)
    expect((e as Error).message).toMatch(
      new RegExp(
        `could not reach the proxy http://proxy\\.invalid:3128 \\(from HTTPS_PROXY\\) to reach ${esc(tls.host)}: .*(ENOTFOUND|EAI_AGAIN)`
      )
    )
  })

  it('names the proxy when it refuses the tunnel (403: CONNECT to a port it does not allow)', async () => {
    const t = new Transport({
      maxConcurrency: 1,
      requestTimeoutMs: 10_000,
      insecureHosts: new Set(),
      env: { HTTPS_PROXY: proxy.url, NO_PROXY: '<-loopback>' }
    })
    try {
      await expect(
        t.exchange('GET', new URL(`https://${plain.host}/v2/`), {}, undefined, 10_000)
      ).rejects.toThrow(
        `the proxy ${proxy.url} (from HTTPS_PROXY) refused a tunnel to ${plain.host}: 403 Forbidden`
      )
    } finally {
      await t.close()
    }
    expect(await proxy.requests()).toEqual([`CONNECT ${plain.host}`])
  })
})

// The action reads at least 64 KiB of response headers (Google Artifact Registry sends ~21 KB,
// past Node's default 16 KiB: https://github.com/actions/attest-build-provenance/issues/606),
// through a proxy too: tinyproxy passes a plain-HTTP answer's headers on, and a tunnel carries
// them as they are.
describe('large response headers through the proxy', () => {
  const servers: Server[] = []
  let dir: string
  let certs: { cert: Buffer; key: Buffer }
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mm-proxy-headers-'))
    const files = await makeCerts(dir)
    certs = { cert: await readFile(files.cert), key: await readFile(files.key) }
  })
  afterAll(async () => {
    servers.forEach((s) => s.close())
    await rm(dir, { recursive: true, force: true })
  })
  const listen = async (s: Server): Promise<string> => {
    servers.push(s)
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r))
    return `127.0.0.1:${(s.address() as AddressInfo).port}`
  }

  it.each([
    ['40 KB', 40],
    ['100 KB', 100]
  ])(
    'reads %s of them over plain HTTP (HTTP_PROXY) and inside a CONNECT tunnel (HTTPS_PROXY)',
    async (_name, fields) => {
      const big = (_req: unknown, res: ServerResponse): void => {
        for (let i = 0; i < fields; i++) res.setHeader(`x-filler-${i}`, 'b'.repeat(1000))
        res.end('ok')
      }
      const httpHost = await listen(createHttpServer(big))
      const httpsHost = await listen(createHttpsServer(certs, big))
      const wide = await startForwardProxy()
      const t = new Transport({
        maxConcurrency: 1,
        requestTimeoutMs: 10_000,
        insecureHosts: new Set([httpsHost]),
        env: { HTTP_PROXY: wide.url, HTTPS_PROXY: wide.url, NO_PROXY: '<-loopback>' }
      })
      try {
        for (const url of [`http://${httpHost}/`, `https://${httpsHost}/`]) {
          const ex = await t.exchange('GET', new URL(url), {}, undefined, 10_000)
          expect(ex.status).toBe(200)
          for (let i = 0; i < fields; i++)
            expect(ex.headers[`x-filler-${i}`]).toBe('b'.repeat(1000))
          for await (const _ of ex.body) void _
        }
        expect(await wide.requests()).toEqual([`GET http://${httpHost}/`, `CONNECT ${httpsHost}`])
      } finally {
        await t.close()
        await wide.stop()
      }
    }
  )
})

describe('the action (node dist/index.js) behind a proxy', () => {
  it('merges on a TLS registry through an authenticating proxy, trusting NODE_EXTRA_CA_CERTS, and never prints the password', async () => {
    const run = await runAction(
      { tags: `${tls.host}/dst/app:e2e`, sources: sources(tls) },
      {
        https_proxy: authed.urlWithAuth!,
        HTTP_PROXY: authed.urlWithAuth!,
        NO_PROXY: '<-loopback>',
        NODE_EXTRA_CA_CERTS: tls.caFile!
      }
    )
    expect(run.stdout).not.toMatch(/::error::/)
    expect(run.code).toBe(0)
    expect((await getManifest(tls, 'dst/app', 'e2e'))?.digest).toBe(run.outputs.digest)
    expect(await authed.requests()).toContain(`CONNECT ${tls.host}`)
    const lines = `${run.stdout}\n${run.stderr}`.split('\n')
    expect(lines).toContain(`::add-mask::${PROXY_PASSWORD}`)
    expect(
      lines.filter((l) => l.includes(PROXY_PASSWORD) && !l.startsWith('::add-mask::'))
    ).toEqual([])
  })
})

function esc(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}
