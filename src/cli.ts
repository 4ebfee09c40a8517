#!/usr/bin/env node
// The command line's entry point: `multiarch-merge` (package.json bin).
import { EXIT, runCli } from './cli/main.js'
import { runToEnd } from './util/run-to-end.js'

runToEnd(
  async () => {
    process.exitCode = await runCli(process.argv.slice(2), {
      stdout: process.stdout,
      stderr: process.stderr,
      env: process.env,
      readStdin: async () => {
        const chunks: Buffer[] = []
        for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
        return Buffer.concat(chunks).toString('utf8')
      }
    })
  },
  () => {
    process.stderr.write(
      'multiarch-merge: the run stopped before it finished, with nothing left to wait for (a bug)\n'
    )
    process.exitCode = EXIT.failed
  }
)
