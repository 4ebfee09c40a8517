// Opening connections to registries, for both protocol clients: a connect timeout (TCP, and TLS
// up to the end of the handshake), and SNI as RFC 6066 has it.
import { connect as connectTcp, isIP, type Socket } from 'node:net'
import type { TLSSocket } from 'node:tls'
import { tls } from './builtins.js'
import { connectTimeout } from './timeouts.js'

export interface TlsDial {
  host: string
  port: number
  /** The protocols offered in the handshake (ALPN), preferred first. */
  alpn: string[]
  /** The user's insecure registry: its certificate is not verified. */
  insecure: boolean
  timeoutMs: number
  /** A session of an earlier connection, to resume. */
  session?: Buffer
}

export function dialTls(d: TlsDial): TLSSocket {
  const socket = tls().connect({
    host: d.host,
    port: d.port,
    // SNI carries host names only; Node warns when given an address.
    servername: isIP(d.host) ? undefined : d.host,
    ALPNProtocols: d.alpn,
    rejectUnauthorized: !d.insecure,
    session: d.session
  })
  return withTimeout(socket, 'secureConnect', d.timeoutMs)
}

export function dialTcp(host: string, port: number, timeoutMs: number): Socket {
  return withTimeout(connectTcp({ host, port }), 'connect', timeoutMs)
}

/** Fails `socket` with a connect timeout unless `event` (connected) comes first. */
function withTimeout<S extends Socket>(socket: S, event: string, ms: number): S {
  const timer = setTimeout(() => socket.destroy(connectTimeout()), ms)
  const clear = (): void => clearTimeout(timer)
  socket.once(event, clear)
  socket.once('close', clear)
  return socket
}
