// Runs the bundled action exactly as a runner does: `node dist/index.js` with INPUT_* variables
// and GITHUB_OUTPUT / GITHUB_STEP_SUMMARY files, and reads back what it wrote.
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'

export interface ActionRun {
  code: number
  stdout: string
  stderr: string
  outputs: Record<string, string>
  summary: string
  /** Peak resident set size of the action's process (VmHWM), in bytes. */
  peakRss: number
  /** Set when the run was killed by one of the RunLimits: 'time' or 'rss'. */
  killed?: 'time' | 'rss'
}

/** Guards for runs that may not end on their own (hostile registries): the process is SIGKILLed. */
export interface RunLimits {
  /** Kill the action after this many milliseconds. */
  killAfterMs?: number
  /** Kill the action once its peak RSS goes over this many bytes. */
  killAboveRssBytes?: number
}

export const DIST = resolve('dist/index.js')

/** The node that runs the action: MAM_E2E_NODE (CI sets a Node 24 there, as action.yml declares), else this one. */
export const NODE = process.env.MAM_E2E_NODE || process.execPath

/** Parses the `name<<DELIM\nvalue\nDELIM` records @actions/core writes to GITHUB_OUTPUT. */
export function parseOutputFile(text: string): Record<string, string> {
  const out: Record<string, string> = {}
  const lines = text.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const m = /^([^<=]+)<<(.+)$/.exec(lines[i])
    if (m) {
      const [, name, delim] = m
      const value: string[] = []
      for (i++; i < lines.length && lines[i] !== delim; i++) value.push(lines[i])
      out[name] = value.join('\n')
    } else if (lines[i].includes('=')) {
      const j = lines[i].indexOf('=')
      out[lines[i].slice(0, j)] = lines[i].slice(j + 1)
    }
  }
  return out
}

export async function runAction(
  inputs: Record<string, string>,
  env: Record<string, string> = {},
  limits: RunLimits = {}
): Promise<ActionRun> {
  const dir = await mkdtemp(join(tmpdir(), 'mm-action-'))
  const outputFile = join(dir, 'output')
  const summaryFile = join(dir, 'summary')
  await writeFile(outputFile, '')
  await writeFile(summaryFile, '')
  const inputEnv: Record<string, string> = {}
  for (const [k, v] of Object.entries(inputs)) inputEnv[`INPUT_${k.toUpperCase()}`] = v
  const childEnv: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: dir,
    GITHUB_OUTPUT: outputFile,
    GITHUB_STEP_SUMMARY: summaryFile,
    GITHUB_ACTIONS: 'true',
    RUNNER_TEMP: dir,
    ...inputEnv,
    ...env
  }
  try {
    let peakRss = 0
    let killed: ActionRun['killed']
    const { code, stdout, stderr } = await new Promise<{
      code: number
      stdout: string
      stderr: string
    }>((done) => {
      const child = execFile(
        NODE,
        [DIST],
        { env: childEnv, maxBuffer: 64 * 1024 * 1024 },
        (err, stdout, stderr) => {
          clearInterval(timer)
          clearTimeout(deadline)
          const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0
          done({ code, stdout, stderr })
        }
      )
      // VmHWM is the kernel's own high-water mark, so sampling it often enough near the end is exact.
      const timer = setInterval(() => {
        try {
          const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))
          if (m) peakRss = Math.max(peakRss, Number(m[1]) * 1024)
        } catch {
          // the process has exited
        }
        if (limits.killAboveRssBytes !== undefined && peakRss > limits.killAboveRssBytes) {
          killed ??= 'rss'
          child.kill('SIGKILL')
        }
      }, 20)
      const deadline =
        limits.killAfterMs === undefined
          ? undefined
          : setTimeout(() => {
              killed ??= 'time'
              child.kill('SIGKILL')
            }, limits.killAfterMs)
    })
    return {
      code,
      stdout,
      stderr,
      outputs: parseOutputFile(await readFile(outputFile, 'utf8')),
      summary: await readFile(summaryFile, 'utf8'),
      peakRss,
      ...(killed ? { killed } : {})
    }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}
