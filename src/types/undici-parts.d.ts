// Types for the parts of undici imported one by one (src/registry/undici.ts): each file's
// export is the one undici's index exports under that name.
declare module 'undici/lib/dispatcher/pool.js' {
  import type { Pool } from 'undici'
  const pool: typeof Pool
  export default pool
}
declare module 'undici/lib/dispatcher/proxy-agent.js' {
  import type { ProxyAgent } from 'undici'
  const proxyAgent: typeof ProxyAgent
  export default proxyAgent
}
declare module 'undici/lib/dispatcher/dispatcher.js' {
  import type { Dispatcher } from 'undici'
  const dispatcher: typeof Dispatcher
  export default dispatcher
}
declare module 'undici/lib/api/index.js' {
  const api: Record<string, unknown>
  export default api
}
