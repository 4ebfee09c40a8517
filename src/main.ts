// The action: read inputs, merge, set outputs, write the job summary.
import * as core from '@actions/core'
import { appendFileSync } from 'node:fs'
import { actionLog as log } from './action-log.js'
import { githubContext, misnamedInputs } from './inputs.js'
import { describeResult, failureMessage, outputsOf } from './outputs.js'
import { readSetup } from './release-plan.js'
import { runMerges } from './runner.js'
import { renderSummary } from './summary.js'

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
    const summaryFile = process.env.GITHUB_STEP_SUMMARY
    try {
      if (summaryFile) appendFileSync(summaryFile, renderSummary(results, dryRun, setup.fromPlan))
    } catch (e) {
      log.warning(`the job summary could not be written: ${(e as Error).message}`)
    }
    for (const [i, r] of results.entries())
      log.notice((setup.fromPlan ? `image ${i + 1}: ` : '') + describeResult(r, dryRun))
  } catch (e) {
    log.fail(failureMessage(e))
  }
}
