// The parts of undici the client uses, imported one by one. undici's index loads fetch,
// WebSocket, EventSource, caches and mocks as well, and reads globalThis.Headers, which makes
// Node load its own bundled copy of undici too: together about a third of the start-up time.
import type * as Undici from 'undici'
import AgentImpl from 'undici/lib/dispatcher/agent.js'
import DispatcherImpl from 'undici/lib/dispatcher/dispatcher.js'
import PoolImpl from 'undici/lib/dispatcher/pool.js'
import ProxyAgentImpl from 'undici/lib/dispatcher/proxy-agent.js'
import api from 'undici/lib/api/index.js'
import errorsImpl from 'undici/lib/core/errors.js'
import buildConnectorImpl from 'undici/lib/core/connect.js'

// What undici's index does for every dispatcher: request() and the other calls.
Object.assign(DispatcherImpl.prototype, api)

export const Agent = AgentImpl
export type Agent = Undici.Agent
export const Pool = PoolImpl
export type Pool = Undici.Pool
export type PoolOptions = Undici.Pool.Options
export const ProxyAgent = ProxyAgentImpl
export type ProxyAgent = Undici.ProxyAgent
export type Dispatcher = Undici.Dispatcher
export const errors = errorsImpl
export const buildConnector = buildConnectorImpl
