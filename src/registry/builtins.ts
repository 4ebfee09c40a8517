// Node's network modules, loaded on first use and with require(). tls and http2 cost about 40 ms
// of start-up CPU on Node 24, which a plain-HTTP registry never needs. And never `import` node:http:
// an ESM import reads every export of a built-in, and node:http's WebSocket, CloseEvent and
// MessageEvent are getters that load Node's own bundled undici (+120 ms of CPU on Node 24).
import { createRequire } from 'node:module'
import type * as Http from 'node:http'
import type * as Http2 from 'node:http2'
import type * as Tls from 'node:tls'

const require = createRequire(import.meta.url)

export const http = (): typeof Http => require('node:http') as typeof Http
export const http2 = (): typeof Http2 => require('node:http2') as typeof Http2
export const tls = (): typeof Tls => require('node:tls') as typeof Tls
