// The action: read inputs, merge, set outputs, write the job summary.
import * as core from '@actions/core'
import { actionLog as log } from './action-log.js'
import { escapeHtml } from './core/inert.js'
import { formatPlatformFull, type Platform } from './core/platform.js'
import { githubContext, misnamedInputs } from './inputs.js'
import type { MergeResult } from './merge.js'
import { describeResult, failureMessage, outputsOf } from './outputs.js'
import { readSetup } from './release-plan.js'
import { runMerges } from './runner.js'

export async function run(): Promise<void> {
  const start = Date.now()
  try {
    for (const warning of misnamedInputs(process.env)) log.warning(warning)
    const setup = await readSetup(
      (name) => core.getInput(name),
      (s) => core.setSecret(s),
      process.env,
      githubContext()
    )
    const { dryRun } = setup.run
    const results = await runMerges(setup, { log, onSecret: (s) => core.setSecret(s) }, start)
    const outputs = results.map((r) => outputsOf(r, dryRun))
    // With a plan, the single-image outputs are the first image's; results holds every image's.
    for (const [name, value] of Object.entries(outputs[0])) core.setOutput(name, value)
    core.setOutput('results', JSON.stringify(outputs))
    // The merge is done: a summary that cannot be written is worth a warning, not a failure.
    await writeSummary(results, dryRun, setup.fromPlan).catch((e: unknown) =>
      log.warning(`the job summary could not be written: ${(e as Error).message}`)
    )
    for (const [i, r] of results.entries())
      log.notice((setup.fromPlan ? `image ${i + 1}: ` : '') + describeResult(r, dryRun))
  } catch (e) {
    log.fail(failureMessage(e))
  }
}

async function writeSummary(
  results: MergeResult[],
  dryRun: boolean,
  fromPlan: boolean
): Promise<void> {
  if (!process.env.GITHUB_STEP_SUMMARY) return
  const title = dryRun ? 'multiarch-merge (dry run)' : 'multiarch-merge'
  for (const [i, r] of results.entries()) {
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
    core.summary
      .addHeading(
        fromPlan ? `${title}: image ${i + 1} (${escapeHtml(r.tags[0]?.ref ?? '')})` : title,
        3
      )
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
  }
  await core.summary.write()
}
