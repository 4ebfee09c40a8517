// Runs the merge in-process with the action's own input parsing, capturing the log.
import { parseInputs } from '../../src/inputs.js'
import type { Logger } from '../../src/logger.js'
import { merge, type MergeResult } from '../../src/merge.js'
import { createClient } from '../../src/main.js'
import { StaticCredentials } from '../../src/registry/credentials.js'

export interface MergeRun extends MergeResult {
  log: string[]
  requests: number
  retries: number
}

export async function mergeWith(values: Record<string, string>): Promise<MergeRun> {
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
  const client = createClient(inputs, {
    credentials: new StaticCredentials({ explicit: inputs.credentials }),
    baseDelayMs: 20,
    onRetry: (r) => log.push(`retry ${r.attempt} ${r.reason}`)
  })
  try {
    const result = await merge(client, inputs, logger)
    return {
      ...result,
      log,
      requests: client.transport.requestCount,
      retries: client.transport.retryCount
    }
  } finally {
    await client.close()
  }
}
