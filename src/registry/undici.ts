// The parts of undici the client uses through a proxy, imported one by one and only then (see
// transport.ts). undici's index loads fetch, WebSocket, EventSource, caches and mocks as well, and
// reads globalThis.Headers, which makes Node load its own bundled copy of undici too.
import type * as Undici from 'undici'
import DispatcherImpl from 'undici/lib/dispatcher/dispatcher.js'
import PoolImpl from 'undici/lib/dispatcher/pool.js'
import ProxyAgentImpl from 'undici/lib/dispatcher/proxy-agent.js'
import api from 'undici/lib/api/index.js'
import { tuneRuntime } from '../runtime.js'

// What undici's index does for every dispatcher: request() and the other calls.
Object.assign(DispatcherImpl.prototype, api)
// Before undici's first connection compiles its WebAssembly parser.
tuneRuntime()

export const Pool = PoolImpl
export type Pool = Undici.Pool
export type PoolOptions = Undici.Pool.Options
export const ProxyAgent = ProxyAgentImpl
export type ProxyAgent = Undici.ProxyAgent
export type Dispatcher = Undici.Dispatcher
