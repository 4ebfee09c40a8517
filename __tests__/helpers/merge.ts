// Runs the merge in-process with the action's own input parsing, capturing the log.
import { parseInputs } from '../../src/inputs.js'
import type { Logger } from '../../src/logger.js'
import { merge, type MergeResult } from '../../src/merge.js'
import { createClient } from '../../src/runner.js'
import type { ClientOptions } from '../../src/registry/client.js'
import { StaticCredentials } from '../../src/registry/credentials.js'

export interface MergeRun extends MergeResult {
  log: string[]
  requests: number
  retries: number
}

/** `client` overrides the client's options (request timeout, deadline, backoff) for fault tests. */
export async function mergeWith(
  values: Record<string, string>,
  client: Partial<ClientOptions> = {}
): Promise<MergeRun> {
  const log: string[] = []
  const logger: Logger = {
    info: (m) => log.push(m),
    warning: (m) => log.push(`warning: ${m}`),
    debug: (m) => log.push(`debug: ${m}`),
    group: async (name, fn) => {
      log.push(`group: ${name}`)
      return fn()
    }
  }
  const inputs = parseInputs((n) => values[n] ?? '')
  const rc = createClient(inputs, {
    credentials: new StaticCredentials({ explicit: inputs.credentials }),
    baseDelayMs: 20,
    ...client,
    onRetry: (r) => {
      log.push(`retry ${r.attempt} ${r.reason}`)
      client.onRetry?.(r)
    }
  })
  try {
    const result = await merge(rc, inputs, logger)
    return {
      ...result,
      log,
      requests: rc.stats.requests,
      retries: rc.stats.retries
    }
  } finally {
    await rc.close()
  }
}
