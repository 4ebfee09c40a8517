// Runs the bundled command line as a user runs it: `node dist/cli.js ...` as a child process,
// with no GitHub variables at all, and reads back what it printed.
import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { NODE } from './action.js'

export const CLI = resolve('dist/cli.js')

export interface CliRun {
  code: number
  stdout: string
  stderr: string
}

export async function runCli(
  args: string[],
  opts: { env?: Record<string, string>; stdin?: string; bin?: string } = {}
): Promise<CliRun> {
  const home = await mkdtemp(join(tmpdir(), 'mm-cli-'))
  try {
    return await new Promise<CliRun>((done, fail) => {
      const [cmd, argv] = opts.bin ? [opts.bin, args] : [NODE, [CLI, ...args]]
      // Only what a shell would have: no GITHUB_* or INPUT_* variables.
      const child = spawn(cmd, argv, {
        env: { PATH: process.env.PATH, HOME: home, ...opts.env },
        stdio: ['pipe', 'pipe', 'pipe']
      })
      let stdout = ''
      let stderr = ''
      child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d))
      child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d))
      child.on('error', fail)
      child.on('close', (code) => done({ code: code ?? -1, stdout, stderr }))
      child.stdin.end(opts.stdin ?? '')
    })
  } finally {
    await rm(home, { recursive: true, force: true })
  }
}
