// One run, as the action and the command line make it: a registry client configured from the
// inputs, every image merged (all or nothing), the client closed.
import type { RunInputs } from './inputs.js'
import type { Logger } from './logger.js'
import { mergeAll, type MergeResult } from './merge.js'
import { RegistryClient, type ClientOptions } from './registry/client.js'
import { readDockerConfig, StaticCredentials } from './registry/credentials.js'
import type { RunSetup } from './release-plan.js'

const REQUEST_TIMEOUT_MS = 60_000

/** The registry client for a run, configured from the inputs; hooks connect logs and secrets. */
export function createClient(
  inputs: RunInputs,
  hooks: Pick<ClientOptions, 'credentials'> & Partial<ClientOptions>,
  start = Date.now()
): RegistryClient {
  const budgetMs = inputs.timeoutSeconds * 1000
  return new RegistryClient({
    maxConcurrency: inputs.maxConcurrency,
    retries: inputs.retries,
    // One request may wait at most a minute for headers or between body chunks; the whole run
    // gets the timeout input as its budget.
    requestTimeoutMs: Math.min(REQUEST_TIMEOUT_MS, budgetMs),
    deadline: start + budgetMs,
    insecureHosts: new Set(inputs.insecureRegistries),
    ...hooks
  })
}

export interface RunHooks {
  log: Logger
  /** A value never to be shown (a token a registry issued). */
  onSecret(secret: string): void
  /** Every response, for a progress display. */
  onResponse?(): void
}

/** Merges every image of `setup` with one client; results in the order of the images. */
export async function runMerges(
  setup: RunSetup,
  hooks: RunHooks,
  start = Date.now()
): Promise<MergeResult[]> {
  const { run, images } = setup
  const { log } = hooks
  for (const [i, image] of images.entries()) {
    const name = images.length > 1 ? `image ${i + 1}: ` : ''
    if (
      image.ignoredAnnotations.length &&
      !Object.keys(image.annotations).length &&
      !Object.keys(image.descriptorAnnotations).length &&
      !image.platformDescriptorAnnotations.length
    ) {
      log.warning(
        `${name}no annotation applies to an index: docker/metadata-action writes manifest: lines by default; set DOCKER_METADATA_ANNOTATIONS_LEVELS: index,manifest-descriptor on it`
      )
    }
    for (const line of image.ignoredAnnotations) {
      log.info(`${name}annotation "${line}" is not for an index or its descriptors: ignored`)
    }
  }
  // Docker Hub's pull allowance, as the registry last reported it per host.
  const rateLimits = new Map<string, string>()
  const client = createClient(
    run,
    {
      credentials: new StaticCredentials({
        explicit: run.credentials,
        config: readDockerConfig(),
        githubToken: run.githubToken,
        log: (line) => log.info(line)
      }),
      onSecret: (s) => hooks.onSecret(s),
      onRetry: ({ url, attempt, delayMs, reason }) =>
        log.info(
          `retry ${attempt} for ${new URL(url).host}${new URL(url).pathname} in ${delayMs} ms (${reason})`
        ),
      onResponse: (url, headers) => {
        hooks.onResponse?.()
        const remaining = headers['ratelimit-remaining']
        if (typeof remaining === 'string') rateLimits.set(new URL(url).host, remaining)
      }
    },
    start
  )
  try {
    const deadline = start + run.timeoutSeconds * 1000
    return await mergeAll(
      client,
      images.map((image) => ({ ...image, dryRun: run.dryRun, deadline })),
      log
    )
  } finally {
    for (const [host, remaining] of rateLimits)
      log.info(`rate limit remaining at ${host}: ${remaining}`)
    await client.close()
  }
}
