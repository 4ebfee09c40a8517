// HTTP/2 where the registry offers it: the real Distribution registry over TLS negotiates h2
// (ALPN), and a TCP relay in front counts the TLS connections the merge opens.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { readFile, mkdtemp, rm } from 'node:fs/promises'
import { createServer as createHttpsServer, request as httpsRequest } from 'node:https'
import { createServer, connect, type Server } from 'node:net'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { TLSSocket } from 'node:tls'
import { mergeWith } from '../helpers/merge.js'
import { getManifest, pushImage, type PushedImage } from '../helpers/oci.js'
import { makeCerts, startRegistry, type TestRegistry } from '../helpers/registry.js'

/** Relays TCP to the registry as it is (TLS is not terminated) and counts TLS connections. */
interface Relay {
  host: string
  tlsConnections: number
  stop(): Promise<void>
}

async function startRelay(upstream: string): Promise<Relay> {
  const [host, port] = upstream.split(':')
  const relay: Relay = { host: '', tlsConnections: 0, stop: () => Promise.resolve() }
  const server: Server = createServer((down) => {
    const up = connect(Number(port), host)
    // A TLS connection opens with a handshake record (0x16); the plain-HTTP tries a loopback
    // registry first gets are not counted.
    down.once('data', (first: Buffer) => {
      if (first[0] === 0x16) relay.tlsConnections++
    })
    down.pipe(up).pipe(down)
    down.on('error', () => up.destroy())
    up.on('error', () => down.destroy())
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  relay.host = `127.0.0.1:${(server.address() as AddressInfo).port}`
  relay.stop = () =>
    new Promise<void>((r) => {
      server.close(() => r())
      server.emit('close')
    })
  return relay
}

let reg: TestRegistry
let images: PushedImage[]

beforeAll(async () => {
  reg = await startRegistry({ tls: true })
  images = []
  for (const [i, arch] of ['amd64', 'arm64', 'ppc64le', 's390x', '386', 'riscv64'].entries())
    images.push(await pushImage(reg, 'h2/src', { arch, seed: `h2-${i}`, layers: 3 }))
})
afterAll(async () => {
  await reg?.stop()
})

describe('HTTP/2', () => {
  it.each([
    ['multiplexes every request of a merge on one TLS connection', true],
    ['opens a pool of HTTP/1.1 connections when turned off', false]
  ])('%s', async (_title, http2) => {
    const relay = await startRelay(reg.host)
    try {
      const target = `h2/rel-${String(http2)}`
      const r = await mergeWith(
        {
          tags: `${relay.host}/${target}:1\n${relay.host}/${target}:latest`,
          sources: images.map((i) => `${relay.host}/h2/src@${i.digest}`).join('\n'),
          'insecure-registries': relay.host
        },
        { http2 }
      )
      expect((await getManifest(reg, target, 'latest'))?.digest).toBe(r.index.digest)
      expect((await getManifest(reg, target, '1'))?.digest).toBe(r.index.digest)
      // Six sources copied across repositories: dozens of requests, many at once.
      expect(r.requests).toBeGreaterThan(20)
      if (http2) expect(relay.tlsConnections).toBe(1)
      else expect(relay.tlsConnections).toBeGreaterThan(3)
    } finally {
      await relay.stop()
    }
  })

  it('falls back to HTTP/1.1 where the registry does not offer h2', async () => {
    // Node's https server speaks HTTP/1.1 only (no ALPN h2): a front for the registry, as a
    // load balancer that terminates TLS would be.
    const dir = await mkdtemp(join(tmpdir(), 'mm-h1-'))
    const certs = await makeCerts(dir)
    const ca = await readFile(reg.caFile ?? '')
    const protocols: Array<string | false> = []
    const front = createHttpsServer(
      { key: await readFile(certs.key), cert: await readFile(certs.cert) },
      (req, res) => {
        const up = httpsRequest(
          {
            host: '127.0.0.1',
            port: Number(reg.host.split(':')[1]),
            method: req.method,
            path: req.url,
            headers: req.headers,
            agent: false,
            ca
          },
          (answer) => {
            res.writeHead(answer.statusCode ?? 502, answer.headers)
            answer.pipe(res)
          }
        )
        up.on('error', () => res.destroy())
        req.pipe(up)
      }
    )
    front.on('secureConnection', (socket: TLSSocket) =>
      protocols.push(socket.alpnProtocol ?? false)
    )
    // Plain HTTP on the TLS port gets Go's answer, as from the registry itself, which is how a
    // loopback registry is found to speak TLS.
    await new Promise<void>((r) => front.listen(0, '127.0.0.1', r))
    const frontPort = (front.address() as AddressInfo).port
    const port: Server = createServer((socket) => {
      socket.on('error', () => undefined)
      socket.once('data', (first: Buffer) => {
        if (first[0] !== 0x16) {
          socket.end(
            'HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\nClient sent an HTTP request to an HTTPS server.\n'
          )
          return
        }
        const up = connect(frontPort, '127.0.0.1')
        up.on('error', () => socket.destroy())
        up.write(first)
        socket.pipe(up).pipe(socket)
      })
    })
    await new Promise<void>((r) => port.listen(0, '127.0.0.1', r))
    const host = `127.0.0.1:${(port.address() as AddressInfo).port}`
    try {
      const r = await mergeWith({
        tags: `${host}/h2/rel-h1:1`,
        sources: images.map((i) => `${host}/h2/src@${i.digest}`).join('\n'),
        'insecure-registries': host
      })
      expect((await getManifest(reg, 'h2/rel-h1', '1'))?.digest).toBe(r.index.digest)
      // Every connection chose HTTP/1.1, several at once.
      expect(protocols.length).toBeGreaterThan(1)
      expect(new Set(protocols)).toEqual(new Set(['http/1.1']))
    } finally {
      front.closeAllConnections()
      front.close()
      await new Promise<void>((r) => port.close(() => r()))
      await rm(dir, { recursive: true, force: true })
    }
  })
})
