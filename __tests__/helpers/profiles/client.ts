// Talking to a registry profile as the action does: its credentials, and a client for reads
// such as listing referrers the way the action lists them.
import type { ClientOptions, RegistryClient } from '../../../src/registry/client.js'
import { createClient } from '../../../src/runner.js'
import { parseInputs } from '../../../src/inputs.js'
import { StaticCredentials } from '../../../src/registry/credentials.js'
import type { RegistryProfile } from './types.js'

/** The profile's user and password, as the action's inputs would give them. */
export function profileCredentials(p: RegistryProfile): Pick<ClientOptions, 'credentials'> {
  return {
    credentials: new StaticCredentials({
      explicit: new Map([[p.host, { username: p.user, password: p.password }]])
    })
  }
}

/** Runs `fn` with a client of the profile, closed afterwards. */
export async function withProfileClient<T>(
  p: RegistryProfile,
  fn: (client: RegistryClient) => Promise<T>
): Promise<T> {
  const inputs = parseInputs((n) => (n === 'tags' || n === 'sources' ? `${p.host}/x:1` : ''))
  const client = createClient(inputs, { ...profileCredentials(p), baseDelayMs: 20 })
  try {
    return await fn(client)
  } finally {
    await client.close()
  }
}
