// The action: read inputs, merge, set outputs, write the job summary.
import * as core from '@actions/core'
import { InputError, parseInputs, type Inputs } from './inputs.js'
import type { Logger } from './logger.js'
import { merge, type MergeResult } from './merge.js'
import { RegistryClient, type ClientOptions } from './registry/client.js'
import { readDockerConfig, StaticCredentials } from './registry/credentials.js'
import { formatPlatformFull, type Platform } from './core/platform.js'

const actionsLogger: Logger = {
  info: (m) => core.info(m),
  warning: (m) => core.warning(m),
  debug: (m) => core.debug(m),
  group: (name, fn) => core.group(name, fn)
}

/** The registry client for a run, configured from the inputs; hooks connect logs and secrets. */
export function createClient(
  inputs: Inputs,
  hooks: Pick<ClientOptions, 'credentials'> & Partial<ClientOptions>
): RegistryClient {
  return new RegistryClient({
    maxConcurrency: inputs.maxConcurrency,
    retries: inputs.retries,
    requestTimeoutMs: inputs.timeoutSeconds * 1000,
    insecureHosts: new Set(inputs.insecureRegistries),
    ...hooks
  })
}

export async function run(): Promise<void> {
  let client: RegistryClient | undefined
  try {
    const inputs = parseInputs(
      (name) => core.getInput(name),
      (s) => core.setSecret(s)
    )
    client = createClient(inputs, {
      credentials: new StaticCredentials({
        explicit: inputs.credentials,
        config: readDockerConfig(),
        githubToken: inputs.githubToken
      }),
      onSecret: (s) => core.setSecret(s),
      onRetry: ({ url, attempt, delayMs, reason }) =>
        core.info(
          `retry ${attempt} for ${new URL(url).host}${new URL(url).pathname} in ${delayMs} ms (${reason})`
        )
    })
    const result = await merge(client, inputs, actionsLogger)
    setOutputs(result)
    await writeSummary(result, inputs.dryRun)
    const pushed = result.tags.filter((t) => t.outcome === 'pushed').map((t) => t.ref)
    const verb = inputs.dryRun ? 'Dry run: would push' : 'Pushed'
    core.notice(
      `${verb} ${result.index.digest} (${result.platforms.join(', ')})` +
        (pushed.length ? ` to ${pushed.join(', ')}` : '') +
        (result.tags.some((t) => t.outcome === 'unchanged')
          ? `; unchanged: ${result.tags
              .filter((t) => t.outcome === 'unchanged')
              .map((t) => t.ref)
              .join(', ')}`
          : '')
    )
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e)
    core.setFailed(e instanceof InputError ? message : `merge failed: ${message}`)
  } finally {
    await client?.close()
  }
}

function setOutputs(r: MergeResult): void {
  core.setOutput('digest', r.index.digest)
  core.setOutput('media-type', r.index.mediaType)
  core.setOutput('manifest', r.index.json)
  core.setOutput('images', r.images.join('\n'))
  core.setOutput('tags', r.tags.map((t) => t.ref).join('\n'))
  core.setOutput('platforms', r.platforms.join(','))
  core.setOutput('platform-digests', JSON.stringify(r.platformDigests))
}

async function writeSummary(r: MergeResult, dryRun: boolean): Promise<void> {
  if (!process.env.GITHUB_STEP_SUMMARY) return
  const rows = r.children.map((c) => [
    c.kind === 'image' ? formatPlatformFull(c.descriptor.platform as Platform) : 'attestation',
    `<code>${c.descriptor.digest}</code>`,
    String(c.descriptor.size),
    c.sourceInput
  ])
  await core.summary
    .addHeading(dryRun ? 'multiarch-merge (dry run)' : 'multiarch-merge', 3)
    .addRaw(`Index <code>${r.index.digest}</code> (${r.index.mediaType})`, true)
    .addTable([
      [
        { data: 'platform', header: true },
        { data: 'digest', header: true },
        { data: 'size', header: true },
        { data: 'source', header: true }
      ],
      ...rows
    ])
    .addList(r.tags.map((t) => `${t.ref}: ${t.outcome}`))
    .write()
}
