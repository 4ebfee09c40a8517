#!/usr/bin/env node
// The command line's entry point: `multiarch-merge` (package.json bin).
import { runCli } from './cli/main.js'

void runCli(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  readStdin: async () => {
    const chunks: Buffer[] = []
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
    return Buffer.concat(chunks).toString('utf8')
  }
}).then((code) => {
  process.exitCode = code
})
