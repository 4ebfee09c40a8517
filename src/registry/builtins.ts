// Node's network modules, loaded on first use. tls and http2 cost about 40 ms of start-up CPU on
// Node 24, which a plain-HTTP registry never needs. And never `import` node:http in an ES module:
// an ESM import reads every export of a built-in, and node:http's WebSocket, CloseEvent and
// MessageEvent are getters that load Node's own bundled undici (+120 ms of CPU on Node 24).
// process.getBuiltinModule (Node 20.16+) returns the module itself, from ESM (the tests) and
// CommonJS (the bundle) alike.
import type * as Http from 'node:http'
import type * as Http2 from 'node:http2'
import type * as Tls from 'node:tls'

export const http = (): typeof Http => process.getBuiltinModule('node:http')
export const http2 = (): typeof Http2 => process.getBuiltinModule('node:http2')
export const tls = (): typeof Tls => process.getBuiltinModule('node:tls')
