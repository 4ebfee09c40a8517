// The command line: the action's merge (and release plans) for any CI system or a shell.
// Outputs go to stdout, the log to stderr; the exit status says what happened.
import { inert } from '../core/inert.js'
import { UserError } from '../errors.js'
import { githubContext, type InputReader } from '../inputs.js'
import { checkImages } from '../merge.js'
import { describeResult, failureMessage, outputsOf } from '../outputs.js'
import { readPlanFile, readSetup, type RunSetup } from '../release-plan.js'
import { runMerges } from '../runner.js'
import { VERSION } from '../version.js'
import { parseArgs, UsageError, type Command } from './args.js'
import { USAGE } from './help.js'
import { CliLog, type Stream } from './log.js'

export interface CliIO {
  stdout: Stream
  stderr: Stream
  /** All of stdin, read only when an option asks for it. */
  readStdin(): Promise<string>
  env: NodeJS.ProcessEnv
}

export const EXIT = { ok: 0, failed: 1, usage: 2 } as const

export async function runCli(argv: string[], io: CliIO): Promise<number> {
  const start = Date.now()
  let command
  try {
    command = parseArgs(argv)
  } catch (e) {
    if (!(e instanceof UsageError)) throw e
    io.stderr.write(`multiarch-merge: ${inert(e.message)}\nRun multiarch-merge --help for usage.\n`)
    return EXIT.usage
  }
  if (command.kind === 'help') {
    io.stdout.write(USAGE)
    return EXIT.ok
  }
  if (command.kind === 'version') {
    io.stdout.write(`${VERSION}\n`)
    return EXIT.ok
  }
  const log = new CliLog(io.stderr, command.verbose)
  let setup: RunSetup
  try {
    setup = await readCommand(command, io, log)
    // Inputs that cannot go together (preserve-digest with platforms) are found before any request.
    checkImages(setup.images.map((image) => ({ ...image, dryRun: setup.run.dryRun })))
  } catch (e) {
    log.error(failureMessage(e))
    return e instanceof UserError ? EXIT.usage : EXIT.failed
  }
  try {
    const results = await runMerges(
      setup,
      { log, onSecret: (s) => log.mask(s), onResponse: () => log.response() },
      start
    )
    const { dryRun } = setup.run
    const outputs = results.map((r) => outputsOf(r, dryRun))
    for (const [i, r] of results.entries())
      log.always((setup.fromPlan ? `image ${i + 1}: ` : '') + describeResult(r, dryRun))
    if (command.json)
      io.stdout.write(`${JSON.stringify(setup.fromPlan ? { results: outputs } : outputs[0])}\n`)
    else io.stdout.write(outputs.map((o) => `${o.digest}\n`).join(''))
    return EXIT.ok
  } catch (e) {
    log.error(failureMessage(e))
    return EXIT.failed
  }
}

/** The run the command line describes: options over MULTIARCH_MERGE_* variables over defaults. */
async function readCommand(command: Command, io: CliIO, log: CliLog): Promise<RunSetup> {
  const inputs = { ...command.inputs }
  for (const name of command.secretsOnCommandLine) {
    log.warning(
      `--${name} on the command line can be read by other users of this machine: use ${name === 'github-token' ? '' : `--${name}-stdin or `}MULTIARCH_MERGE_${envName(name)} instead`
    )
  }
  let plan: { name: string; text: string } | undefined
  if (command.stdin) {
    const text = await io.readStdin()
    if (command.stdin === 'plan') plan = { name: 'plan (stdin)', text }
    else inputs[command.stdin] = command.stdin === 'password' ? text.replace(/\r?\n$/, '') : text
  }
  if (command.plan !== undefined && !plan)
    plan = { name: `plan ${command.plan}`, text: readPlanFile(command.plan, '--plan') }
  const get: InputReader = (name) =>
    inputs[name] ?? io.env[`MULTIARCH_MERGE_${envName(name)}`] ?? ''
  return readSetup(get, (s) => log.mask(s), io.env, githubContext(io.env), plan)
}

function envName(input: string): string {
  return input.toUpperCase().replace(/-/g, '_')
}
