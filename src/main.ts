// The action: read inputs, merge, set outputs, write the job summary.
import * as core from '@actions/core'
import { formatPlatformFull, type Platform } from './core/platform.js'
import { UserError } from './errors.js'
import { misnamedInputs, parseInputs, type GithubContext, type Inputs } from './inputs.js'
import { actionLog as log } from './action-log.js'
import { escapeHtml } from './core/inert.js'
import { merge, type MergeResult } from './merge.js'
import { RegistryClient, type ClientOptions } from './registry/client.js'
import { readDockerConfig, StaticCredentials } from './registry/credentials.js'

const REQUEST_TIMEOUT_MS = 60_000

/** The registry client for a run, configured from the inputs; hooks connect logs and secrets. */
export function createClient(
  inputs: Inputs,
  hooks: Pick<ClientOptions, 'credentials'> & Partial<ClientOptions>,
  start = Date.now()
): RegistryClient {
  const budgetMs = inputs.timeoutSeconds * 1000
  return new RegistryClient({
    maxConcurrency: inputs.maxConcurrency,
    retries: inputs.retries,
    // One request may wait at most a minute for headers or between body chunks; the whole step
    // gets the timeout input as its budget.
    requestTimeoutMs: Math.min(REQUEST_TIMEOUT_MS, budgetMs),
    deadline: start + budgetMs,
    insecureHosts: new Set(inputs.insecureRegistries),
    ...hooks
  })
}

/**
 * The workflow's repository and commit, from the variables the runner sets (what
 * @actions/github's context reads, without bundling Octokit for it).
 */
function githubContext(env: NodeJS.ProcessEnv = process.env): GithubContext | undefined {
  if (!env.GITHUB_REPOSITORY || !env.GITHUB_SHA) return undefined
  return {
    serverUrl: env.GITHUB_SERVER_URL || 'https://github.com',
    repository: env.GITHUB_REPOSITORY,
    sha: env.GITHUB_SHA
  }
}

export async function run(): Promise<void> {
  const start = Date.now()
  let client: RegistryClient | undefined
  // Docker Hub's pull allowance, as the registry last reported it per host.
  const rateLimits = new Map<string, string>()
  try {
    for (const warning of misnamedInputs(process.env)) log.warning(warning)
    const inputs = parseInputs(
      (name) => core.getInput(name),
      (s) => core.setSecret(s),
      process.env,
      githubContext()
    )
    if (
      inputs.ignoredAnnotations.length &&
      !Object.keys(inputs.annotations).length &&
      !Object.keys(inputs.descriptorAnnotations).length &&
      !inputs.platformDescriptorAnnotations.length
    ) {
      log.warning(
        'no annotation applies to an index: docker/metadata-action writes manifest: lines by default; set DOCKER_METADATA_ANNOTATIONS_LEVELS: index,manifest-descriptor on it'
      )
    }
    for (const line of inputs.ignoredAnnotations) {
      log.info(`annotation "${line}" is not for an index or its descriptors: ignored`)
    }
    client = createClient(
      inputs,
      {
        credentials: new StaticCredentials({
          explicit: inputs.credentials,
          config: readDockerConfig(),
          githubToken: inputs.githubToken,
          log: (line) => log.info(line)
        }),
        onSecret: (s) => core.setSecret(s),
        onRetry: ({ url, attempt, delayMs, reason }) =>
          log.info(
            `retry ${attempt} for ${new URL(url).host}${new URL(url).pathname} in ${delayMs} ms (${reason})`
          ),
        onResponse: (url, headers) => {
          const remaining = headers['ratelimit-remaining']
          if (typeof remaining === 'string') rateLimits.set(new URL(url).host, remaining)
        }
      },
      start
    )
    const result = await merge(
      client,
      { ...inputs, deadline: start + inputs.timeoutSeconds * 1000 },
      log
    )
    setOutputs(result, inputs.dryRun)
    // The merge is done: a summary that cannot be written is worth a warning, not a failure.
    await writeSummary(result, inputs.dryRun).catch((e: unknown) =>
      log.warning(`the job summary could not be written: ${(e as Error).message}`)
    )
    log.notice(describe(result, inputs.dryRun))
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e)
    log.fail(e instanceof UserError ? message : `merge failed: ${message}`)
  } finally {
    for (const [host, remaining] of rateLimits)
      log.info(`rate limit remaining at ${host}: ${remaining}`)
    await client?.close()
  }
}

function describe(r: MergeResult, dryRun: boolean): string {
  const by = (o: string): string[] => r.tags.filter((t) => t.outcome === o).map((t) => t.ref)
  const written = by(dryRun ? 'dry-run' : 'pushed')
  const parts = [`${r.index.digest} (${r.platforms.join(', ')})`]
  if (written.length)
    parts.push(`${dryRun ? 'would be pushed' : 'pushed'} to ${written.join(', ')}`)
  if (by('unchanged').length) parts.push(`already current: ${by('unchanged').join(', ')}`)
  if (by('skipped').length) parts.push(`not overwritten (on-conflict): ${by('skipped').join(', ')}`)
  return (dryRun ? 'Dry run: ' : '') + parts.join('; ')
}

function setOutputs(r: MergeResult, dryRun: boolean): void {
  // `tags` lists the tags that hold the index now (or would, in a dry run).
  const written = r.tags.filter(
    (t) => t.outcome !== 'skipped' && (dryRun || t.outcome !== 'dry-run')
  )
  core.setOutput('digest', r.index.digest)
  core.setOutput('media-type', r.index.mediaType)
  core.setOutput('manifest', r.index.json)
  core.setOutput('images', r.images.join('\n'))
  core.setOutput('tags', written.map((t) => t.ref).join('\n'))
  core.setOutput('platforms', r.platforms.join(','))
  core.setOutput('platform-digests', JSON.stringify(r.platformDigests))
}

async function writeSummary(r: MergeResult, dryRun: boolean): Promise<void> {
  if (!process.env.GITHUB_STEP_SUMMARY) return
  // The summary renders HTML: every cell is escaped, whatever it holds.
  const rows = r.children.map((c) =>
    [
      c.kind === 'image'
        ? formatPlatformFull(c.descriptor.platform as Platform)
        : `attestation of ${c.subject?.slice(7, 19) ?? '?'}`,
      c.descriptor.digest,
      String(c.descriptor.size),
      c.sourceInput,
      c.kind === 'image' ? (r.attestations[c.descriptor.digest] ?? 'none') : ''
    ].map((cell, i) => (i === 1 ? `<code>${escapeHtml(cell)}</code>` : escapeHtml(cell)))
  )
  await core.summary
    .addHeading(dryRun ? 'multiarch-merge (dry run)' : 'multiarch-merge', 3)
    .addRaw(
      `Index <code>${escapeHtml(r.index.digest)}</code> (${escapeHtml(r.index.mediaType)})`,
      true
    )
    .addTable([
      ['platform', 'digest', 'size', 'source', 'attestations'].map((data) => ({
        data,
        header: true
      })),
      ...rows
    ])
    .addList(r.tags.map((t) => escapeHtml(`${t.ref}: ${t.outcome}`)))
    .write()
}
